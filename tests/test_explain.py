"""Unit tests for helpers/explain.py: Grad-CAM, overlays, TTA, region shares of aligned maps."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from helpers import explain, geometry, model_registry, tta  # noqa: E402


@pytest.fixture(scope="module")
def facenet():
    """A randomly initialised InceptionResnetV1 with one logit (no download)."""
    from facenet_pytorch import InceptionResnetV1

    torch.manual_seed(0)
    return InceptionResnetV1(pretrained=None, classify=True, num_classes=1).eval()


@pytest.fixture(scope="module")
def faces():
    """Two synthetic 'faces' (smooth blobs with structure) of 128 px, in [0, 1]."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:128, 0:128] / 127.0
    images = []
    for k in range(2):
        base = np.stack([np.sin(6 * xx + k), np.cos(5 * yy - k), xx * yy], axis=0)
        images.append((base - base.min()) / (base.max() - base.min()) * 0.8 + 0.1 * rng.random((3, 128, 128)))
    return torch.tensor(np.stack(images), dtype=torch.float32)


@pytest.fixture(scope="module")
def cams(facenet, faces):
    return explain.gradcam_torch(facenet, faces)


# ------------------------------------------------------------------ Grad-CAM


def test_default_target_layer_is_block8_branch1_last(facenet):
    assert explain.default_target_layer(facenet) is facenet.block8.branch1[-1]


def test_default_target_layer_found_inside_a_wrapper(facenet):
    wrapper = torch.nn.Sequential(facenet)
    assert explain.default_target_layer(wrapper) is facenet.block8.branch1[-1]


def test_default_target_layer_falls_back_to_last_conv():
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Conv2d(4, 5, 3),
                              torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(5, 1))
    assert explain.default_target_layer(net) is net[2]


def test_default_target_layer_of_the_comparison_models():
    models_compare = pytest.importorskip("helpers.models_compare")
    torch.manual_seed(0)
    meso = model_registry.build_model("meso4", image_size=64).eval()
    assert explain.default_target_layer(meso) is models_compare.gradcam_layer(meso)
    cams = explain.gradcam_torch(meso, torch.rand(2, 3, 64, 64))
    assert cams.shape == (2, 64, 64) and cams.min() >= 0 and cams.max() <= 1


def test_gradcam_shape_range_and_not_constant(cams, faces):
    assert cams.shape == (len(faces), 128, 128)
    assert cams.dtype == np.float32
    assert cams.min() >= 0.0 and cams.max() <= 1.0
    stats = explain.cam_stats(cams)
    assert stats["n_constant"] == 0
    for low, high, std in zip(stats["min"], stats["max"], stats["std"]):
        assert low == pytest.approx(0.0, abs=1e-4) and high == pytest.approx(1.0, abs=1e-4)
        assert std > 0.01


def test_gradcam_single_face_and_named_layer(facenet, faces):
    one = explain.gradcam_torch(facenet, faces[0], target_layer="block8.branch1.2")
    assert one.shape == (1, 128, 128)
    np.testing.assert_allclose(one[0], explain.gradcam_torch(facenet, faces[:1])[0], atol=1e-4)


def test_gradcam_real_direction_differs_and_mode_is_restored(facenet, faces, cams):
    facenet.train()
    facenet.block8.eval()  # e.g. a frozen block kept in eval mode while the rest trains
    try:
        real = explain.gradcam_torch(facenet, faces, towards="real")
        assert facenet.training and not facenet.block8.training, "modes must be left as they were"
        assert all(p.grad is None for p in facenet.parameters()), "no gradients may be left behind"
    finally:
        facenet.eval()
    assert real.shape == cams.shape
    assert not np.allclose(real, cams)


def test_gradcam_works_with_frozen_backbone(facenet, faces):
    for parameter in facenet.parameters():
        parameter.requires_grad_(False)
    try:
        frozen = explain.gradcam_torch(facenet, faces[:1])
    finally:
        for parameter in facenet.parameters():
            parameter.requires_grad_(True)
    assert frozen.shape == (1, 128, 128) and frozen.std() > 0.01


