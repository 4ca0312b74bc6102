"""The training loop on a tiny separable problem, predictions, and the video-rule choice."""
import cv2
import numpy as np
import pandas as pd
import pytest
import torch

import fake_crops
from helpers import datasets_torch, evaluation, model_registry, models_torch, plots, training_torch
from test_datasets_torch import make_fake_manifest


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    return make_fake_manifest(tmp_path_factory.mktemp("crops"), videos_per_class=2, faces_per_video=4)


def small_cnn(seed=0):
    """A small stand-in with BatchNorm and dropout, like InceptionResnetV1 (notebook 04's test trains that)."""
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, stride=2), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
                               torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Dropout(0.2),
                               torch.nn.Linear(8, 1))


def test_training_lowers_the_loss_and_saves_the_best_checkpoint(manifest, tmp_path):
    train = datasets_torch.split_table(manifest, "train")
    val = datasets_torch.split_table(manifest, "val")
    model = small_cnn()
    train_loader = datasets_torch.make_loader(train, 32, batch_size=4, train=True, augment=False)
    val_loader = datasets_torch.make_loader(val, 32, batch_size=8)
    history = training_torch.train_classifier(model, train_loader, val_loader, epochs=4, lr=0.02,
                                              patience=None, checkpoint_dir=tmp_path, progress=False,
                                              metadata={"arch": "small_cnn", "image_size": 32, "trained_on": "fake"})
    assert history["epochs_run"] == 4 and len(history["val_loss"]) == 4
    assert history["train_loss"][-1] < history["train_loss"][0]
    assert all(np.isfinite(history["train_loss"])) and not history["amp"]  # no autocast on the CPU
    best = history["best_epoch"]
    assert history["val_loss"][best - 1] == min(history["val_loss"])
    saved = sorted(p.name for p in tmp_path.glob("*.pth"))
    assert saved == [f"resnetinceptionv1_epoch_{best}.pth"]  # only the best one is kept
    # The model ends with the best epoch's weights, identical to the checkpoint.
    reloaded, metadata = model_registry.load_checkpoint(history["best_checkpoint"], model=small_cnn(seed=1))
    assert metadata["epoch"] == best and metadata["image_size"] == 32
    x = next(iter(val_loader))[0]
    with torch.no_grad():
        assert torch.allclose(model(x), reloaded(x), atol=1e-5)


def test_one_step_on_separable_faces_decreases_the_loss(manifest):
    torch.manual_seed(0)
    tiny = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                               torch.nn.Linear(4, 1))
    loader = datasets_torch.make_loader(datasets_torch.split_table(manifest, "train"), 32, batch_size=16)
    before = training_torch.evaluate_loader(tiny, loader)["loss"]
    training_torch.train_classifier(tiny, loader, None, epochs=1, lr=0.05, progress=False)
    after = training_torch.evaluate_loader(tiny, loader)["loss"]
    assert after < before


def test_early_stopping_stops_and_restores(manifest):
    class Worsening(torch.nn.Module):  # the learning rate is so high that the loss cannot improve for long
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(3, 1)

        def forward(self, x):
            return self.linear(x.mean(dim=(2, 3)))

    model = Worsening()
    loader = datasets_torch.make_loader(datasets_torch.split_table(manifest, "train"), 16, batch_size=4,
                                        train=True)
    history = training_torch.train_classifier(model, loader, loader, epochs=30, lr=50.0, patience=2,
                                              progress=False)
    assert history["epochs_run"] < 30 and history["stopped_early"]
    assert history["epochs_run"] - history["best_epoch"] == 2


def test_everything_frozen_is_refused(manifest):
    model = torch.nn.Linear(3, 1)
    for p in model.parameters():
        p.requires_grad = False
    with pytest.raises(ValueError, match="frozen"):
        training_torch.train_classifier(model, [], None, epochs=1, progress=False)


def test_predict_probs_are_probabilities_in_table_order(manifest):
    model = small_cnn()
    test = datasets_torch.split_table(manifest, "test")
    loader = datasets_torch.make_loader(test, 32, batch_size=5)
    probs = training_torch.predict_probs(model, loader, "cpu")
    assert probs.shape == (len(test),)
    assert np.allclose(training_torch.predict_probs(model, (b[0] for b in loader)), probs, atol=1e-6)
    frame = evaluation.score_faces(model, test, 32)
    assert list(frame["video"]) == list(test["video"])
    assert frame["target"].tolist() == test["target"].tolist() and np.allclose(frame["prob_fake"], probs, atol=1e-6)
    assert frame["label"].tolist() == test["label"].tolist()  # the text, as in the manifest


