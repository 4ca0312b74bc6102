"""InceptionResnetV1 as a face-level REAL/FAKE classifier, and its checkpoints.

The report's best model is facenet-pytorch's ``InceptionResnetV1`` with
``classify=True, num_classes=1``: the face-recognition network (pre-trained on
VGGFace2) whose last layer is replaced by a single logit; ``sigmoid(logit)``
is the probability that the face is FAKE.

Checkpoints use the report's format, a dict saved with ``torch.save`` whose
``"model_state_dict"`` entry loads into a fresh
``InceptionResnetV1(classify=True, num_classes=1)``; we add a few plain
metadata entries (``arch``, ``image_size``, ``epoch``, ``freeze``,
``threshold``, ``trained_on``) that the demo needs to rebuild the model and
prepare its input. Files are read back with ``torch.load(..., weights_only=True)``,
which refuses to run code hidden in a downloaded checkpoint.
"""
from __future__ import annotations

import io
import json
import math
import os
import pickletools
import time
import zipfile
from pathlib import Path

import torch
from torch import nn

from . import config
from .results import plain
from .safe_io import atomic_path

ARCH = "inception_resnet_v1"
PRETRAINED_NAME = "vggface2"
VGGFACE2_FILE = "20180402-114759-vggface2.pt"
VGGFACE2_URL = f"https://github.com/timesler/facenet-pytorch/releases/download/v2.2.9/{VGGFACE2_FILE}"
CHECKPOINT_PATTERN = "resnetinceptionv1_epoch_*.pth"
POINTER_FILE = "inception_best.json"
DEFAULT_IMAGE_SIZE = 256  # what the report feeds the network; older checkpoints carry no size

# The network's top-level modules, input to output.
STEM = ("conv2d_1a", "conv2d_2a", "conv2d_2b", "maxpool_3a", "conv2d_3b", "conv2d_4a", "conv2d_4b")
BODY = ("repeat_1", "mixed_6a", "repeat_2", "mixed_7a", "repeat_3", "block8")
HEAD = ("avgpool_1a", "dropout", "last_linear", "last_bn", "logits")