def test_gradcam_by_hand_equals_the_library(facenet, faces):
    layer = explain.default_target_layer(facenet)
    for face in faces:
        by_hand = explain.gradcam_by_hand(facenet, face, layer)
        library = explain.gradcam_torch(facenet, face, target_layer=layer)[0]
        assert by_hand.shape == (128, 128) and by_hand.dtype == np.float32
        assert by_hand.std() > 0.01  # a real map, not an all-zero one that would match anything
        assert float(np.abs(by_hand - library).max()) < 1e-4


def test_gradcam_by_hand_steps_on_a_known_network():
    """A one-channel linear network: the map must be the ReLU of (weight x activation), upsampled."""
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 1, 1, bias=False), torch.nn.AdaptiveAvgPool2d(1),
                              torch.nn.Flatten(), torch.nn.Linear(1, 1))
    with torch.no_grad():
        net[0].weight.fill_(1.0)
        net[3].weight.fill_(2.0)
    face = torch.tensor([[[1.0, -1.0], [3.0, 0.0]]])  # 1 channel, 2x2
    cam = explain.gradcam_by_hand(net.eval(), face, net[0])
    # d logit / d activation = 2 / 4 everywhere: weight 0.5; ReLU(0.5 * A) = [[0.5, 0], [1.5, 0]] -> / 1.5
    np.testing.assert_allclose(cam, [[1 / 3, 0.0], [1.0, 0.0]], atol=1e-6)


def test_gradcam_by_hand_leaves_the_model_as_found(facenet, faces):
    layer = explain.default_target_layer(facenet)
    grads_before = [p.grad for p in facenet.parameters()]
    for parameter in facenet.parameters():
        parameter.requires_grad_(False)  # a frozen backbone still gets a map
    try:
        frozen = explain.gradcam_by_hand(facenet, faces[0], layer)
    finally:
        for parameter in facenet.parameters():
            parameter.requires_grad_(True)
    assert frozen.std() > 0.01
    assert not layer._forward_hooks, "the hook was not removed"
    assert all(p.grad is g for p, g in zip(facenet.parameters(), grads_before))
    facenet.train()
    try:
        with pytest.raises(ValueError, match="eval"):
            explain.gradcam_by_hand(facenet, faces[0], layer)
    finally:
        facenet.eval()


def test_gradcam_rejects_bad_shapes(facenet):
    with pytest.raises(ValueError):
        explain.gradcam_torch(facenet, torch.rand(128, 128))
    with pytest.raises(ValueError):
        explain.gradcam_torch(facenet, torch.rand(1, 3, 128, 128), towards="up")


def test_normalise_map_constant_is_zero():
    assert explain.normalise_map(np.full((4, 4), 3.0)).max() == 0.0
    scaled = explain.normalise_map(np.array([[1.0, 3.0], [2.0, 5.0]]))
    assert scaled.min() == 0.0 and scaled.max() == 1.0


# ------------------------------------------------------------------ overlays


def test_overlay_is_not_blank_and_keeps_the_face(faces, cams):
    face = faces[0]
    out = explain.overlay(face, cams[0])
    assert out.dtype == np.uint8 and out.shape == (128, 128, 3)
    assert out.std() > 10 and out.mean() > 30
    # The face must still be visible under the heat map: brighter face -> brighter overlay.
    flat = np.zeros((128, 128), np.float32)
    dark = explain.overlay(np.full((128, 128, 3), 0.05, np.float32), flat)
    bright = explain.overlay(np.full((128, 128, 3), 0.95, np.float32), flat)
    assert bright.astype(int).sum() > dark.astype(int).sum() * 1.5
    # uint8, float HWC and CHW tensors of the same face give the same overlay.
    hwc = face.permute(1, 2, 0).numpy()
    np.testing.assert_array_equal(explain.overlay(hwc, cams[0]), out)
    as_uint8 = explain.overlay((hwc * 255).round().astype(np.uint8), cams[0])
    assert np.abs(as_uint8.astype(int) - out.astype(int)).max() <= 3


def test_overlay_resizes_cam_and_rejects_unscaled_floats():
    face = np.random.default_rng(1).integers(0, 256, (64, 48, 3), dtype=np.uint8)
    cam = np.linspace(0, 1, 16, dtype=np.float32).reshape(4, 4)
    assert explain.overlay(face, cam).shape == (64, 48, 3)
    with pytest.raises(ValueError):
        explain.overlay(face.astype(np.float32), cam)


# ------------------------------------------------------------------ TTA and degradations


