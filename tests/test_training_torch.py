"""The training loop on a tiny separable problem, predictions, and the video-rule choice."""
import numpy as np
import pandas as pd
import pytest
import torch

from helpers import datasets_torch, models_torch, training_torch
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
    assert all(np.isfinite(history["train_loss"])) and all(0 <= a <= 1 for a in history["val_acc"])
    assert history["faces_per_second"] > 0 and not history["amp"]  # no autocast on the CPU
    best = history["best_epoch"]
    assert history["val_loss"][best - 1] == min(history["val_loss"])
    saved = sorted(p.name for p in tmp_path.glob("*.pth"))
    assert saved == [f"resnetinceptionv1_epoch_{best}.pth"]  # only the best one is kept
    # The model ends with the best epoch's weights, identical to the checkpoint.
    reloaded, metadata = models_torch.load_checkpoint(history["best_checkpoint"], model=small_cnn(seed=1))
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
    assert probs.shape == (len(test),) and np.all((probs >= 0) & (probs <= 1))
    assert np.allclose(training_torch.predict_probs(model, (b[0] for b in loader)), probs, atol=1e-6)
    frame = training_torch.score_faces(model, test, 32)
    assert list(frame["video"]) == list(test["video"])
    assert frame["label"].tolist() == test["target"].tolist() and np.allclose(frame["prob_fake"], probs, atol=1e-6)


def test_video_rules_compared_and_the_better_one_chosen():
    # Fakes that show in few frames: the confident rule separates them, the mean barely does.
    rows = []
    for v in range(6):
        label = v % 2
        scores = [0.95, 0.9] + [0.3] * 8 if label else [0.1] * 10
        rows += [{"video": f"v{v}", "label": label, "prob_fake": s} for s in scores]
    table = pd.DataFrame(rows)
    comparison = training_torch.compare_video_rules(table)
    assert set(comparison) == {"mean", "confident"}
    assert comparison["confident"]["log_loss"] < comparison["mean"]["log_loss"]
    assert training_torch.choose_video_rule(comparison) == "confident"
    assert training_torch.choose_video_rule({"mean": {"log_loss": 0.2}, "confident": {"log_loss": 0.2}}) == "mean"
    assert training_torch.choose_video_rule({"mean": {"roc_auc": 0.7}, "confident": {"roc_auc": 0.9}},
                                            metric="roc_auc") == "confident"


def test_plot_history_draws_both_panels():
    history = {"train_loss": [0.7, 0.5], "val_loss": [0.69, 0.6], "train_acc": [0.5, 0.8],
               "val_acc": [0.5, 0.7], "best_epoch": 2}
    fig = training_torch.plot_history(history)
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
