"""The Keras face-sequence loader, on a tiny fake crop manifest (the faces module's contract)."""
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

import fake_crops
from helpers import datasets_keras

REPO = Path(__file__).resolve().parents[1]


def paint_numbered(rng, target, frame_number, crop_size):
    """Random pixels; the top-left pixel tells the frame number."""
    face = rng.integers(30, 220, (crop_size, crop_size, 3)).astype(np.uint8)
    face[0, 0] = frame_number
    return face


def make_sequence_manifest(folder: Path, videos_per_class: int = 2, faces_per_video: int = 5,
                           crop_size: int = 40, splits=("train", "val", "test")) -> pd.DataFrame:
    """One crop row per face, frames in shuffled row order.

    Each video also gets a frame with a second, less confident face (whose
    crop is pure white) and a frame without a face (status "no_face").
    """
    rows = fake_crops.write_crops(folder, paint_numbered, videos_per_class, faces_per_video, crop_size, splits)
    for video in dict.fromkeys(r["video"] for r in rows):
        first = next(r for r in rows if r["video"] == video)
        white = Path(folder) / f"{video[:-4]}_second_face.png"
        cv2.imwrite(str(white), np.full((crop_size, crop_size, 3), 255, np.uint8))
        rows.append(fake_crops.row(video, 0, white, first["label"], first["target"], first["split"], prob=0.5))
        rows.append(fake_crops.row(video, 999, None, first["label"], first["target"], first["split"],
                                   prob=np.nan, status="no_face", reason="no face found"))
    return pd.DataFrame(rows).sample(frac=1.0, random_state=1).reset_index(drop=True)


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    return make_sequence_manifest(tmp_path_factory.mktemp("keras_crops"))


def test_importing_the_keras_helpers_does_not_import_keras():
    code = ("import sys; import helpers.datasets_keras, helpers.models_keras; "
            "assert 'keras' not in sys.modules and 'tensorflow' not in sys.modules, 'keras imported'")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_sequence_indices_spread_evenly_and_repeat_when_short():
    assert datasets_keras.sequence_indices(10, 4).tolist() == [0, 3, 6, 9]
    assert datasets_keras.sequence_indices(2, 4).tolist() == [0, 0, 1, 1]
    assert datasets_keras.sequence_indices(1, 3).tolist() == [0, 0, 0]
    with pytest.raises(ValueError):
        datasets_keras.sequence_indices(0, 3)


def test_video_table_keeps_ok_rows_best_face_per_frame_in_frame_order(manifest):
    table = datasets_keras.video_table(manifest)
    assert len(table) == 12 and set(table["split"]) == {"train", "val", "test"}
    assert (table["n_faces"] == 5).all()  # the no-face row and the weaker second face are gone
    row = table.iloc[0]
    assert all("second_face" not in p for p in row["crop_paths"])
    assert [Path(p).stem[-3:] for p in row["crop_paths"]] == ["000", "001", "002", "003", "004"]
    assert set(table["target"]) == {0, 1} and table["target"].dtype.kind == "i"
    assert len(datasets_keras.video_table(manifest, min_faces=6, verbose=False)) == 0
    with pytest.raises(ValueError, match="extract_faces"):
        datasets_keras.video_table(manifest.drop(columns=["crop_path"]))


def test_normalisation_minmax_stretches_each_frame_to_exactly_0_1():
    rng = np.random.default_rng(1)
    frame = rng.integers(40, 200, (16, 16, 3)).astype(np.uint8)
    x = datasets_keras.normalize_frame(frame, "minmax")
    assert x.dtype == np.float32 and x.min() == 0.0 and x.max() == 1.0
    scaled = datasets_keras.normalize_frame(frame, "scale")
    assert np.allclose(scaled, frame / 255.0) and scaled.min() > 0.1
    assert np.all(datasets_keras.normalize_frame(np.full((4, 4, 3), 7, np.uint8)) == 0.0)
    with pytest.raises(ValueError):
        datasets_keras.normalize_frame(frame, "imagenet")


