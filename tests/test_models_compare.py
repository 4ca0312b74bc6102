"""Unit tests of helpers/models_compare.py: shapes, published parameter counts, checkpoints, errors."""
from __future__ import annotations

import math
import urllib.error

import pytest
import torch

from helpers import model_registry, models_torch
from helpers import models_compare as mc


def _conv(cin, cout, k):
    return k * k * cin * cout + cout


def _bn(channels):  # gamma and beta are trained; running mean/var are not
    return 2 * channels


def _dense(fin, fout):
    return fin * fout + fout


@pytest.mark.parametrize("name,size", [(n, s) for n in mc.ARCHITECTURES for s in (64, 96)
                                       if not (n == "densenet121" and s == 96)])  # DenseNet: slow on CPU
def test_every_model_returns_one_finite_logit_per_face(name, size):
    torch.manual_seed(0)
    model = model_registry.build_model(name, image_size=size).eval()
    with torch.no_grad():
        out = model(torch.rand(3, 3, size, size))
    assert out.shape == (3, 1)
    assert torch.isfinite(out).all()


def test_meso4_has_the_published_27977_parameters_at_256():
    # Worked out layer by layer from the paper's description.
    expected = (_conv(3, 8, 3) + _bn(8) + _conv(8, 8, 5) + _bn(8) + _conv(8, 16, 5) + _bn(16)
                + _conv(16, 16, 5) + _bn(16)
                + _dense(16 * 8 * 8, 16) + _dense(16, 1))  # 256 / (2*2*2*4) = 8
    model = model_registry.build_model("meso4", image_size=256)
    # the paper's figure (Afchar et al. 2018, arXiv:1809.00888) against our layer-by-layer count and the model's
    assert models_torch.count_parameters(model)["trainable"] == expected == 27_977
    assert model.feature_side == 8


def test_meso4_keeps_the_checkpoint_layout():
    """Meso4 is written out in one class (notebook 05 shows it); its weights keep their names, so
    checkpoints saved before still load, and MesoInception-4's blocks use the same layout."""
    keys = list(mc.Meso4(64).state_dict())
    assert keys[:7] == ["features.0.0.weight", "features.0.0.bias", "features.0.2.weight", "features.0.2.bias",
                        "features.0.2.running_mean", "features.0.2.running_var", "features.0.2.num_batches_tracked"]
    assert keys[-4:] == ["head.2.weight", "head.2.bias", "head.5.weight", "head.5.bias"]
    block = mc.MesoInception4(64).features[-1]
    assert [type(m).__name__ for m in block] == [type(m).__name__ for m in mc.Meso4(64).features[-1]]


def test_meso4_layers_are_the_published_ones():
    model = mc.Meso4(256)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size) for c in convs] == [(8, (3, 3)), (8, (5, 5)), (16, (5, 5)), (16, (5, 5))]
    pools = [m.kernel_size for m in model.modules() if isinstance(m, torch.nn.MaxPool2d)]
    assert pools == [2, 2, 2, 4]
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()) == 4
    assert [m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)] == [0.5, 0.5]
    leaky = [m for m in model.modules() if isinstance(m, torch.nn.LeakyReLU)]
    assert len(leaky) == 1 and leaky[0].negative_slope == pytest.approx(0.1)
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert [(l.in_features, l.out_features) for l in linears] == [(1024, 16), (16, 1)]


def test_mesoinception4_has_28615_parameters_at_256():
    def inception(cin, a, b, c, d):
        return (_conv(cin, a, 1) + sum(_conv(cin, n, 1) + _conv(n, n, 3) for n in (b, c, d)))

    expected = (inception(3, 1, 4, 4, 2) + _bn(11) + inception(11, 2, 4, 4, 2) + _bn(12)
                + _conv(12, 16, 5) + _bn(16) + _conv(16, 16, 5) + _bn(16)
                + _dense(1024, 16) + _dense(16, 1))
    assert expected == 28_615
    model = model_registry.build_model("mesoinception4", image_size=256)
    assert models_torch.count_parameters(model)["trainable"] == expected


def test_densenet121_has_about_7_million_parameters_with_a_one_logit_head():
    model = model_registry.build_model("densenet121", pretrained=False)
    n = models_torch.count_parameters(model)["trainable"]
    # torchvision's 7,978,856 minus the 1000-way layer (1024*1000+1000) plus a 1-way one (1024+1)
    assert n == 7_978_856 - 1_025_000 + 1_025
    assert model.net.classifier.out_features == 1
    # ImageNet normalisation travels with the model (buffers, not parameters)
    state = model.state_dict()
    assert torch.allclose(state["mean"].flatten(), torch.tensor(mc.IMAGENET_MEAN))