def test_video_rules_compared_and_the_better_one_chosen():
    # Fakes that show in few frames: the confident rule separates them, the mean barely does.
    rows = []
    for v in range(6):
        target = v % 2
        scores = [0.95, 0.9] + [0.3] * 8 if target else [0.1] * 10
        rows += [{"video": f"v{v}", "target": target, "prob_fake": s} for s in scores]
    table = pd.DataFrame(rows)
    comparison = evaluation.compare_video_rules(table)
    assert set(comparison) == {"mean", "confident"}
    assert comparison["confident"]["log_loss"] < comparison["mean"]["log_loss"]
    assert evaluation.choose_video_rule(comparison) == "confident"
    assert evaluation.choose_video_rule({"mean": {"log_loss": 0.2}, "confident": {"log_loss": 0.2}}) == "mean"
    assert evaluation.choose_video_rule({"mean": {"roc_auc": 0.7}, "confident": {"roc_auc": 0.9}},
                                            metric="roc_auc") == "confident"


def test_plot_history_draws_both_panels():
    history = {"train_loss": [0.7, 0.5], "val_loss": [0.69, 0.6], "train_acc": [0.5, 0.8],
               "val_acc": [0.5, 0.7], "best_epoch": 2}
    fig = plots.plot_history(history)
    assert len(fig.axes) == 2 and len(fig.axes[0].lines) == 3


def test_recalibrated_batchnorm_holds_the_data_statistics(manifest):
    loader = datasets_torch.make_loader(datasets_torch.split_table(manifest, "train"), 16, batch_size=4)
    layer = torch.nn.BatchNorm2d(3)
    layer.running_mean.fill_(5.0)
    used = training_torch.recalibrate_batchnorm(layer, loader, max_batches=100)
    images = torch.cat([b[0] for b in loader])
    assert used == len(loader) and not layer.training
    assert torch.allclose(layer.running_mean, images.mean(dim=(0, 2, 3)), atol=1e-5)


def test_recalibration_leaves_frozen_modules_alone(manifest):
    model = models_torch.build_inception_classifier(pretrained=False, freeze="early")
    frozen_before = model.conv2d_1a.bn.running_mean.clone()
    trained_before = model.repeat_3[0].branch0.bn.running_mean.clone()
    loader = datasets_torch.make_loader(datasets_torch.split_table(manifest, "train"), 96, batch_size=4)
    assert training_torch.recalibrate_batchnorm(model, loader, max_batches=1) == 1
    assert torch.equal(model.conv2d_1a.bn.running_mean, frozen_before)
    assert not torch.equal(model.repeat_3[0].branch0.bn.running_mean, trained_before)
    assert not model.training


def test_train_one_epoch_is_forward_loss_backward_step(manifest):
    loader = datasets_torch.make_loader(datasets_torch.split_table(manifest, "train"), 32, batch_size=4)
    model = small_cnn()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    first = [p.detach().clone() for p in model.parameters()]
    expected = []  # the mean training loss, batch by batch, as the epoch sees it (weights change in between)
    mean_loss = training_torch.train_one_epoch(model, _recording(loader, model, loss_fn, expected), optimizer, loss_fn)
    assert mean_loss == pytest.approx(np.average(expected, weights=[len(b[1]) for b in loader]), rel=1e-5)
    assert all(not torch.equal(a, b) for a, b in zip(first, model.parameters()))  # every weight stepped
    assert model.training  # left in training mode, as model.train() put it


def _recording(loader, model, loss_fn, losses):
    """Yield the loader's batches and note each batch's loss just before the epoch's step on it."""
    for images, targets in loader:
        state = torch.random.get_rng_state()
        with torch.no_grad():
            losses.append(float(loss_fn(model(images)[:, 0], targets.float())))
        torch.random.set_rng_state(state)  # the same dropout draw as the training step's forward pass
        yield images, targets


