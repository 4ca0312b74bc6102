"""The built-in sample generator: determinism, fakes, portrait and no-face clips."""
from __future__ import annotations

import json

import numpy as np
import pytest

from helpers import data_sources, metadata, sample_data

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
        assert entry["split"] is None  # the generator makes videos; prepare_dataset splits them (below)
        if entry["label"] == "FAKE":
            assert meta[entry["original"]]["label"] == "REAL"
        else:
            assert entry["original"] is None
    generation = json.loads((one / "generation.json").read_text())
    videos = generation["videos"]
    assert sum(not v["has_face"] for v in videos.values()) == 1
    assert any(v["height"] > v["width"] for v in videos.values())  # a portrait clip and its fake
    df = data_sources.load_dataset(one)
    assert set(df.columns) >= {"name", "path", "label", "target", "split", "original", "width", "height",
                               "fps", "n_frames", "duration_s", "size_bytes"}
    assert (df["n_frames"] == 4).all()
    assert not (tmp_path / "one.partial").exists()


def test_prepare_dataset_splits_the_sample_by_identity_and_original():
    folder = data_sources.prepare_dataset("sample", "smoke", progress=False, seed=5, **TINY)
    meta = json.loads((folder / "metadata.json").read_text())
    assert {e["split"] for e in meta.values()} <= {"train", "val", "test"}
    assert None not in {e["split"] for e in meta.values()}
    for entry in meta.values():
        if entry["label"] == "FAKE":
            assert meta[entry["original"]]["split"] == entry["split"]
    groups = {name: v["group"] for name, v in sample_data.read_generation(folder)["videos"].items()}
    split_of_group = {}
    for name, group in groups.items():
        split_of_group.setdefault(group, set()).add(meta[name]["split"])
    assert all(len(s) == 1 for s in split_of_group.values())  # an identity's clips share one split
    # the split is the one metadata.split_entries makes from the identities, and it is made once
    entries = {name: {k: v for k, v in e.items() if k != "split"} for name, e in meta.items()}
    expected = metadata.split_entries(entries, fractions=sample_data.sample_settings("smoke")["fractions"], seed=5,
                                      groups=groups)
    assert {n: e["split"] for n, e in expected.items()} == {n: e["split"] for n, e in meta.items()}


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


# ----------------------------------------------------------------------------
# Difficulty "medium" / "hard": methods, regions, nuisances, photos
# ----------------------------------------------------------------------------

def _plan_pair(method: str, seed: int = 21, difficulty: str = "medium", photo_index: int = 0):
    """A small clip plan and a fake of ``method`` made from it (rendered in memory, not encoded)."""
    pool = sample_data.identity_pool(6, seed, difficulty)
    identity = pool[photo_index]
    plan = sample_data.plan_clip(seed, 256, 192, 0.4, 10, identity, difficulty=difficulty)
    swap = sample_data.plan_swap(seed, identity, pool, strength=0.9, method=method, difficulty=difficulty)
    return plan, swap


@pytest.mark.parametrize("method", sample_data.METHODS)
def test_each_method_changes_only_its_region(method):
    plan, swap = _plan_pair(method)
    assert plan.nuisances and swap.method == method
    real = list(sample_data._render(plan, None))
    fake = list(sample_data._render(plan, swap))
    margin = 12  # the distribution nuisances (blur, rescaling) spread a change by a few pixels
    for (r, lm, none_box), (f, _, box) in zip(real, fake):
        assert none_box is None and box is not None
        diff = np.abs(r.astype(int) - f.astype(int)).max(axis=2)
        x0, y0, x1, y1 = box
        outside = diff.copy()
        outside[max(0, y0 - margin):y1 + margin, max(0, x0 - margin):x1 + margin] = 0
        assert outside.max() == 0, (method, outside.max())
        assert diff[y0:y1, x0:x1].mean() > 1.0, (method, diff[y0:y1, x0:x1].mean())
        centre_y = (y0 + y1) / 2
        nose_y, eye_y = lm[2][1], lm[:2, 1].mean()
        region = sample_data.METHOD_REGIONS[method]
        if region == "mouth":
            assert centre_y > nose_y and y0 > eye_y, (box, lm)
        elif region == "eyes":
            assert centre_y < nose_y and y1 < lm[3:, 1].min(), (box, lm)
        else:  # the whole face: eyes and mouth inside the box
            assert x0 <= lm[:, 0].min() and x1 >= lm[:, 0].max() and y0 <= lm[:, 1].min() and y1 >= lm[:, 1].max()


def test_method_region_and_boxes_are_recorded(tmp_path):
    info = sample_data.make_clip(tmp_path / "m.mp4", 256, 192, seconds=0.3, fake=True, seed=4, fps=10,
                                 difficulty="medium", method="mouth")
    assert (info["method"], info["region"], info["difficulty"]) == ("mouth", "mouth", "medium")
    assert len(info["region_boxes"]) == info["n_frames"] == len(info["face_boxes"])
    for (fx0, fy0, fx1, fy1), (x0, y0, x1, y1) in zip(info["face_boxes"], info["region_boxes"]):
        assert fx0 - 2 <= x0 < x1 <= fx1 + 2 and y0 > (fy0 + fy1) / 2 - 0.2 * (fy1 - fy0)  # lower face
    with pytest.raises(ValueError, match="methods"):
        sample_data.plan_swap(1, sample_data.make_identity(0, 1), [sample_data.make_identity(0, 1)], method="eyes")
    with pytest.raises(ValueError, match="Unknown manipulation method"):
        sample_data.make_clip(tmp_path / "x.mp4", 128, 96, seconds=0.2, fake=True, difficulty="hard", method="morph")