def test_face_sequence_batches_have_the_documented_shape_range_and_labels(manifest):
    table = datasets_keras.video_table(manifest)
    train = table[table["split"] == "train"]
    ds = datasets_keras.FaceSequenceDataset(train, seq_len=3, image_size=32, batch_size=3)
    assert len(ds) == 2
    x, y = ds[0]
    assert x.shape == (3, 3, 32, 32, 3) and x.dtype == np.float32
    assert y.shape == (3,) and y.dtype == np.float32
    assert y.tolist() == train["target"].iloc[:3].astype(float).tolist()
    for frame in x.reshape(-1, 32, 32, 3):  # the report's per-frame min-max: each frame spans [0, 1]
        assert frame.min() == 0.0 and frame.max() == 1.0
    last_x, last_y = ds[1]
    assert last_x.shape[0] == 1 and last_y.shape == (1,)
    with pytest.raises(IndexError):
        ds[2]
    # also accepts the raw manifest (rows of one split) and the "scale" normalisation
    raw = datasets_keras.FaceSequenceDataset(manifest[manifest["split"] == "val"], seq_len=5, image_size=40,
                                             batch_size=8, normalization="scale")
    xs, _ = raw[0]
    assert xs.shape == (4, 5, 40, 40, 3) and 0.0 <= xs.min() and xs.max() <= 1.0
    # frames come in time order: the marker pixel holds the frame number
    assert [round(float(v) * 255) for v in xs[0, :, 0, 0, 0]] == [0, 1, 2, 3, 4]


def test_augmentation_only_on_train_and_the_same_for_every_frame(manifest, tmp_path):
    datasets = datasets_keras.sequence_datasets(manifest, seq_len=3, image_size=32, batch_size=8, seed=3)
    assert datasets["train"].augment and datasets["train"].shuffle
    assert not datasets["val"].augment and not datasets["test"].augment
    assert not datasets["val"].shuffle and not datasets["test"].shuffle
    first, second = datasets["test"][0][0], datasets["test"][0][0]
    assert np.array_equal(first, second)  # no randomness outside training
    train = datasets["train"]
    reads = [train[0][0] for _ in range(3)]
    assert not all(np.array_equal(reads[0], r) for r in reads[1:])  # a fresh augmentation each read
    for r in reads:
        assert r.min() >= 0.0 and r.max() <= 1.0
    # one video made of a single repeated face: augmentation must not make its frames differ
    face = np.random.default_rng(2).integers(0, 255, (32, 32, 3)).astype(np.uint8)
    path = tmp_path / "same.png"
    cv2.imwrite(str(path), face)
    still = pd.DataFrame({"video": ["v.mp4"] * 4, "frame_index": range(4), "crop_path": [str(path)] * 4,
                          "target": [1] * 4, "split": ["train"] * 4})
    ds = datasets_keras.FaceSequenceDataset(still, seq_len=4, image_size=32, augment=True, seed=0)
    for _ in range(5):
        x = ds[0][0][0]
        assert all(np.array_equal(x[0], x[t]) for t in range(1, 4))


def test_clear_errors_for_missing_crops_and_empty_splits(manifest, tmp_path):
    broken = manifest.copy()
    broken.loc[broken["crop_path"].notna(), "crop_path"] = str(tmp_path / "gone.png")
    ds = datasets_keras.FaceSequenceDataset(broken[broken["split"] == "test"], seq_len=2, image_size=32)
    with pytest.raises(FileNotFoundError, match="extract_faces"):
        ds[0]
    with pytest.raises(ValueError, match="'val' split"):
        datasets_keras.sequence_datasets(manifest[manifest["split"] != "val"], seq_len=2, image_size=32)


def test_feature_sequences_draw_one_view_per_video_when_shuffled():
    n, t, d = 5, 3, 4
    clean = np.zeros((n, t, d), np.float32)
    augmented = np.ones((n, t, d), np.float32)
    labels = np.array([0, 1, 0, 1, 1])
    ordered = datasets_keras.FeatureSequenceDataset([clean, augmented], labels, batch_size=2)
    x, y = ordered[0]
    assert x.shape == (2, t, d) and np.all(x == 0) and y.tolist() == [0.0, 1.0]
    assert len(ordered) == 3 and ordered[2][0].shape == (1, t, d)
    shuffled = datasets_keras.FeatureSequenceDataset([clean, augmented], labels, batch_size=5, shuffle=True, seed=0)
    seen = set()
    for _ in range(6):
        x, y = shuffled[0]
        assert sorted(y.tolist()) == sorted(labels.astype(float).tolist())
        seen.update(np.unique(x).tolist())
        shuffled.on_epoch_end()
    assert seen == {0.0, 1.0}
    with pytest.raises(ValueError):
        datasets_keras.FeatureSequenceDataset(clean, labels[:3])