class _TinyNet(torch.nn.Module):
    """A small one-logit CNN, fast enough to run every transform in a unit test."""

    def __init__(self):
        super().__init__()
        self.features = torch.nn.Sequential(torch.nn.Conv2d(3, 6, 3, padding=1), torch.nn.ReLU(),
                                            torch.nn.Conv2d(6, 8, 3, padding=1), torch.nn.ReLU())
        self.head = torch.nn.Linear(8, 1)

    def forward(self, x):
        h = self.features(x)
        # position-dependent pooling, so flips and shifts change the output
        weights = torch.linspace(0.2, 1.8, h.shape[-1], device=h.device)
        return self.head((h * weights).mean(dim=(2, 3)))


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(1)
    return _TinyNet().eval()


@pytest.fixture(scope="module")
def batch():
    torch.manual_seed(2)
    smooth = torch.nn.functional.interpolate(torch.rand(5, 3, 8, 8), size=(48, 48), mode="bilinear")
    return smooth.clamp(0, 1)


def test_tta_probabilities_are_in_range_and_average_the_transforms(tiny, batch):
    mean, every = tta.tta_probs(tiny, batch, transforms=None, return_all=True)
    assert mean.shape == (5,) and every.shape == (len(tta.DEFAULT_TTA), 5)
    np.testing.assert_allclose(mean, every.mean(axis=0), rtol=1e-6)
    assert not np.allclose(every[0], every[1]), "the flip should change this position-sensitive model's output"


def test_identity_only_tta_equals_the_plain_prediction(tiny, batch):
    with torch.no_grad():
        plain = torch.sigmoid(tiny(batch)).numpy().ravel()
    identity = tta.tta_probs(tiny, batch, transforms=["identity"])
    np.testing.assert_allclose(identity, plain, rtol=1e-6, atol=1e-7)
    # ... and equals the course's prediction function over a DataLoader of (faces, targets)
    training_torch = pytest.importorskip("helpers.training_torch")
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(batch, torch.zeros(5)), batch_size=2)
    np.testing.assert_allclose(tta.tta_probs(tiny, loader, transforms=["identity"], batch_size=2),
                               training_torch.predict_probs(tiny, loader, "cpu"), rtol=1e-6, atol=1e-7)


def test_tta_accepts_callables_and_restores_mode(tiny, batch):
    tiny.train()
    try:
        probs = tta.tta_probs(tiny, batch.numpy(), transforms=[lambda x: x, "hflip"])
        assert tiny.training
    finally:
        tiny.eval()
    assert probs.shape == (5,)
    with pytest.raises(ValueError):
        tta.tta_probs(tiny, batch, transforms=["rotate_upside_down"])
    with pytest.raises(ValueError):
        tta.tta_probs(tiny, batch, transforms=[])


@pytest.mark.parametrize("name", sorted(tta.TTA_TRANSFORMS))
def test_each_tta_transform_keeps_shape_and_range(name, batch):
    out = tta.TTA_TRANSFORMS[name](batch)
    assert out.shape == batch.shape and out.dtype == batch.dtype
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0


def test_shift_moves_content_and_flip_is_an_involution(batch):
    moved = tta.shift(batch, dx=0.25, dy=0.0)  # 12 px right
    torch.testing.assert_close(moved[..., 12:], batch[..., :-12])
    torch.testing.assert_close(tta.TTA_TRANSFORMS["hflip"](batch.flip(-1)), batch)


def test_degradations_get_stronger_with_level(batch):
    def change(kind, level):
        return float((tta.degrade(batch, kind, level) - batch).abs().mean())

    assert change("jpeg_quality", 10) > change("jpeg_quality", 95) > 0
    assert change("downscale", 0.25) > change("downscale", 0.75) > 0
    assert change("blur_sigma", 3.0) > change("blur_sigma", 0.5) > 0
    assert change("downscale", 1.0) == 0 and change("blur_sigma", 0.0) == 0
    with pytest.raises(ValueError):
        tta.degrade(batch, "sharpen", 1)


