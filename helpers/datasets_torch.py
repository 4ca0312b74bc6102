"""PyTorch datasets and loaders over the face-crop manifest.

The face stage (``helpers.faces``) saves one PNG per detected face and lists
them in the crop manifest (``helpers.crop_manifest``) (one row per crop, with ``crop_path``, ``target``
(1 = FAKE), ``split`` and ``video``). This module turns such a table into
tensors the way the report feeds InceptionResnetV1: RGB, resized to a square
``image_size`` and scaled to [0, 1] (no mean/std normalisation).

Augmentation (albumentations) is applied to the uint8 face *before* scaling,
and only when asked for: training sets use it, validation and test sets never
do, so their scores are comparable from epoch to epoch.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset

from . import crop_manifest

REQUIRED_COLUMNS = ("crop_path", "target")


def train_augmentation(image_size: int, seed: int | None = None):
    """The training-time augmentation: mild changes a real video could show.

    Horizontal flip; a small shift / scale / rotation; brightness and contrast;
    JPEG re-compression (videos on the web are re-encoded, and a detector
    must not rely on compression traces alone); a light blur. Each is applied
    with some probability, so many faces pass through almost unchanged.
    """
    import albumentations as A

    return A.Compose(
        [
            A.HorizontalFlip(p=0.5),
            A.Affine(scale=(0.92, 1.08), translate_percent=(-0.04, 0.04), rotate=(-8, 8),
                     border_mode=cv2.BORDER_REFLECT_101, p=0.5),
            A.RandomBrightnessContrast(brightness_limit=0.15, contrast_limit=0.15, p=0.5),
            A.ImageCompression(quality_range=(60, 95), p=0.4),
            A.GaussianBlur(blur_limit=(3, 3), sigma_limit=(0.2, 0.8), p=0.15),
            A.Resize(image_size, image_size),
        ],
        seed=seed,
    )


def to_tensor(face: np.ndarray) -> torch.Tensor:
    """RGB uint8 (H, W, 3) -> float tensor (3, H, W) in [0, 1]."""
    face = np.ascontiguousarray(face)
    return torch.from_numpy(face).permute(2, 0, 1).float().div_(255.0)


class FaceCropDataset(Dataset):
    """Face crops from a manifest table -> ``(tensor 3 x S x S in [0, 1], float target)``.

    ``manifest_df`` needs the columns ``crop_path`` and ``target`` (1 = FAKE);
    rows whose ``status`` is not "ok" are dropped (those are frames without a
    face). ``augment`` is False (no augmentation), True (the course's
    :func:`train_augmentation`) or any albumentations-style callable
    ``f(image=...) -> {"image": ...}``.
    """

    def __init__(self, manifest_df: pd.DataFrame, image_size: int, augment=False, seed: int | None = None):
        table = crop_manifest.crop_rows(manifest_df, REQUIRED_COLUMNS).reset_index(drop=True)
        if len(table) == 0:
            raise ValueError("The manifest holds no face crops (no row with status 'ok'): "
                             "check that face extraction found faces in these videos.")
        self.table = table
        self.image_size = int(image_size)
        if augment is True:
            augment = train_augmentation(self.image_size, seed=seed)
        self.augment = None if augment is None or augment is False else augment
        self.paths = table["crop_path"].astype(str).tolist()
        self.targets = table["target"].astype("float32").to_numpy()

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int):
        face = crop_manifest.read_crop(self.paths[index], self.image_size)
        if self.augment is not None:
            face = self.augment(image=face)["image"]
            if face.shape[:2] != (self.image_size, self.image_size):
                face = cv2.resize(face, (self.image_size, self.image_size))
        return to_tensor(face), torch.tensor(self.targets[index])


def make_loader(manifest_df: pd.DataFrame, image_size: int, batch_size: int = 32, train: bool = False,
                augment: bool | None = None, num_workers: int = 0, seed: int = 42) -> DataLoader:
    """A DataLoader over ``manifest_df``.

    ``train=True`` shuffles (seeded), augments (unless ``augment=False``) and
    drops an incomplete last batch: InceptionResnetV1 ends in a BatchNorm1d
    layer, which cannot train on a batch of one face. Evaluation loaders keep
    the table's order, so predictions line up with its rows (``loader.dataset.table``).
    """
    if augment is None:
        augment = train
    dataset = FaceCropDataset(manifest_df, image_size, augment=augment, seed=seed if augment else None)
    generator = torch.Generator().manual_seed(seed) if train else None
    drop_last = train and len(dataset) > batch_size
    return DataLoader(dataset, batch_size=batch_size, shuffle=train, drop_last=drop_last,
                      num_workers=num_workers, generator=generator,
                      pin_memory=torch.cuda.is_available(),
                      persistent_workers=num_workers > 0)


def split_table(manifest_df: pd.DataFrame, split: str) -> pd.DataFrame:
    """Rows of one split ("train", "val" or "test") with a face; a clear error if there are none."""
    if "split" not in manifest_df.columns:
        raise ValueError("The manifest has no 'split' column; build it with helpers.crop_manifest.load_manifest.")
    table = manifest_df[manifest_df["split"] == split]
    if "status" in table.columns:
        table = table[table["status"] == "ok"]
    if len(table) == 0:
        raise ValueError(f"No face crops in the {split!r} split. Check the dataset's metadata.json "
                         "(every split needs videos) and that faces were found.")
    return table.reset_index(drop=True)


def limit_faces_per_video(manifest_df: pd.DataFrame, per_video: int | None) -> pd.DataFrame:
    """Keep at most ``per_video`` crops of each video (evenly spaced in time); None keeps all."""
    if per_video is None:
        return manifest_df
    order = "frame_index" if "frame_index" in manifest_df.columns else None
    kept = []
    for _, group in manifest_df.groupby("video", sort=False):
        if order:
            group = group.sort_values(order)
        if len(group) > per_video:
            positions = np.linspace(0, len(group) - 1, per_video).round().astype(int)
            group = group.iloc[np.unique(positions)]
        kept.append(group)
    return pd.concat(kept).reset_index(drop=True) if kept else manifest_df.iloc[:0]
