"""InceptionResnetV1 classifier: building, freezing, checkpoints in the report's format and their errors."""
import json
import urllib.error

import pytest
import torch

from helpers import config, model_registry, models_torch


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return models_torch.build_inception_classifier(pretrained=False).eval()


def faces(n=2, size=96, seed=0):
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def test_one_logit_per_face(model):
    with torch.no_grad():
        out = model(faces(3))
    assert out.shape == (3, 1) and torch.isfinite(out).all()


def test_the_classifier_is_the_reports_network_with_one_logit():
    """build_inception_classifier (embedding network + a new Linear(512, 1)) equals facenet-pytorch's
    InceptionResnetV1(classify=True, num_classes=1): same modules, checkpoint keys and, per seed, weights."""
    from facenet_pytorch import InceptionResnetV1

    torch.manual_seed(7)
    ours = models_torch.build_inception_classifier(pretrained=False)
    torch.manual_seed(7)
    reports = InceptionResnetV1(pretrained=None, classify=True, num_classes=1)
    assert isinstance(ours.logits, torch.nn.Linear) and (ours.logits.in_features, ours.logits.out_features) == (512, 1)
    ours_state, reports_state = ours.state_dict(), reports.state_dict()
    assert list(ours_state) == list(reports_state)
    assert all(torch.equal(ours_state[k], reports_state[k]) for k in ours_state)
    x = faces(2, seed=3)
    with torch.no_grad():
        assert torch.allclose(ours.eval()(x), reports.eval()(x), atol=1e-6)
    embedding = models_torch.load_face_network(pretrained=False)  # without the head: unit-length embeddings
    with torch.no_grad():
        out = embedding.eval()(x)
    assert out.shape == (2, 512) and torch.allclose(out.norm(dim=1), torch.ones(2), atol=1e-5)


def test_freeze_backbone_leaves_only_the_head_trainable():
    frozen = models_torch.build_inception_classifier(pretrained=False, freeze="backbone")
    trainable = {n.split(".")[0] for n, p in frozen.named_parameters() if p.requires_grad}
    assert trainable == {"last_linear", "last_bn", "logits"}
    counts = models_torch.count_parameters(frozen)
    assert 0 < counts["trainable"] < counts["total"] / 10
    models_torch.train_mode(frozen)
    assert frozen.logits.training and not frozen.repeat_2.training and not frozen.conv2d_1a.bn.training
    models_torch.set_freeze(frozen, "none")
    assert all(p.requires_grad for p in frozen.parameters())
    with pytest.raises(ValueError, match="Unknown FREEZE"):
        models_torch.set_freeze(frozen, "everything")


