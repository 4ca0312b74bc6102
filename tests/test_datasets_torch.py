"""FaceCropDataset, the augmentation and the loaders, on a tiny fake crop manifest."""
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch

import fake_crops
from helpers import datasets_torch


def paint_by_class(rng, target, frame_number, crop_size):
    """FAKE faces are bright with a white stripe, REAL ones dark."""
    base = 170 if target else 70
    face = rng.integers(base - 40, base + 40, (crop_size, crop_size, 3)).astype(np.uint8)
    if target:
        face[:, crop_size // 3: crop_size // 2] = 255
    return face


def make_fake_manifest(folder: Path, videos_per_class: int = 3, faces_per_video: int = 4,
                       crop_size: int = 48, splits=("train", "val", "test")) -> pd.DataFrame:
    return pd.DataFrame(fake_crops.write_crops(folder, paint_by_class, videos_per_class, faces_per_video,
                                               crop_size, splits))


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    return make_fake_manifest(tmp_path_factory.mktemp("crops"))


def test_items_are_float_tensors_in_unit_range_at_the_asked_size(manifest):
    dataset = datasets_torch.FaceCropDataset(manifest, image_size=64)
    assert len(dataset) == len(manifest)
    x, y = dataset[0]
    assert x.shape == (3, 64, 64) and x.dtype == torch.float32
    assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0 and float(x.max()) > 0.1
    assert y.dtype == torch.float32 and float(y) in (0.0, 1.0)
    fake_index = int(np.flatnonzero(manifest["target"].to_numpy() == 1)[0])
    assert float(dataset[fake_index][1]) == 1.0


def test_channels_are_rgb_not_bgr(tmp_path):
    path = tmp_path / "red.png"
    red = np.zeros((20, 20, 3), np.uint8)
    red[..., 0] = 255  # RGB red
    cv2.imwrite(str(path), cv2.cvtColor(red, cv2.COLOR_RGB2BGR))
    table = pd.DataFrame({"crop_path": [str(path)], "target": [1]})
    x, _ = datasets_torch.FaceCropDataset(table, image_size=20)[0]
    assert float(x[0].mean()) == pytest.approx(1.0) and float(x[2].mean()) == pytest.approx(0.0)


def test_no_augmentation_unless_asked(manifest):
    plain = datasets_torch.FaceCropDataset(manifest, image_size=48)
    assert plain.augment is None
    assert torch.equal(plain[3][0], plain[3][0])  # deterministic
    augmented = datasets_torch.FaceCropDataset(manifest, image_size=48, augment=True, seed=1)
    assert augmented.augment is not None
    draws = [augmented[3][0] for _ in range(6)]
    assert all(d.shape == (3, 48, 48) and 0 <= float(d.min()) and float(d.max()) <= 1 for d in draws)
    assert any(not torch.equal(d, plain[3][0]) for d in draws)


def test_train_augmentation_keeps_size_and_dtype():
    aug = datasets_torch.train_augmentation(64, seed=0)
    face = np.random.default_rng(0).integers(0, 255, (80, 80, 3)).astype(np.uint8)
    out = aug(image=face)["image"]
    assert out.shape == (64, 64, 3) and out.dtype == np.uint8


def test_rows_without_a_face_are_dropped_and_an_empty_manifest_is_an_error(manifest):
    table = manifest.copy()
    table.loc[0, "status"] = "no_face"
    table.loc[0, "crop_path"] = None
    assert len(datasets_torch.FaceCropDataset(table, 32)) == len(manifest) - 1
    with pytest.raises(ValueError, match="no face crops"):
        datasets_torch.FaceCropDataset(table.assign(status="no_face"), 32)
    with pytest.raises(ValueError, match="crop_path"):
        datasets_torch.FaceCropDataset(table.drop(columns=["crop_path"]), 32)


def test_a_missing_crop_file_names_the_file(manifest, tmp_path):
    table = manifest.head(1).assign(crop_path=str(tmp_path / "gone.png"))
    with pytest.raises(FileNotFoundError, match="gone.png"):
        datasets_torch.FaceCropDataset(table, 32)[0]


def test_loaders_batch_shuffle_only_for_training(manifest):
    train = datasets_torch.make_loader(manifest, 32, batch_size=5, train=True, seed=3)
    x, y = next(iter(train))
    assert x.shape == (5, 3, 32, 32) and y.shape == (5,)
    assert train.drop_last and train.dataset.augment is not None
    evaluation = datasets_torch.make_loader(manifest, 32, batch_size=5)
    assert not evaluation.drop_last and evaluation.dataset.augment is None
    targets = torch.cat([b[1] for b in evaluation]).numpy()
    assert np.array_equal(targets, manifest["target"].to_numpy(dtype=np.float32))


def test_split_table_and_faces_per_video(manifest):
    val = datasets_torch.split_table(manifest, "val")
    assert set(val["split"]) == {"val"} and len(val) == 6 * 4
    with pytest.raises(ValueError, match="'nope' split"):
        datasets_torch.split_table(manifest, "nope")
    few = datasets_torch.limit_faces_per_video(manifest, 2)
    assert few.groupby("video").size().max() == 2 and few["video"].nunique() == manifest["video"].nunique()
    assert len(datasets_torch.limit_faces_per_video(manifest, None)) == len(manifest)
