"""The built-in sample generator: determinism, fakes, portrait and no-face clips."""
from __future__ import annotations

import json

import numpy as np
import pytest

from helpers import data_sources, sample_data

TINY = dict(n_real=3, n_fake=3, n_noface=1, width=160, height=120, seconds=0.4, fps=10,
            portrait_fraction=0.34, n_identities=3)


def decoded_frames(path) -> np.ndarray:
    import av

    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def test_profiles_and_overrides():
    smoke = sample_data.sample_settings("smoke")
    standard = sample_data.sample_settings("standard")
    assert smoke["n_real"] + smoke["n_fake"] < standard["n_real"] + standard["n_fake"]
    assert standard["n_noface"] >= 1
    assert sample_data.sample_settings("smoke", n_real=7, width=None)["n_real"] == 7
    assert sample_data.sample_settings("smoke", width=None)["width"] == smoke["width"]
    with pytest.raises(ValueError, match="Unknown sample setting"):
        sample_data.sample_settings("smoke", n_reals=3)
    with pytest.raises(ValueError, match="even"):
        sample_data.sample_settings("smoke", width=321)
    with pytest.raises(ValueError, match="1920x1080"):
        sample_data.sample_settings("smoke", width=2560, height=1440)


def test_landmarks_are_cached(tmp_path, monkeypatch):
    first = sample_data.portrait_landmarks()
    assert first.shape == (5, 2)
    left_eye, right_eye, nose, mouth_left, mouth_right = first
    assert left_eye[0] < right_eye[0] and mouth_left[0] < mouth_right[0]
    assert max(left_eye[1], right_eye[1]) < nose[1] < min(mouth_left[1], mouth_right[1])
    # the second call must not need MTCNN at all
    import builtins

    real_import = builtins.__import__

    def no_facenet(name, *args, **kwargs):
        if name.startswith("facenet_pytorch"):
            raise AssertionError("MTCNN ran again although the landmarks were cached")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_facenet)
    assert np.allclose(sample_data.portrait_landmarks(), first)


def test_make_clip_is_deterministic(tmp_path):
    a = sample_data.make_clip(tmp_path / "a.mp4", 128, 96, seconds=0.3, fake=True, seed=3, fps=10)
    b = sample_data.make_clip(tmp_path / "b.mp4", 128, 96, seconds=0.3, fake=True, seed=3, fps=10)
    c = sample_data.make_clip(tmp_path / "c.mp4", 128, 96, seconds=0.3, fake=True, seed=4, fps=10)
    assert a["label"] == "FAKE" and a["n_frames"] == 3
    timings = ("seconds_to_make", "cpu_seconds_to_make")
    assert {k: v for k, v in a.items() if k not in timings} == {k: v for k, v in b.items() if k not in timings}
    assert np.array_equal(decoded_frames(tmp_path / "a.mp4"), decoded_frames(tmp_path / "b.mp4"))
    assert not np.array_equal(decoded_frames(tmp_path / "a.mp4"), decoded_frames(tmp_path / "c.mp4"))
    assert not list(tmp_path.glob("*.partial*"))


def test_fake_changes_the_face_and_little_else(tmp_path):
    real = sample_data.make_clip(tmp_path / "r.mp4", 320, 240, seconds=0.3, fake=False, seed=11, fps=10,
                                 return_landmarks=True)
    fake = sample_data.make_clip(tmp_path / "f.mp4", 320, 240, seconds=0.3, fake=True, seed=11, fps=10,
                                 strength=0.8)
    assert real["label"] == "REAL" and fake["label"] == "FAKE" and fake["strength"] == 0.8
    diff = np.abs(decoded_frames(tmp_path / "r.mp4").astype(int) - decoded_frames(tmp_path / "f.mp4").astype(int))
    lm = np.asarray(real["landmarks"][1])
    eye = np.linalg.norm(lm[1] - lm[0])
    (cx, cy) = lm.mean(axis=0)
    x0, x1 = int(cx - 0.8 * eye), int(cx + 0.8 * eye)
    y0, y1 = int(cy - 0.8 * eye), int(cy + 0.8 * eye)
    inside = diff[1, y0:y1, x0:x1].mean()
    outside = diff[1].copy()
    outside[:, max(0, int(cx - 3 * eye)):int(cx + 3 * eye)] = 0  # leave out everything near the face
    assert inside > 4.0, inside
    assert inside > 5 * outside.mean(), (inside, outside.mean())