def test_offline_pretrained_download_gives_a_clear_error(monkeypatch, tmp_path):
    import facenet_pytorch.models.inception_resnet_v1 as irv1

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def no_network(url, destination, *args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(irv1, "download_url_to_file", no_network)
    with pytest.raises(models_torch.PretrainedWeightsError) as info:
        models_torch.build_inception_classifier(pretrained=True)
    message = str(info.value)
    assert "PRETRAINED = False" in message and str(tmp_path / "checkpoints") in message


def test_checkpoint_round_trip_in_both_loading_paths(model, tmp_path):
    path = models_torch.save_checkpoint(model, tmp_path / "resnetinceptionv1_epoch_3.pth", 3,
                                        image_size=96, trained_on="unit test", threshold=0.5)
    raw = torch.load(path, map_location="cpu", weights_only=True)
    assert set(raw) >= {"model_state_dict", "epoch", "image_size", "arch", "freeze", "threshold", "trained_on"}
    loaded, metadata = models_torch.load_checkpoint(path)
    assert metadata["epoch"] == 3 and metadata["image_size"] == 96 and metadata["arch"] == models_torch.ARCH
    # The report's inference code: a plain InceptionResnetV1 and load_state_dict.
    from facenet_pytorch import InceptionResnetV1

    plain = InceptionResnetV1(classify=True, num_classes=1)
    plain.load_state_dict(raw["model_state_dict"])
    plain.eval()
    x = faces(2, seed=5)
    with torch.no_grad():
        expected = model(x)
        assert torch.allclose(loaded(x), expected, atol=1e-6)
        assert torch.allclose(plain(x), expected, atol=1e-6)
    assert not list(tmp_path.glob("*.partial"))  # the temporary file of the all-or-nothing write is gone


def test_metadata_must_be_plain_values(model, tmp_path):
    with pytest.raises(TypeError, match="odd"):
        models_torch.save_checkpoint(model, tmp_path / "x.pth", 1, odd=object())


def test_missing_file_is_a_checkpoint_error(tmp_path):
    with pytest.raises(models_torch.CheckpointError, match="No checkpoint at .*notebooks/04"):
        models_torch.load_checkpoint(tmp_path / "nothing.pth")


def test_a_file_that_is_not_a_checkpoint(tmp_path):
    text = tmp_path / "notes.pth"
    text.write_text("these are not weights")
    with pytest.raises(models_torch.CheckpointError, match="not a readable PyTorch checkpoint"):
        models_torch.load_checkpoint(text)
    other = tmp_path / "list.pth"
    torch.save([1, 2, 3], other)
    with pytest.raises(models_torch.CheckpointError, match="model_state_dict"):
        models_torch.load_checkpoint(other)
    assert text.read_text() == "these are not weights"  # never modified


def test_truncated_checkpoint(model, tmp_path):
    path = models_torch.save_checkpoint(model, tmp_path / "full.pth", 1)
    cut = tmp_path / "cut.pth"
    cut.write_bytes(path.read_bytes()[: 4096])
    with pytest.raises(models_torch.CheckpointError, match="truncated"):
        models_torch.load_checkpoint(cut)


def test_weights_of_another_model_do_not_load(tmp_path):
    small = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(), torch.nn.LazyLinear(1))
    small(torch.zeros(1, 3, 8, 8))
    path = models_torch.save_checkpoint(small, tmp_path / "small.pth", 1)  # arch defaults to InceptionResnetV1
    with pytest.raises(models_torch.CheckpointError, match="do not fit"):
        models_torch.load_checkpoint(path)
    path = models_torch.save_checkpoint(small, tmp_path / "mystery.pth", 1, arch="mystery_net")
    with pytest.raises(models_torch.CheckpointError, match="model_registry.load_checkpoint"):
        models_torch.load_checkpoint(path)  # this module rebuilds InceptionResnetV1 only
    with pytest.raises(models_torch.CheckpointError, match="unknown architecture 'mystery_net'"):
        model_registry.load_checkpoint(path)  # the registry knows every architecture, and not this one


def test_a_bare_state_dict_is_accepted_as_the_report_model(model, tmp_path):
    path = tmp_path / "bare.pth"
    torch.save(model.state_dict(), path)
    loaded, metadata = models_torch.load_checkpoint(path)
    assert metadata["arch"] == models_torch.ARCH and metadata["image_size"] == models_torch.DEFAULT_IMAGE_SIZE


def test_default_checkpoint_prefers_the_pointer_then_the_newest(model, tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPFAKE_DATA_DIR", str(tmp_path / "data"))
    assert models_torch.default_checkpoint() is None
    folder = config.models_dir()
    first = models_torch.save_checkpoint(model, folder / "resnetinceptionv1_epoch_2.pth", 2)
    second = models_torch.save_checkpoint(model, folder / "resnetinceptionv1_epoch_5.pth", 5)
    import os
    os.utime(first, (1, 1))
    assert models_torch.default_checkpoint() == second
    pointer = models_torch.mark_default_checkpoint(first, video_rule="mean")
    assert json.loads(pointer.read_text())["video_rule"] == "mean"
    assert models_torch.default_checkpoint() == first.resolve()
    first.unlink()  # the pointer's file is gone: fall back to the newest
    assert models_torch.default_checkpoint() == second