def test_outcome_groups_sort_mistakes_and_spread_right_answers():
    labels = [0, 0, 0, 0, 1, 1, 1, 1]
    probs = [0.1, 0.6, 0.9, 0.2, 0.8, 0.4, 0.05, 0.7]
    picked, counts = explain.outcome_groups(labels, probs, per_group=1)
    assert counts == {"REAL, right": 2, "REAL, wrong": 2, "FAKE, right": 2, "FAKE, wrong": 2}
    assert picked["REAL, wrong"].tolist() == [2]  # P = 0.9: the most confident mistake first
    assert picked["FAKE, wrong"].tolist() == [6]  # P = 0.05
    everything, _ = explain.outcome_groups(labels, probs)
    assert everything["REAL, wrong"].tolist() == [2, 1] and everything["FAKE, right"].tolist() == [4, 7]
    none_wrong, counts = explain.outcome_groups([0, 1], [0.2, 0.9], per_group=3)
    assert counts["REAL, wrong"] == 0 and none_wrong["REAL, wrong"].size == 0
    with pytest.raises(ValueError):
        explain.outcome_groups([0, 1], [0.5])


def test_region_shares_and_sentence_follow_the_numbers():
    masks = geometry.region_masks(112)
    on_eyes = masks["eyes"].astype(np.float32)
    shares = explain.region_shares(on_eyes)
    assert shares["eyes"]["activation_share"] == pytest.approx(1.0)
    assert shares["eyes"]["ratio"] == pytest.approx(1 / shares["eyes"]["area_share"])
    assert shares["mouth"]["activation_share"] == 0.0
    sentence = explain.describe_region_shares(shares, "FAKE", 3)
    assert "3 FAKE" in sentence and "More than their area: eyes" in sentence
    assert "partly supported (only the eyes)" in sentence
    eyes_and_mouth = explain.region_shares((masks["eyes"] | masks["mouth"]).astype(np.float32))
    assert "is supported by" in explain.describe_region_shares(eyes_and_mouth, "REAL", 2)
    uniform = explain.region_shares(np.ones((112, 112), np.float32))
    for entry in uniform.values():
        assert entry["ratio"] == pytest.approx(1.0)
    assert "is not supported" in explain.describe_region_shares(uniform, "REAL", 2)
    # only pixels covered by at least half of the faces count
    coverage = np.zeros((112, 112), np.float32)
    coverage[:, :56] = 1
    half = explain.region_shares(np.ones((112, 112), np.float32), coverage)
    assert sum(e["area_share"] for e in half.values()) == pytest.approx(1.0)


def test_average_aligned_of_identical_faces_is_that_face():
    landmarks = geometry.TEMPLATE_5PTS * 112
    cam = np.random.default_rng(3).random((112, 112)).astype(np.float32)
    mean, coverage = explain.average_aligned(np.stack([cam, cam]), np.stack([landmarks, landmarks]), size=112)
    np.testing.assert_allclose(mean, cam, atol=1e-4)
    assert coverage.min() == 1.0


# ------------------------------------------------------------------ Grad-CAM for Keras


def _tiny_keras_models(keras):
    from keras import layers

    keras.utils.set_random_seed(0)
    face = keras.Input((24, 24, 3))
    a = layers.Conv2D(6, 3, padding="same", activation="relu", name="first_conv")(face)
    b = layers.Conv2D(6, 3, padding="same", name="second_conv")(a)
    c = layers.Activation("relu", name="block_out")(layers.Add()([a, b]))
    cnn = keras.Model(face, layers.GlobalAveragePooling2D()(c), name="tiny_cnn")
    frames = keras.Input((3, 24, 24, 3))
    x = layers.TimeDistributed(cnn)(frames)
    x = layers.LSTM(4)(x)
    video = keras.Model(frames, layers.Dense(1, activation="sigmoid")(x), name="tiny_video")
    image = keras.Sequential([keras.Input((24, 24, 3)), cnn, layers.Dense(1, activation="sigmoid")])
    return video, image


@pytest.fixture(scope="module")
def keras_models():
    keras = pytest.importorskip("keras")
    return _tiny_keras_models(keras)


@pytest.fixture(scope="module")
def clips():
    return np.random.default_rng(4).random((2, 3, 24, 24, 3)).astype(np.float32)


def test_gradcam_keras_video_model_gives_a_map_per_frame(keras_models, clips):
    video, _ = keras_models
    assert explain.default_keras_layer(video) == "block_out"
    maps = explain.gradcam_keras(video, clips)
    assert maps.shape == (2, 3, 24, 24) and maps.dtype == np.float32
    assert maps.min() >= 0 and maps.max() <= 1
    stats = explain.cam_stats(maps.reshape(-1, 24, 24))
    assert stats["n_constant"] < 6 and max(stats["std"]) > 0.01