def test_portrait_clip_and_its_size(tmp_path):
    info = sample_data.make_clip(tmp_path / "p.mp4", 96, 160, seconds=0.2, fake=False, seed=1, fps=10)
    probed = data_sources.inspect_video(tmp_path / "p.mp4")
    assert (info["width"], info["height"]) == (96, 160)
    assert (probed["width"], probed["height"], probed["codec"]) == (96, 160, "h264")


def test_face_is_where_mtcnn_finds_it_and_noface_has_none(tmp_path):
    from facenet_pytorch import MTCNN

    detector = MTCNN(keep_all=True, device="cpu")
    face = sample_data.make_clip(tmp_path / "face.mp4", 320, 240, seconds=0.2, seed=5, fps=10,
                                 return_landmarks=True)
    empty = sample_data.make_clip(tmp_path / "empty.mp4", 320, 240, seconds=0.2, seed=5, fps=10, has_face=False)
    assert empty["has_face"] is False and empty["label"] == "REAL"
    frames = list(decoded_frames(tmp_path / "face.mp4"))
    boxes, probs, points = detector.detect(frames, landmarks=True)
    for i, frame_points in enumerate(points):
        assert frame_points is not None, f"no face found in frame {i}"
        found = np.asarray(frame_points[0], dtype=np.float32)
        truth = np.asarray(face["landmarks"][i])
        assert np.abs(found - truth).max() < 0.35 * np.linalg.norm(truth[1] - truth[0])
    boxes, _ = detector.detect(list(decoded_frames(tmp_path / "empty.mp4")))
    assert all(b is None for b in boxes)


def test_generate_sample_is_deterministic_and_consistent(tmp_path):
    one = sample_data.generate_sample(tmp_path / "one", "smoke", progress=False, seed=5, **TINY)
    two = sample_data.generate_sample(tmp_path / "two", "smoke", progress=False, seed=5, **TINY)
    meta = json.loads((one / "metadata.json").read_text())
    assert meta == json.loads((two / "metadata.json").read_text())
    assert len(meta) == 7
    for name in meta:
        assert np.array_equal(decoded_frames(one / name), decoded_frames(two / name)), name
    labels = [e["label"] for e in meta.values()]
    assert labels.count("FAKE") == 3 and labels.count("REAL") == 4
    for name, entry in meta.items():
        assert entry["split"] in ("train", "val", "test")
        if entry["label"] == "FAKE":
            assert meta[entry["original"]]["label"] == "REAL"
            assert meta[entry["original"]]["split"] == entry["split"]
        else:
            assert entry["original"] is None
    generation = json.loads((one / "generation.json").read_text())
    videos = generation["videos"]
    assert sum(not v["has_face"] for v in videos.values()) == 1
    assert any(v["height"] > v["width"] for v in videos.values())  # a portrait clip and its fake
    # an identity's clips share one split
    split_of_group = {}
    for name, v in videos.items():
        split_of_group.setdefault(v["group"], set()).add(meta[name]["split"])
    assert all(len(s) == 1 for s in split_of_group.values())
    df = data_sources.load_dataset(one)
    assert set(df.columns) >= {"name", "path", "label", "target", "split", "original", "width", "height",
                               "fps", "n_frames", "duration_s", "size_bytes"}
    assert (df["n_frames"] == 4).all()
    assert not (tmp_path / "one.partial").exists()


def test_prepare_sample_is_cached(monkeypatch):
    first = data_sources.prepare_dataset("sample", "smoke", progress=False)
    stamp = (first / "metadata.json").stat().st_mtime_ns

    def fail(*args, **kwargs):
        raise AssertionError("the sample was generated again")

    monkeypatch.setattr(sample_data, "generate_sample", fail)
    again = data_sources.prepare_dataset("sample", "smoke")
    assert again == first and (again / "metadata.json").stat().st_mtime_ns == stamp
    with pytest.raises(AssertionError, match="generated again"):
        data_sources.prepare_dataset("sample", "smoke", seed=7)  # other settings: another folder