# FREEZE choices -> the modules whose weights stay fixed.
FREEZE_CHOICES = {
    "none": (),                                   # fine-tune everything
    "stem": STEM,                                 # keep the low-level filters
    "early": STEM + ("repeat_1", "mixed_6a", "repeat_2"),  # train only the last blocks and head
    "backbone": STEM + BODY,                      # train only the embedding + logit layers
}


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, unreadable or made for another model."""


class PretrainedWeightsError(RuntimeError):
    """The VGGFace2 weights could not be downloaded or read."""


# --------------------------------------------------------------------------- building
def pretrained_weights_path() -> Path:
    """Where facenet-pytorch caches the VGGFace2 weights ($TORCH_HOME/checkpoints)."""
    return config.torch_cache_dir() / VGGFACE2_FILE


def _pretrained_help() -> str:
    return (f"Set PRETRAINED = False to start from random weights, or download {VGGFACE2_URL} "
            f"(107 MB) on a machine with internet access and copy it to {pretrained_weights_path()} "
            f"(the folder is $TORCH_HOME/checkpoints).")


def load_face_network(pretrained: bool = True, dropout: float = 0.6) -> nn.Module:
    """facenet-pytorch's ``InceptionResnetV1`` as it comes: a face -> a 512-number face embedding.

    ``pretrained=True`` loads the VGGFace2 weights as the report does (facenet
    downloads them once into ``$TORCH_HOME/checkpoints``); offline, a
    :class:`PretrainedWeightsError` says how to proceed. ``pretrained=False``
    starts from random weights (no download).
    """
    from facenet_pytorch import InceptionResnetV1

    if not pretrained:
        return InceptionResnetV1(pretrained=None, dropout_prob=dropout)
    cached = pretrained_weights_path()
    try:
        return InceptionResnetV1(pretrained=PRETRAINED_NAME, dropout_prob=dropout)
    except Exception as error:  # no network, proxy, truncated or corrupt cache file
        if cached.exists():
            reason = (f"the cached file {cached} could not be read ({type(error).__name__}: {error}); "
                      "it may be an interrupted download: move it away and try again")
        else:
            reason = f"the download failed ({type(error).__name__}: {error})"
        raise PretrainedWeightsError(f"Could not load the VGGFace2 weights: {reason}. "
                                     + _pretrained_help()) from error


def build_inception_classifier(pretrained: bool = True, device: str = "cpu", freeze: str = "none",
                               dropout: float = 0.6) -> nn.Module:
    """InceptionResnetV1 with one output logit per face: ``sigmoid(logit)`` = P(FAKE).

    The face-recognition network (:func:`load_face_network`) ends in a
    512-number embedding; the new head is one ``Linear(512, 1)`` behind it,
    the same network as the report's ``InceptionResnetV1(classify=True,
    num_classes=1)`` (same modules, same state-dict keys, and for the same
    seed the same random weights). ``freeze`` is one of :data:`FREEZE_CHOICES`.
    Notebook 04 shows this definition (a test keeps the two equal).
    """
    network = load_face_network(pretrained, dropout)
    network.logits = nn.Linear(512, 1)
    network.classify, network.num_classes = True, 1
    set_freeze(network, freeze)
    return network.to(device)


def set_freeze(model: nn.Module, freeze: str = "none") -> list[str]:
    """Fix the weights of the modules ``freeze`` names (see :data:`FREEZE_CHOICES`).

    Frozen modules also keep their BatchNorm statistics: :func:`train_mode`
    leaves them in eval mode while the rest trains. Returns the frozen names.
    """
    if freeze not in FREEZE_CHOICES:
        raise ValueError(f"Unknown FREEZE {freeze!r}; choose one of {', '.join(FREEZE_CHOICES)}.")
    frozen = [name for name in FREEZE_CHOICES[freeze] if hasattr(model, name)]
    for name, module in model.named_children():
        for parameter in module.parameters():
            parameter.requires_grad = name not in frozen
    model.frozen_modules = frozen
    model.freeze = freeze
    return frozen


def train_mode(model: nn.Module) -> nn.Module:
    """``model.train()``, except frozen modules, which stay in eval mode (fixed BatchNorm statistics)."""
    model.train()
    for name in getattr(model, "frozen_modules", ()):
        getattr(model, name).eval()
    return model


def count_parameters(model: nn.Module) -> dict:
    """Trainable, frozen (``non_trainable``) and total parameter counts of any PyTorch model.

    BatchNorm running statistics are buffers, not parameters: not counted.
    ``models_keras.count_parameters`` returns the same keys for a Keras model.
    """
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"trainable": int(trainable), "non_trainable": int(total - trainable), "total": int(total)}


# --------------------------------------------------------------------------- checkpoints
MAX_CHECKPOINT_MB = 2048   # InceptionResnetV1 is about 90 MB, DenseNet121 about 30 MB
MAX_IMAGE_SIZE = 1024      # largest face size (pixels) a checkpoint may ask for
#: Smallest face (pixels) InceptionResnetV1 can take: below it a layer has nothing left to convolve.
#: (Every architecture's minimum is in ``helpers.model_registry``, which passes them in as ``min_sizes``.)
MIN_IMAGE_SIZE = {ARCH: 75}
RETRAIN_HINT = "retrain with notebooks/04_inception_resnet.ipynb"


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def metadata_problem(metadata: dict, check_arch: bool = True, min_sizes: dict | None = None) -> str | None:
    """The first entry of checkpoint metadata that cannot be used, as a sentence naming the field,
    its value and what is allowed; None when every known entry is usable.

    Checked: ``arch`` (a known architecture), ``image_size`` (a whole number
    between the architecture's minimum and ``MAX_IMAGE_SIZE``), ``margin``
    (0 to 1, a fraction of the face box), ``threshold`` (strictly between 0
    and 1), ``epoch`` (a whole number >= 0), ``freeze`` (one of FREEZE_CHOICES),
    ``video_rule`` (a name). ``None`` means "not recorded" and takes the default.
    Other entries are kept as they are. ``check_arch=False`` accepts any
    architecture name (a model of your own, loaded with ``model=``).
    ``min_sizes`` maps each architecture that can be rebuilt to its smallest
    face (default: this module's InceptionResnetV1 only; ``model_registry``
    passes every architecture's).
    """
    min_sizes = MIN_IMAGE_SIZE if min_sizes is None else min_sizes
    arch = metadata.get("arch")
    if check_arch and arch is not None and arch not in min_sizes:
        return (f"'arch' is {arch!r}; it must be one of {', '.join(min_sizes)} (an unknown "
                f"architecture {arch!r} cannot be rebuilt; pass model= to load the weights into your own model)")
    arch = arch or ARCH
    size = metadata.get("image_size")
    low = min_sizes.get(arch, 16)
    if size is not None and not (isinstance(size, int) and not isinstance(size, bool) and low <= size <= MAX_IMAGE_SIZE):
        return f"'image_size' is {size!r}; it must be a whole number of pixels from {low} to {MAX_IMAGE_SIZE} for {arch}"
    margin = metadata.get("margin")
    if margin is not None and not (_is_number(margin) and 0 <= margin <= 1):
        return f"'margin' is {margin!r}; it must be a number from 0 to 1 (a fraction of the face box added on each side)"
    threshold = metadata.get("threshold")
    if threshold is not None and not (_is_number(threshold) and 0 < threshold < 1):
        return f"'threshold' is {threshold!r}; it must be a probability strictly between 0 and 1 (0.5 by default)"
    epoch = metadata.get("epoch")
    if epoch is not None and not (isinstance(epoch, int) and not isinstance(epoch, bool) and epoch >= 0):
        return f"'epoch' is {epoch!r}; it must be a whole number >= 0"
    freeze = metadata.get("freeze")
    if freeze is not None and freeze not in FREEZE_CHOICES:
        return f"'freeze' is {freeze!r}; it must be one of {', '.join(FREEZE_CHOICES)}"
    rule = metadata.get("video_rule")
    if rule is not None and not (isinstance(rule, str) and rule.strip()):
        return f"'video_rule' is {rule!r}; it must be the name of a rule of helpers.evaluation.AGGREGATORS"
    return None


def _plain(value, key: str):
    """Metadata must be plain Python values so that ``weights_only=True`` can read them back."""
    return plain(value, strict=True, what=f"Checkpoint metadata {key!r}")


def save_checkpoint(model: nn.Module, path, epoch: int, min_sizes: dict | None = None, **metadata) -> Path:
    """Save ``{"model_state_dict": ..., "epoch": epoch, **metadata}`` (the report's format).

    ``arch`` defaults to InceptionResnetV1 and ``freeze`` to the model's
    setting. The file is written to a temporary name first and then renamed,
    so an interrupted save never leaves a half-written checkpoint behind.
    ``min_sizes``: see :func:`metadata_problem` (``model_registry.save_checkpoint`` passes them).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    info = {"arch": ARCH, "threshold": 0.5}
    if hasattr(model, "freeze"):
        info["freeze"] = model.freeze
    info.update(metadata)
    info["epoch"] = int(epoch)
    info = {key: _plain(value, key) for key, value in info.items()}
    problem = metadata_problem(info, check_arch=False, min_sizes=min_sizes)
    if problem:  # never write a checkpoint that load_checkpoint would refuse
        raise ValueError(f"Not saving {path.name}: metadata {problem}.")
    state = {key: tensor.detach().cpu() for key, tensor in model.state_dict().items()}
    with atomic_path(path) as temporary:
        torch.save({"model_state_dict": state, **info}, temporary)
    return path


def _read(path: Path) -> dict:
    if not os.path.lexists(path):
        raise CheckpointError(f"No checkpoint at {path}. Train one with notebooks/04_inception_resnet.ipynb "
                              f"(it saves into {config.models_dir()}), or pass the path of a .pth file.")
    if path.is_dir():
        raise CheckpointError(folder_message(path))
    if not path.is_file():
        raise CheckpointError(f"{path} is not a regular file (a named pipe, a device or a broken link), so it was "
                              "not opened. Pass the path of a .pth checkpoint file.")
    size_mb = path.stat().st_size / 2**20
    if size_mb > MAX_CHECKPOINT_MB:
        raise CheckpointError(f"{path} is {size_mb:.0f} MB; the course's checkpoints are under {MAX_CHECKPOINT_MB} "
                              "MB, so this is not one of them and was not loaded. Pass the .pth file that notebook "
                              f"04 or 05 saved, or {RETRAIN_HINT}.")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        code = _code_in_pickle(path)
        if code:
            shown = ", ".join(code[:3]) + (" ..." if len(code) > 3 else "")
            raise CheckpointError(
                f"{path} was NOT loaded: besides weights it holds Python code to run on loading (it calls "
                f"{shown}). The loader refuses such files, so nothing in it was executed. A course checkpoint "
                "holds only tensors and plain values. Delete this file unless you know who made it and why; if "
                "its weights are yours, re-save them from the program that made them as a plain state dict, "
                "torch.save({'model_state_dict': model.state_dict()}, path), or "
                f"{RETRAIN_HINT}.") from None
        raise CheckpointError(
            f"{path} is not a readable PyTorch checkpoint ({_short_reason(error)}). It may be truncated (an "
            "interrupted copy or download) or another kind of file; copy it again or "
            f"{RETRAIN_HINT}.") from None
    if isinstance(data, dict) and "model_state_dict" in data:
        return data
    if isinstance(data, dict) and data and all(isinstance(v, torch.Tensor) for v in data.values()):
        return {"model_state_dict": data}  # a bare state dict: accept it, without metadata
    raise CheckpointError(f"{path} holds a {type(data).__name__} without a 'model_state_dict' entry, so it "
                          "is not a checkpoint in the course's (the report's) format. Pass a checkpoint saved "
                          f"by notebook 04 or 05, or {RETRAIN_HINT}.")


def folder_message(path) -> str:
    """What to say when a checkpoint path is a folder: which checkpoint files it holds, if any."""
    path = Path(path)
    try:
        inside = sorted(p.name for p in path.glob("*.pth") if p.is_file())
    except OSError:
        inside = []
    if inside:
        shown = ", ".join(inside[:5]) + (" ..." if len(inside) > 5 else "")
        return (f"{path} is a folder, not a checkpoint file. Pass one of the .pth files in it ({shown}), "
                f"e.g. {path / inside[-1]}.")
    return (f"{path} is a folder, not a checkpoint file, and holds no .pth file. Pass the path of a .pth "
            f"checkpoint, or {RETRAIN_HINT}.")


# Python objects torch.load(weights_only=True) rebuilds itself; any other global in a pickle is code.
_SAFE_GLOBAL_PREFIXES = ("torch.", "collections.OrderedDict", "_codecs.encode", "builtins.set",
                         "builtins.frozenset", "builtins.bytearray")


def _pickle_streams(path: Path, limit: int = 64 << 20) -> list:
    """The pickle byte streams of a checkpoint: ``*/data.pkl`` of the zip format, or the whole file when
    it starts like a pickle (the legacy format); none for anything else (a damaged or foreign file)."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                return [zf.read(i) for i in zf.infolist() if i.filename.endswith(".pkl") and i.file_size <= limit]
        with open(path, "rb") as handle:
            head = handle.read(limit)
        return [head] if head[:1] == b"\x80" else []  # pickle protocol 2+ starts with PROTO
    except (OSError, zipfile.BadZipFile, ValueError, RuntimeError):
        return []


def _code_in_pickle(path: Path) -> list:
    """Names of the functions or classes a pickle would call on loading, other than torch's own.

    Reads the opcodes with :mod:`pickletools` (which only parses, never runs
    anything). An unreadable stream simply yields what was found before the damage.
    """
    found = []
    for stream in _pickle_streams(path):
        strings = []
        try:
            for opcode, argument, _ in pickletools.genops(io.BytesIO(stream)):
                if opcode.name in ("GLOBAL", "INST"):
                    found.append(str(argument).replace(" ", "."))
                elif opcode.name == "STACK_GLOBAL" and len(strings) >= 2:
                    found.append(f"{strings[-2]}.{strings[-1]}")
                if isinstance(argument, str):
                    strings.append(argument)
        except Exception:  # damaged or not a pickle: keep what was read
            pass
    unsafe = [name for name in found if not name.startswith(_SAFE_GLOBAL_PREFIXES)]
    return list(dict.fromkeys(unsafe))


def _short_reason(error: Exception) -> str:
    """The first sentence of a loading error, without torch's advice about ``weights_only``."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if "weights_only" in text or "Weights only" in text:
        return "the file's structure is not that of a checkpoint"
    return f"{type(error).__name__}: {text[:160]}"


def read_checkpoint(path, check_arch: bool = True, min_sizes: dict | None = None) -> tuple[dict, dict]:
    """Read and check a checkpoint file; returns ``(weights, metadata)`` without building a model.

    Metadata the file does not record takes the report's values (InceptionResnetV1,
    256-pixel faces, threshold 0.5). ``check_arch`` and ``min_sizes``: see
    :func:`metadata_problem`. Every failure is a :class:`CheckpointError`.
    """
    path = Path(path).expanduser()
    data = _read(path)
    metadata = {str(k): v for k, v in data.items() if k not in ("model_state_dict", "optimizer_state_dict")}
    for key in ("arch", "image_size", "threshold"):
        if metadata.get(key) is None:  # not recorded: the report's values
            metadata[key] = {"arch": ARCH, "image_size": DEFAULT_IMAGE_SIZE, "threshold": 0.5}[key]
    problem = metadata_problem(metadata, check_arch=check_arch, min_sizes=min_sizes)
    if problem:
        raise CheckpointError(f"{path} was not used: its metadata {problem}. Checkpoints saved by the course "
                              f"always pass this check, so the file was edited or made elsewhere; {RETRAIN_HINT}, "
                              "or re-save the model with models_torch.save_checkpoint and valid settings.")
    weights = data["model_state_dict"]
    if not isinstance(weights, dict) or not all(isinstance(v, torch.Tensor) for v in weights.values()):
        what = type(weights).__name__ if not isinstance(weights, dict) else "a mapping with non-tensor values"
        raise CheckpointError(f"{path} was not used: its 'model_state_dict' is {what}, not a mapping of "
                              f"parameter names to tensors. Pass a checkpoint saved by the course, or {RETRAIN_HINT}.")
    metadata["path"] = str(path)
    return weights, metadata


def load_weights(model: nn.Module, weights: dict, metadata: dict, device: str = "cpu") -> tuple[nn.Module, dict]:
    """Put checkpoint ``weights`` into ``model``; returns ``(model in eval mode on device, metadata)``."""
    try:
        model.load_state_dict(weights)
    except (RuntimeError, TypeError, ValueError, KeyError, AttributeError) as error:
        raise CheckpointError(
            f"The weights in {metadata.get('path')} do not fit a {type(model).__name__} (saved architecture: "
            f"{metadata['arch']!r}). It was probably trained for another model; load it with that "
            f"model's loader, or {RETRAIN_HINT}. "
            f"Details: {str(error)[:300]}") from error
    return model.to(device).eval(), metadata


def load_checkpoint(path, device: str = "cpu", model: nn.Module | None = None) -> tuple[nn.Module, dict]:
    """Rebuild a saved InceptionResnetV1 classifier; returns ``(model in eval mode on device, metadata)``.

    Without ``model``, InceptionResnetV1 is built with random weights (no
    download) and the saved weights are loaded into it; with ``model``, the
    weights go into that model, whatever its architecture. Files without
    metadata (e.g. the report's own checkpoint) are taken to be InceptionResnetV1
    for 256-pixel faces. Checkpoints of the other architectures load with
    ``helpers.model_registry.load_checkpoint``. Every failure is a :class:`CheckpointError`.
    """
    weights, metadata = read_checkpoint(path, check_arch=False)
    if model is None:
        if metadata["arch"] != ARCH:
            raise CheckpointError(f"{metadata['path']} holds a {metadata['arch']!r} model, not {ARCH}: load it with "
                                  "helpers.model_registry.load_checkpoint, which knows every architecture.")
        model = build_inception_classifier(pretrained=False, freeze="none")
    return load_weights(model, weights, metadata, device)


def mark_default_checkpoint(path, **info) -> Path:
    """Record ``path`` as the model the demo should use (``models_dir()/inception_best.json``)."""
    from .safe_io import atomic_write_text

    pointer = config.models_dir() / POINTER_FILE
    record = {"checkpoint": str(Path(path).resolve()), "saved_at": time.strftime("%Y-%m-%d %H:%M:%S")}
    record.update({k: _plain(v, k) for k, v in info.items()})
    return atomic_write_text(pointer, json.dumps(record, indent=2))


def default_checkpoint() -> Path | None:
    """The best checkpoint notebook 04 trained, or None if there is none.

    Reads the pointer notebook 04 writes; without it (or if its file is gone),
    takes the newest ``resnetinceptionv1_epoch_*.pth`` in ``models_dir()``.
    """
    from .safe_io import UnreadableFileError, read_user_json

    folder = config.models_dir()
    pointer = folder / POINTER_FILE
    if os.path.lexists(pointer):
        try:  # a damaged pointer (a folder, a pipe, not JSON...) is passed over: the newest file is taken
            candidate = Path(read_user_json(pointer, max_bytes=1 << 20)["checkpoint"])
        except (UnreadableFileError, KeyError, TypeError, ValueError):
            candidate = None
        if candidate is not None:
            if not candidate.is_absolute():
                candidate = folder / candidate
            if candidate.is_file():
                return candidate
    files = sorted(folder.glob(CHECKPOINT_PATTERN), key=lambda p: p.stat().st_mtime)
    return files[-1] if files else None
