"""Unit tests of helpers/model_registry.py: one table of architectures, builders, Grad-CAM layers, checkpoints."""
import pytest
import torch

from helpers import model_registry, models_compare, models_torch


def test_the_table_holds_the_report_model_and_every_comparison_model():
    assert model_registry.known_architectures() == (models_torch.ARCH, *models_compare.ARCHITECTURES)
    assert set(model_registry.DISPLAY_NAMES) == set(model_registry.ARCHITECTURES) | {"ensemble"}
    assert model_registry.DISPLAY_NAMES["meso4"] == "MesoNet (Meso-4)"
    with pytest.raises(ValueError, match="resnet9000"):
        model_registry.build_model("resnet9000")


@pytest.mark.parametrize("name", ["custom_cnn", "meso4"])
def test_built_models_give_one_logit_and_have_a_gradcam_layer_inside(name):
    model = model_registry.build_model(name, image_size=64).eval()
    assert model(torch.zeros(2, 3, 64, 64)).shape == (2, 1)
    layer = model_registry.gradcam_layer(model)
    assert any(layer is module for module in model.modules())


def test_gradcam_layer_of_inception_is_block8_branch1_and_unknown_networks_are_refused():
    model = model_registry.build_model(models_torch.ARCH)
    assert model_registry.gradcam_layer(model) is model.block8.branch1[-1]
    with pytest.raises(TypeError):
        model_registry.gradcam_layer(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3)))


def test_checkpoint_round_trip_rebuilds_the_saved_architecture(tmp_path):
    torch.manual_seed(0)
    model = model_registry.build_model("meso4", image_size=64).eval()
    path = model_registry.save_checkpoint(model, tmp_path / "m.pth", epoch=2, arch="meso4", image_size=64)
    loaded, metadata = model_registry.load_checkpoint(path)
    assert isinstance(loaded, models_compare.Meso4) and metadata["arch"] == "meso4" and metadata["epoch"] == 2
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(model(x), loaded(x))


def test_save_refuses_a_face_size_the_architecture_cannot_take(tmp_path):
    model = model_registry.build_model("custom_cnn")
    with pytest.raises(ValueError, match="from 32"):
        model_registry.save_checkpoint(model, tmp_path / "d.pth", epoch=1, arch="densenet121", image_size=20)
    assert not (tmp_path / "d.pth").exists()
