"""Training loop and predictions for the PyTorch face classifiers.

Scoring faces and choosing the video rule are in :mod:`helpers.evaluation`; the
training curves are drawn by :func:`helpers.plots.plot_history`.

One loop serves every PyTorch model of the course (InceptionResnetV1 in
notebook 04, the custom CNN / MesoNet / DenseNet121 of the comparison): each
returns one logit per face, trained with binary cross-entropy on logits
(``BCEWithLogitsLoss``, numerically safer than a sigmoid followed by BCE) and Adam.

:func:`train_one_epoch` is the bare loop (forward, loss, backward, step) that
notebook 04 writes out; :func:`train_classifier` is the one the course trains
with. What it adds to the report's recipe, all of it named as future work there:

* mixed precision on a GPU (``torch.autocast`` + ``GradScaler``): about half the
  memory, so a 4 GB card fits larger batches; off on the CPU, where it does not help;
* BatchNorm statistics recomputed after each epoch ("precise BN"): during an epoch
  the running averages trail weights that keep changing, and a network trained from
  scratch then scores every validation face alike; a few forward passes over
  training batches with the final weights of the epoch fix that;
* early stopping on the validation loss (``patience`` epochs without improvement)
  and the best epoch's weights restored at the end;
* the channels-last memory format (NHWC) while training (:func:`use_channels_last`):
  by default only on a GPU with mixed precision; on the CPU it is an option
  (``channels_last=True``), since ``tools/benchmark_training.py`` did not show a
  reliable gain on the course's 2-core test machine;
* a checkpoint in the report's format whenever the validation loss improves;
* throughput (faces per second) so runs on different machines can be compared.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .models_torch import save_checkpoint, train_mode
from .reproducibility import seed_everything
from .results import plain


def _use_amp(amp: bool, device) -> bool:
    return bool(amp) and str(device).startswith("cuda") and torch.cuda.is_available()


def use_channels_last(device, amp: bool = True) -> bool:
    """Whether :func:`train_classifier` stores the model and its input channels-last by default.

    Only on a GPU with mixed precision: float16 convolutions run natively in NHWC
    there (PyTorch's memory-format tutorial reports +22 % for ResNet50 training on a
    V100; not measured for this course). Not on the CPU: on the course's 2-core test
    machine ``tools/benchmark_training.py`` measured 1.19x, 0.98x and 1.18x in
    three runs (median throughput, all under load), not yet a gain to rely on; pass
    ``channels_last=True`` to :func:`train_classifier` to try it on yours.
    """
    return _use_amp(amp, device)


def set_memory_format(model: nn.Module, channels_last: bool) -> nn.Module:
    """Store the model's 4-D weights channels-last (NHWC) or in PyTorch's default order (NCHW), in place.

    Only the order of the numbers in memory changes, not their values: outputs
    agree up to float rounding. :func:`_logits` then hands the model channels-last
    input batches too, so no layer has to convert them.
    """
    model.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    model.channels_last = bool(channels_last)
    return model


def _split_batch(batch):
    if isinstance(batch, (list, tuple)):
        return batch[0], (batch[1] if len(batch) > 1 else None)
    return batch, None


def _logits(model: nn.Module, x: torch.Tensor, use_amp: bool) -> torch.Tensor:
    if x.dim() == 4 and getattr(model, "channels_last", False):
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.autocast(device_type="cuda", dtype=torch.float16, enabled=use_amp):
        out = model(x)
    return out.float().reshape(len(x), -1)[:, 0]


@torch.no_grad()
def evaluate_loader(model: nn.Module, loader, device="cpu", amp: bool = True, progress: bool = False,
                    description: str = "evaluate") -> dict:
    """Mean BCE loss, accuracy (threshold 0.5), number of faces ``n`` and the probabilities of a labelled loader."""
    model.eval()
    use_amp = _use_amp(amp, device)
    criterion = nn.BCEWithLogitsLoss(reduction="sum")
    total_loss, correct, count, probs = 0.0, 0, 0, []
    for batch in tqdm(loader, desc=description, leave=False, disable=not progress):
        x, y = _split_batch(batch)
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True).float()
        logits = _logits(model, x, use_amp)
        total_loss += float(criterion(logits, y))
        p = torch.sigmoid(logits)
        correct += int(((p >= 0.5).float() == y).sum())
        count += len(y)
        probs.append(p.cpu())
    if count == 0:
        raise ValueError("The loader yielded no faces to evaluate.")
    return {"loss": total_loss / count, "accuracy": correct / count, "n": count,
            "probs": torch.cat(probs).numpy()}


@torch.no_grad()
def predict_probs(model: nn.Module, loader, device="cpu", amp: bool = True, progress: bool = False) -> np.ndarray:
    """P(FAKE) for every face the loader yields, in order (batches may be ``x`` or ``(x, y)``)."""
    model.eval()
    use_amp = _use_amp(amp, device)
    probs = []
    for batch in tqdm(loader, desc="predict", leave=False, disable=not progress):
        x, _ = _split_batch(batch)
        probs.append(torch.sigmoid(_logits(model, x.to(device, non_blocking=True), use_amp)).cpu())
    return torch.cat(probs).numpy().astype(np.float64) if probs else np.zeros(0)


def train_one_epoch(model: nn.Module, loader, optimizer, loss_fn, device="cpu") -> float:
    """One plain pass over the training faces: forward, loss, backward, step. Returns the mean loss.

    The bare loop, as notebook 04 shows it (a test keeps the two equal);
    :func:`train_classifier` runs a richer version of it.
    """
    model.train()
    running_loss, seen = 0.0, 0
    bar = tqdm(loader, desc="one epoch", leave=False)
    for images, targets in bar:
        images, targets = images.to(device), targets.to(device).float()
        optimizer.zero_grad()
        logits = model(images)[:, 0]
        loss = loss_fn(logits, targets)
        loss.backward()
        optimizer.step()
        running_loss += loss.item() * len(targets)
        seen += len(targets)
        bar.set_postfix(loss=f"{running_loss / seen:.4f}")
    return running_loss / seen


def _training_batchnorms(model: nn.Module) -> list:
    """BatchNorm layers that learn (frozen modules keep theirs, see ``models_torch.set_freeze``)."""
    train_mode(model)
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training
            and m.track_running_stats]


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, loader, device="cpu", max_batches: int = 10, amp: bool = True) -> int:
    """Recompute the running mean and variance of the model's training BatchNorm layers.

    Runs up to ``max_batches`` batches of ``loader`` forward (no gradients) and
    sets each running statistic to the plain average over those batches, the
    "precise BN" of Wu & Johnson (2021). Frozen modules are left alone.
    Returns the number of batches used; the model is left in eval mode.
    """
    layers = _training_batchnorms(model)
    if not layers or max_batches <= 0:
        model.eval()
        return 0
    for module in model.modules():  # dropout as at inference, so the statistics are those of inference
        if isinstance(module, nn.modules.dropout._DropoutNd):
            module.eval()
    use_amp = _use_amp(amp, device)
    momenta = [layer.momentum for layer in layers]
    backup = [(layer.running_mean.clone(), layer.running_var.clone()) for layer in layers]
    for layer in layers:
        layer.reset_running_stats()
        layer.momentum = None  # cumulative average over the batches below
    used = 0
    for batch in loader:
        x, _ = _split_batch(batch)
        if len(x) < 2:
            continue
        _logits(model, x.to(device, non_blocking=True), use_amp)
        used += 1
        if used >= max_batches:
            break
    for layer, momentum, (mean, var) in zip(layers, momenta, backup):
        layer.momentum = momentum
        if used == 0:  # nothing to measure: keep what there was
            layer.running_mean.copy_(mean)
            layer.running_var.copy_(var)
    model.eval()
    return used


def train_classifier(model: nn.Module, train_loader, val_loader, epochs: int, lr: float = 1e-4,
                     device="cpu", amp: bool = True, patience: int | None = 3,
                     checkpoint_dir=None, checkpoint_name: str = "resnetinceptionv1_epoch_{epoch}.pth",
                     seed: int = 42, weight_decay: float = 0.0, metadata: dict | None = None,
                     restore_best: bool = True, keep_only_best: bool = True, progress: bool = True,
                     min_delta: float = 0.0, bn_recalibration_batches: int = 10, clean_loader=None,
                     channels_last: bool | None = None) -> dict:
    """Train ``model`` (one logit per face) with BCEWithLogitsLoss and Adam; return the history.

    Each epoch trains on ``train_loader`` then measures loss and accuracy on
    ``val_loader`` (or, without one, uses the training loss). When the
    validation loss improves by more than ``min_delta``, the weights are kept
    and, with ``checkpoint_dir``, saved as ``checkpoint_name.format(epoch=N)``
    with ``metadata`` (``keep_only_best`` removes the file this run saved
    before, never other files). Training stops after ``patience`` epochs
    without improvement (None: never early). Only parameters with
    ``requires_grad`` are optimised, so frozen modules stay fixed. After each
    epoch the BatchNorm statistics are recomputed on ``bn_recalibration_batches``
    training batches (:func:`recalibrate_batchnorm`; 0 switches it off).
    ``channels_last`` (None: :func:`use_channels_last`) trains in the NHWC memory
    format; the model is given back in the format it came in.

    ``clean_loader`` (training faces without augmentation, in a fixed order)
    adds ``clean_loss_before`` and ``clean_loss_after``: the loss on those
    faces in evaluation mode before training (BatchNorm statistics computed
    as after an epoch) and with the last epoch's weights, before the best
    epoch's come back. Only the weights differ between the two, which makes
    them the evidence ``evaluation.learning_check`` reads.

    Returns a dict: train_loss, val_loss, train_acc, val_acc (per epoch),
    best_epoch (1-based), best_val_loss, best_checkpoint (path or None),
    epochs_run, stopped_early, faces_per_second (training throughput),
    train_seconds, seconds_per_epoch, amp, channels_last, device.
    """
    if epochs < 1:
        raise ValueError("epochs must be at least 1.")
    seed_everything(seed)
    model.to(device)
    parameters = [p for p in model.parameters() if p.requires_grad]
    if not parameters:
        raise ValueError("Every parameter of the model is frozen: nothing to train. Choose a lighter FREEZE.")
    given_format = getattr(model, "channels_last", False)
    channels_last = use_channels_last(device, amp) if channels_last is None else channels_last
    set_memory_format(model, channels_last)
    optimizer = torch.optim.Adam(parameters, lr=lr, weight_decay=weight_decay)
    use_amp = _use_amp(amp, device)
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    criterion = nn.BCEWithLogitsLoss()
    checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None

    history = {"train_loss": [], "val_loss": [], "train_acc": [], "val_acc": [], "seconds": [],
               "best_epoch": None, "best_val_loss": None, "best_checkpoint": None, "stopped_early": False,
               "amp": use_amp, "channels_last": bool(channels_last), "device": str(device), "lr": lr,
               "skipped_batches": 0}
    best_loss, best_state, bad_epochs = float("inf"), None, 0
    faces_seen, train_seconds = 0, 0.0
    if clean_loader is not None:
        if bn_recalibration_batches:
            recalibrate_batchnorm(model, train_loader, device, max_batches=bn_recalibration_batches, amp=amp)
        history["clean_loss_before"] = evaluate_loader(model, clean_loader, device, amp=amp)["loss"]

    for epoch in range(1, epochs + 1):
        train_mode(model)
        start = time.perf_counter()
        loss_sum, correct, count = 0.0, 0, 0
        bar = tqdm(train_loader, desc=f"epoch {epoch}/{epochs}", leave=False, disable=not progress)
        for batch in bar:
            x, y = _split_batch(batch)
            if len(x) < 2:  # BatchNorm cannot learn from a single face
                history["skipped_batches"] += 1
                continue
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True).float()
            optimizer.zero_grad(set_to_none=True)
            logits = _logits(model, x, use_amp)
            loss = criterion(logits, y)
            if not torch.isfinite(loss.detach()):
                raise FloatingPointError(f"The training loss became {float(loss)} in epoch {epoch}; "
                                         "lower the learning rate.")
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            loss_sum += float(loss.detach()) * len(y)
            correct += int(((logits.detach() >= 0).float() == y).sum())
            count += len(y)
            bar.set_postfix(loss=f"{loss_sum / count:.4f}")
        if str(device).startswith("cuda"):
            torch.cuda.synchronize()
        epoch_train_seconds = time.perf_counter() - start
        if count == 0:
            raise ValueError("The training loader yielded no batch of at least two faces.")
        train_seconds += epoch_train_seconds
        faces_seen += count
        if bn_recalibration_batches:
            recalibrate_batchnorm(model, train_loader, device, max_batches=bn_recalibration_batches, amp=amp)

        history["train_loss"].append(loss_sum / count)
        history["train_acc"].append(correct / count)
        if val_loader is not None:
            val = evaluate_loader(model, val_loader, device, amp=amp, progress=progress, description="validate")
            history["val_loss"].append(val["loss"])
            history["val_acc"].append(val["accuracy"])
            monitored = val["loss"]
        else:
            monitored = history["train_loss"][-1]
        history["seconds"].append(time.perf_counter() - start)

        improved = monitored < best_loss - min_delta
        if improved:
            best_loss, bad_epochs = monitored, 0
            history["best_epoch"], history["best_val_loss"] = epoch, monitored
            if restore_best:
                best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
            if checkpoint_dir is not None:
                path = checkpoint_dir / checkpoint_name.format(epoch=epoch)
                save_checkpoint(model, path, epoch, **(metadata or {}))
                previous = history["best_checkpoint"]
                if keep_only_best and previous and Path(previous) != path and Path(previous).exists():
                    Path(previous).unlink()
                history["best_checkpoint"] = str(path)
        else:
            bad_epochs += 1
        val_text = (f"val loss {history['val_loss'][-1]:.4f} acc {history['val_acc'][-1]:.3f} ({val['n']} faces)"
                    if val_loader is not None else "no validation set")
        if progress:  # per-face values (frame level) while training; the notebooks add intervals at the end
            print(f"epoch {epoch}: train loss {history['train_loss'][-1]:.4f} acc {history['train_acc'][-1]:.3f}"
                  f" ({count} faces) | {val_text} | {count / epoch_train_seconds:.1f} faces/s"
                  f"{' *' if improved else ''}")
        if patience is not None and bad_epochs >= patience and epoch < epochs:
            history["stopped_early"] = True
            if progress:
                print(f"Early stopping: no improvement for {patience} epochs; best epoch {history['best_epoch']}.")
            break

    if clean_loader is not None:  # the last epoch's weights, before the best epoch's come back
        history["clean_loss_after"] = evaluate_loader(model, clean_loader, device, amp=amp)["loss"]
    if restore_best and best_state is not None:
        model.load_state_dict(best_state)
    set_memory_format(model, given_format)
    model.eval()
    history["epochs_run"] = len(history["train_loss"])
    history["train_seconds"] = train_seconds
    history["seconds_per_epoch"] = float(np.mean(history["seconds"]))
    history["faces_per_second"] = faces_seen / train_seconds if train_seconds > 0 else None
    return history


def ensure_checkpoint(path, manifest_df, image_size: int, epochs: int, pretrained: bool = False,
                      freeze: str = "none", device="cpu", batch_size: int = 8, faces_per_video: int | None = None,
                      validate: bool = False, seed: int = 42, metadata: dict | None = None,
                      **train_options) -> tuple[Path, dict | None]:
    """The InceptionResnetV1 checkpoint at ``path``; without a matching one there, a quick one is trained first.

    Notebooks 06 and 07 run on their own this way when notebook 04 has not
    been run: the network (``pretrained`` weights or random ones, ``freeze``)
    is trained for ``epochs`` on the manifest's training faces (at most
    ``faces_per_video`` of each video; with ``validate``, early stopping on
    the validation faces) with :func:`train_classifier` (``train_options``:
    ``lr``, ``patience``, ``progress`` ...), then saved at ``path`` with
    ``image_size``, ``pretrained`` and ``metadata``. Returns ``(path, history)``;
    ``history`` is None when the checkpoint was already there.

    A file already at ``path`` is reused only when it records the same
    ``image_size``, ``pretrained`` and ``metadata`` values (say, ``trained_on``
    another dataset: it is trained again, and a line says why); an unreadable
    one is trained again too. These files are the course's own quick models.
    """
    from .datasets_torch import limit_faces_per_video, make_loader, split_table
    from .models_torch import build_inception_classifier

    path = Path(path)
    if path.is_file():
        differs = _checkpoint_differs(path, {"image_size": int(image_size), "pretrained": bool(pretrained),
                                             **(metadata or {})})
        if differs is None:
            return path, None
        print(f"Training {path.name} again: {differs}.")
    train = limit_faces_per_video(split_table(manifest_df, "train"), faces_per_video)
    train_loader = make_loader(train, image_size, batch_size=batch_size, train=True, seed=seed)
    val_loader = (make_loader(split_table(manifest_df, "val"), image_size, batch_size=2 * batch_size)
                  if validate else None)
    seed_everything(seed)
    model = build_inception_classifier(pretrained, device=device, freeze=freeze)
    history = train_classifier(model, train_loader, val_loader, epochs=epochs, device=device, seed=seed,
                               **train_options)
    save_checkpoint(model, path, epoch=history["best_epoch"] or history["epochs_run"], image_size=int(image_size),
                    pretrained=bool(pretrained), **(metadata or {}))
    return path, history


def _checkpoint_differs(path: Path, wanted: dict) -> str | None:
    """Why the checkpoint at ``path`` is not the one ``wanted`` describes (None: it is)."""
    from .models_torch import CheckpointError, read_checkpoint

    try:
        _, recorded = read_checkpoint(path)
    except CheckpointError as error:
        return f"the file there cannot be used ({error})"
    for key, value in wanted.items():
        if plain(recorded.get(key)) != plain(value):
            return f"it records {key}={recorded.get(key)!r}, this run needs {value!r}"
    return None