def test_gradcam_keras_a_few_frames_at_a_time_gives_the_same_maps(keras_models, clips, monkeypatch):
    """The layers before the Grad-CAM layer see a few frames per call (memory); the maps do not change."""
    video, _ = keras_models
    whole = explain.gradcam_keras(video, clips)
    for frames_per_call in (1, 4):  # 6 frames in all: one per call, or calls of 4 and 2
        monkeypatch.setattr(explain, "GRADCAM_FRAMES_PER_CALL", frames_per_call)
        np.testing.assert_allclose(explain.gradcam_keras(video, clips), whole, atol=1e-5)


def test_gradcam_keras_image_model_and_inner_layer(keras_models, clips):
    _, image = keras_models
    faces = clips[:, 0]
    maps = explain.gradcam_keras(image, faces)
    inner = explain.gradcam_keras(image, faces, layer_name="first_conv")  # split before a residual add
    assert maps.shape == inner.shape == (2, 24, 24)
    assert not np.allclose(maps, inner)
    assert explain.cam_stats(inner)["n_constant"] == 0
    with pytest.raises(ValueError):
        explain.gradcam_keras(image, faces, layer_name="no_such_layer")


def test_gradcam_keras_matches_a_hand_written_gradcam(keras_models, clips):
    """Same numbers as Grad-CAM computed by hand from the model's own pieces."""
    import keras
    from keras import ops

    _, image = keras_models
    faces = clips[:, 0]
    cnn = image.layers[0]
    conv = keras.Model(cnn.input, cnn.get_layer("block_out").output)
    pool, dense = cnn.layers[-1], image.layers[-1]
    maps = ops.convert_to_numpy(conv(faces))
    if keras.backend.backend() != "tensorflow":
        pytest.skip("the hand-written reference uses tf.GradientTape")
    import tensorflow as tf

    maps_t = tf.convert_to_tensor(maps)
    with tf.GradientTape() as tape:
        tape.watch(maps_t)
        score = tf.reduce_sum(dense(pool(maps_t))[:, 0])
    grads = tape.gradient(score, maps_t).numpy()
    weights = grads.mean(axis=(1, 2))
    expected = np.maximum((maps * weights[:, None, None, :]).sum(-1), 0)
    got = explain.gradcam_keras(image, faces)
    for e, g in zip(expected, got):  # same map size here (no stride), so no resizing involved
        np.testing.assert_allclose(g, explain.normalise_map(e), atol=1e-4)


def test_gradcam_keras_same_maps_on_tensorflow_and_torch_backends(keras_models, clips, tmp_path):
    """The model saved on one backend, loaded on the other, explained the same way."""
    import json
    import os
    import subprocess
    import sys

    import keras

    video, _ = keras_models
    here = keras.backend.backend()
    other = "torch" if here != "torch" else "tensorflow"
    model_path, clips_path, out_path = tmp_path / "video.keras", tmp_path / "clips.npy", tmp_path / "maps.npy"
    video.save(str(model_path))
    np.save(clips_path, clips)
    script = ("import numpy as np, keras, json; from helpers import explain; "
              f"m = keras.saving.load_model({str(model_path)!r}); "
              f"np.save({str(out_path)!r}, explain.gradcam_keras(m, np.load({str(clips_path)!r}))); "
              "print(json.dumps(keras.backend.backend()))")
    env = {**os.environ, "KERAS_BACKEND": other, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == other
    np.testing.assert_allclose(np.load(out_path), explain.gradcam_keras(video, clips), atol=2e-3)


def test_gradcam_keras_on_the_course_resnet_lstm():
    models_keras = pytest.importorskip("helpers.models_keras")
    keras = pytest.importorskip("keras")
    keras.utils.set_random_seed(0)
    model = models_keras.build_resnet_lstm(seq_len=2, image_size=64, pretrained=False, lstm_units=8, dense_units=8)
    assert explain.default_keras_layer(model) == models_keras.LAST_CONV_LAYER
    clips = np.random.default_rng(5).random((1, 2, 64, 64, 3)).astype(np.float32)
    maps = explain.gradcam_keras(model, clips)
    assert maps.shape == (1, 2, 64, 64) and 0 <= maps.min() and maps.max() <= 1