def test_custom_cnn_is_small_and_size_agnostic():
    model = model_registry.build_model("custom_cnn").eval()
    n = models_torch.count_parameters(model)["trainable"]
    assert mc.PUBLISHED_PARAMETERS["meso4"] < n < 200_000
    with torch.no_grad():
        assert model(torch.rand(1, 3, 160, 160)).shape == (1, 1)
        assert model(torch.rand(1, 3, 256, 256)).shape == (1, 1)


def test_meso_feature_side_follows_same_padding():
    assert [mc.Meso4(s).feature_side for s in (256, 160, 96, 100)] == [8, 5, 3, math.ceil(100 / 32)]
    with torch.no_grad():
        assert mc.Meso4(100).eval()(torch.rand(1, 3, 100, 100)).shape == (1, 1)


def test_meso4_rejects_the_wrong_face_size_clearly():
    model = model_registry.build_model("meso4", image_size=96)
    with pytest.raises(ValueError, match="image_size=128"):
        model(torch.rand(1, 3, 128, 128))


def test_unknown_model_name_is_an_error():
    with pytest.raises(ValueError, match="Unknown model"):
        model_registry.build_model("resnet9000")


@pytest.mark.parametrize("name", ["custom_cnn", "meso4"])
def test_a_few_steps_of_training_lower_the_loss(name):
    torch.manual_seed(0)
    model = model_registry.build_model(name, image_size=32)
    x = torch.rand(16, 3, 32, 32)
    y = torch.zeros(16, 1)
    y[8:] = 1
    x[8:, 0] += 0.5  # fakes are redder: an easy, learnable difference
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    model.eval()
    with torch.no_grad():
        before = loss_fn(model(x), y).item()
    model.train()
    for _ in range(60):
        optimiser.zero_grad()
        loss_fn(model(x), y).backward()
        optimiser.step()
    model.eval()
    with torch.no_grad():
        after = loss_fn(model(x), y).item()
    assert after < before


def test_pretrained_densenet_uses_the_default_imagenet_weights(monkeypatch):
    import torchvision.models

    seen = {}
    real = torchvision.models.densenet121

    def fake_densenet121(weights=None, **kwargs):
        seen["weights"] = weights
        return real(weights=None, **kwargs)

    monkeypatch.setattr(torchvision.models, "densenet121", fake_densenet121)
    model_registry.build_model("densenet121", pretrained=True)
    assert seen["weights"] is torchvision.models.DenseNet121_Weights.DEFAULT


def test_pretrained_densenet_offline_gives_a_clear_error(monkeypatch):
    import torchvision.models

    def offline(weights=None, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torchvision.models, "densenet121", offline)
    with pytest.raises(RuntimeError, match="PRETRAINED = False") as info:
        model_registry.build_model("densenet121", pretrained=True)
    assert str(mc.densenet_weights_path()) in str(info.value)
    assert mc.densenet_weights_path().name == "densenet121-a639ec97.pth"


def test_checkpoint_round_trip(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPFAKE_DATA_DIR", str(tmp_path))
    torch.manual_seed(1)
    model = model_registry.build_model("meso4", image_size=64).eval()
    path = model_registry.save_compare_checkpoint(model, "meso4", image_size=64, epoch=3, note="test")
    assert path == tmp_path / "models" / "compare_meso4.pth"
    loaded, metadata = model_registry.load_compare_checkpoint(path)
    assert metadata["arch"] == "meso4" and metadata["image_size"] == 64
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(model(x), loaded(x))
    saved = torch.load(path, weights_only=True)  # plain data only: safe to read
    assert "model_state_dict" in saved and saved["epoch"] == 3 and saved["note"] == "test"
    # the course's general loader reads it too
    again, _ = model_registry.load_checkpoint(path)
    assert isinstance(again, mc.Meso4)


def test_bad_checkpoints_get_clear_messages(tmp_path):
    with pytest.raises(FileNotFoundError, match="05_model_comparison"):
        model_registry.load_compare_checkpoint(tmp_path / "missing.pth")
    broken = tmp_path / "broken.pth"
    broken.write_bytes(b"not a checkpoint")
    with pytest.raises(RuntimeError, match="truncated"):
        model_registry.load_compare_checkpoint(broken)
    other = tmp_path / "other.pth"
    from helpers import models_torch
    models_torch.save_checkpoint(models_torch.build_inception_classifier(pretrained=False), other, epoch=1)
    with pytest.raises(ValueError, match="model_registry.load_checkpoint"):
        model_registry.load_compare_checkpoint(other)
    assert broken.read_bytes() == b"not a checkpoint"  # never touched


def test_gradcam_layer_exists_for_every_model():
    for name in mc.ARCHITECTURES:
        model = model_registry.build_model(name, image_size=64)
        layer = mc.gradcam_layer(model)
        assert any(layer is m for m in model.modules())