def test_medium_clip_is_deterministic(tmp_path):
    kwargs = dict(seconds=0.3, fake=True, fps=10, difficulty="hard", method="flicker")
    a = sample_data.make_clip(tmp_path / "a.mp4", 160, 128, seed=8, **kwargs)
    b = sample_data.make_clip(tmp_path / "b.mp4", 160, 128, seed=8, **kwargs)
    sample_data.make_clip(tmp_path / "c.mp4", 160, 128, seed=9, **kwargs)
    timings = ("seconds_to_make", "cpu_seconds_to_make")
    assert {k: v for k, v in a.items() if k not in timings} == {k: v for k, v in b.items() if k not in timings}
    assert np.array_equal(decoded_frames(tmp_path / "a.mp4"), decoded_frames(tmp_path / "b.mp4"))
    assert not np.array_equal(decoded_frames(tmp_path / "a.mp4"), decoded_frames(tmp_path / "c.mp4"))


def test_every_photo_has_a_licence_and_landmarks():
    for name, photo in sample_data.PHOTOS.items():
        assert sample_data.photo_path(name).is_file(), name
        assert photo.licence in ("public domain", "CC0 1.0") and photo.source and photo.subject
        lm = sample_data.portrait_landmarks(photo=name)
        assert lm.shape == (5, 2) and lm[0][0] < lm[1][0]
    assert set(sample_data.PHOTO_CYCLE) == set(sample_data.PHOTOS)
    identities = sample_data.identity_pool(10, 3, "medium")
    assert {i.photo for i in identities} == set(sample_data.PHOTOS)
    assert any(i.smile or i.turn or i.brows for i in identities)
    assert {i.photo for i in sample_data.identity_pool(5, 3, "easy")} == {"grace_hopper"}


def test_medium_sample_records_methods_nuisances_and_licences(tmp_path):
    settings = dict(TINY, n_fake=5, n_real=4, n_identities=4)
    out = sample_data.generate_sample(tmp_path / "m", "smoke", progress=False, seed=3, difficulty="medium",
                                      **{k: v for k, v in settings.items()})
    meta = json.loads((out / "metadata.json").read_text())
    generation = json.loads((out / "generation.json").read_text())
    videos = generation["videos"]
    fakes = {n: e for n, e in meta.items() if e["label"] == "FAKE"}
    assert sorted(e["method"] for e in fakes.values()) == sorted(sample_data.METHODS)  # one of each
    assert all(e["difficulty"] == "medium" for e in fakes.values())
    assert all("method" not in e and "difficulty" not in e for e in meta.values() if e["label"] == "REAL")
    assert generation["methods"] == {m: 1 for m in sample_data.METHODS}
    for photo in {v["photo"] for v in videos.values()}:
        assert generation["photos"][photo]["licence"] in ("public domain", "CC0 1.0")
    # nuisances: drawn for every clip, real or fake; a fake has its original's; they vary across reals
    keys = {"exposure", "white_balance", "lens_blur", "filter", "rescale"}
    for name, v in videos.items():
        assert set(v["nuisances"]) == keys, name
        if meta[name]["label"] == "FAKE":
            original = videos[meta[name]["original"]]
            assert v["nuisances"] == original["nuisances"] and v["crf"] == original["crf"]
            assert v["region"] == sample_data.METHOD_REGIONS[v["method"]]
            assert sum(b is not None for b in v["region_boxes"]) == v["n_frames"]
        else:
            assert "method" not in v and "region_boxes" not in v
    reals = [v for n, v in videos.items() if meta[n]["label"] == "REAL"]
    assert len({v["crf"] for v in reals}) > 1 and len({v["nuisances"]["exposure"] for v in reals}) == len(reals)
    df = data_sources.load_dataset(out)
    assert set(df.loc[df.label == "REAL", "method"]) == {"real"}
    assert set(df.loc[df.label == "FAKE", "method"]) == set(sample_data.METHODS)


def test_reals_are_untouched_by_any_manipulation(tmp_path):
    """A REAL clip of a sample is exactly its plan rendered without a fake, nothing pasted."""
    settings = sample_data.sample_settings("smoke", **dict(TINY, seed=6))
    videos = sample_data.plan_sample(settings)
    real = next(v for v in videos if v["label"] == "REAL" and v["plan"].has_face)
    fake = next(v for v in videos if v["original"] == real["name"])
    assert real["swap"] is None and fake["swap"] is not None
    info = sample_data._render_to_file(tmp_path / "r.mp4", real["plan"], None)
    assert "method" not in info and "region_boxes" not in info
    frames = [f for f, _ in sample_data.render_frames(real["plan"])]
    direct = tmp_path / "direct.mp4"
    sample_data.write_video(direct, frames, real["plan"].width, real["plan"].height, real["plan"].fps, real["plan"].crf)
    assert np.array_equal(decoded_frames(tmp_path / "r.mp4"), decoded_frames(direct))