def test_frame_and_video_metrics_carry_level_n_and_intervals():
    rows = [{"video": f"v{v}", "target": v % 2, "prob_fake": 0.2 + 0.6 * (v % 2) + 0.01 * f}
            for v in range(6) for f in range(4)]
    out = evaluation.frame_and_video_metrics(pd.DataFrame(rows), rule="mean", n_boot=200)
    frame, video = out["frame"], out["video"]
    assert (frame["level"], frame["n"], frame["n_videos"]) == ("frame", 24, 6)
    assert (video["level"], video["n"], video["n_videos"]) == ("video", 6, 6)
    assert frame["ci_unit"] == "group" and video["ci_unit"] == "row"  # faces are resampled by video
    assert frame["roc_auc"] == video["roc_auc"] == 1.0 and frame["roc_auc_ci"] == [1.0, 1.0]
    compared = evaluation.compare_video_rules(pd.DataFrame(rows), ci=True, n_boot=100)
    assert all(m["level"] == "video" and m["n"] == 6 and "log_loss_ci" in m for m in compared.values())


# --------------------------------------------------------------------------- shuffled labels
def write_look_and_signal_crops(folder, videos_per_split, faces_per_video=3, size=32) -> pd.DataFrame:
    """Crops where each video has its own colour (what a model can memorise) and FAKE faces carry
    a fine checkerboard in the middle (what a model should learn)."""
    rng = np.random.default_rng(0)
    checker = 30.0 * ((np.indices((size, size)).sum(0) % 2) * 2 - 1)[..., None]
    middle = slice(size // 4, 3 * size // 4)
    rows = []
    for split, n in videos_per_split.items():
        for label, target in (("REAL", 0), ("FAKE", 1)):
            for v in range(n):
                video, look = f"{split}_{label.lower()}_{v}.mp4", rng.integers(60, 190, 3)
                for f in range(faces_per_video):
                    face = look + rng.normal(0, 8, (size, size, 3))
                    if target:
                        face[middle, middle] += checker[middle, middle]
                    path = folder / f"{video[:-4]}_{f}.png"
                    cv2.imwrite(str(path), np.clip(face, 0, 255).astype(np.uint8))
                    rows.append(fake_crops.row(video, 10 * f, path, label, target, split))
    return pd.DataFrame(rows)


def shuffled_video_labels(table: pd.DataFrame, seed: int) -> pd.Series:
    """Targets with half of each class's videos relabelled: as many REAL called FAKE as FAKE called REAL.

    A plain permutation of a few dozen labels keeps, by chance, some agreement with the truth, and a
    model trained on it learns a little of the truth; here the shuffled labels carry none.
    """
    per_video = table.groupby("video")["target"].first()
    rng = np.random.default_rng(seed)
    reals, fakes = per_video.index[per_video == 0], per_video.index[per_video == 1]
    k = min(len(reals), len(fakes)) // 2
    shuffled = per_video.copy()
    shuffled[rng.choice(reals, k, replace=False)] = 1
    shuffled[rng.choice(fakes, k, replace=False)] = 0
    return table["video"].map(shuffled).astype(int)


@pytest.fixture(scope="module")
def learnable(tmp_path_factory):
    return write_look_and_signal_crops(tmp_path_factory.mktemp("learnable"), {"train": 12, "val": 6, "test": 6})


def _train_and_check(table, targets=None):
    train = datasets_torch.split_table(table, "train").copy()
    if targets is not None:
        train["target"] = targets
    held_out = pd.concat([datasets_torch.split_table(table, split) for split in ("val", "test")])
    model = small_cnn()
    loader = datasets_torch.make_loader(train, 32, batch_size=8, train=True, augment=False, seed=0)
    history = training_torch.train_classifier(model, loader, None, epochs=10, lr=0.02, progress=False, seed=0)
    scores = evaluation.score_faces(model, held_out, 32)
    return evaluation.learning_check(history["train_loss"], scores["target"], scores["prob_fake"],
                                     groups=scores["video"], level="frame", n_boot=500)


def test_the_learning_check_fails_when_the_labels_are_shuffled(learnable):
    """The check the notebook tests rely on can fail: the same model and training, on labels that
    carry no information, and it does. (A small CNN stands in for InceptionResnetV1, which is too
    slow for the test suite on a CPU; the training loop and the check are the course's.)"""
    honest = _train_and_check(learnable)
    evaluation.assert_learned(honest, require_held_out=True)  # 12 REAL and 12 FAKE held-out videos
    assert honest["roc_auc_ci"][0] > 0.9
    train = datasets_torch.split_table(learnable, "train")
    for seed in (0, 1, 2):
        targets = shuffled_video_labels(train, seed)
        agreement = (targets.to_numpy() == train["target"].to_numpy()).mean()
        assert agreement == 0.5  # as many labels wrong as right, in each class
        shuffled = _train_and_check(learnable, targets)
        assert shuffled["beats_chance"] is False, (seed, shuffled)
        with pytest.raises(AssertionError, match="no sign of having learned"):
            evaluation.assert_learned(shuffled)


def test_clean_losses_before_and_after_show_whether_training_moved_anything(manifest):
    train = datasets_torch.split_table(manifest, "train")
    loader = datasets_torch.make_loader(train, 32, batch_size=4, train=True, augment=False)
    clean = datasets_torch.make_loader(train, 32, batch_size=8)
    learned = training_torch.train_classifier(small_cnn(), loader, None, epochs=4, lr=0.02, progress=False,
                                              clean_loader=clean)
    assert learned["clean_loss_after"] < 0.9 * learned["clean_loss_before"]
    still = training_torch.train_classifier(small_cnn(), loader, None, epochs=4, lr=0.0, progress=False,
                                            clean_loader=clean)
    assert still["clean_loss_after"] == pytest.approx(still["clean_loss_before"], rel=0.02)  # only BatchNorm re-measured
    assert not evaluation.learning_check([still["clean_loss_before"], still["clean_loss_after"]], [0, 1], [0.4, 0.6])[
        "loss_fell"]


def test_ensure_checkpoint_trains_once_then_reuses_the_file(manifest, tmp_path):
    """The notebooks' "no checkpoint from notebook 04 yet" fallback: a quick InceptionResnetV1, saved, then reused."""
    path = tmp_path / "quick" / "quick.pth"
    first, history = training_torch.ensure_checkpoint(
        path, manifest, 80, 1, freeze="backbone", batch_size=4, faces_per_video=1, validate=True, patience=None,
        progress=False, metadata={"trained_on": "fake crops"})
    assert first == path and path.is_file() and history["epochs_run"] == 1
    model, metadata = model_registry.load_checkpoint(path)
    assert metadata["arch"] == models_torch.ARCH and metadata["image_size"] == 80
    assert metadata["trained_on"] == "fake crops" and metadata["pretrained"] is False and metadata["freeze"] == "backbone"
    before = path.stat().st_mtime_ns
    again, history = training_torch.ensure_checkpoint(path, manifest, 80, 1)
    assert again == path and history is None and path.stat().st_mtime_ns == before  # not trained again


def test_ensure_checkpoint_trains_again_when_the_file_is_for_other_data_or_unreadable(manifest, tmp_path, capsys):
    """A quick model made for one dataset is not reused for another, and a damaged file is replaced."""
    path = tmp_path / "quick.pth"
    options = dict(batch_size=4, faces_per_video=1, patience=None, progress=False)
    training_torch.ensure_checkpoint(path, manifest, 80, 1, metadata={"trained_on": "dataset A"}, **options)
    _, history = training_torch.ensure_checkpoint(path, manifest, 80, 1, metadata={"trained_on": "dataset A"})
    assert history is None  # same data, same size: reused
    _, history = training_torch.ensure_checkpoint(path, manifest, 80, 1, metadata={"trained_on": "dataset B"}, **options)
    assert history is not None and "trained_on='dataset A'" in capsys.readouterr().out
    assert model_registry.load_checkpoint(path)[1]["trained_on"] == "dataset B"
    _, history = training_torch.ensure_checkpoint(path, manifest, 96, 1, metadata={"trained_on": "dataset B"}, **options)
    assert history is not None and "image_size=80" in capsys.readouterr().out
    path.write_bytes(b"not a checkpoint")
    _, history = training_torch.ensure_checkpoint(path, manifest, 96, 1, metadata={"trained_on": "dataset B"}, **options)
    assert history is not None and "cannot be used" in capsys.readouterr().out
    assert model_registry.load_checkpoint(path)[1]["image_size"] == 96
