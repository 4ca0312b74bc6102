"""Face sequences per video for Keras, read from the crop manifest.

A video becomes one training sample: ``seq_len`` of its face crops, evenly
spaced in time, resized to ``image_size`` and stacked into a
(T, H, W, 3) float32 array with values in [0, 1]. Labels: 1 = FAKE, 0 = REAL.

* :class:`FaceSequenceDataset` - a ``keras.utils.PyDataset`` of face sequences
  (batches ``(B, T, H, W, 3)``, ``(B,)``), with albumentations augmentation when
  ``augment=True`` (the training split only: :func:`sequence_datasets` does that).
  The same random transform is applied to every frame of a sequence, so the
  model cannot "see" augmentation as flicker between frames.
* :class:`FeatureSequenceDataset` - the same samples after a frozen CNN has
  turned each face into a feature vector (cached arrays ``(N, T, D)``); with
  several cached copies (views) of each video, one is drawn per epoch.

Normalisation. The report's ``train_transform`` min-max normalises each frame:
the darkest value of the frame becomes 0, the brightest 1 (over all three
channels together, as ``cv2.normalize(..., NORM_MINMAX)`` does). That is
``normalization="minmax"`` here, the default. ``"scale"`` divides by 255
instead. Either way the loader hands out [0, 1] images; converting them into
what Keras' ImageNet ResNet50 expects (``resnet50.preprocess_input``: BGR,
0-255, ImageNet mean subtracted) is the model's first layer, not the loader's
(see :mod:`helpers.models_keras`).

Importing this module does not import Keras (the backend must be chosen
first); the two dataset classes are created on first access.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from . import crop_manifest

NORMALIZATIONS = ("minmax", "scale")
_LAZY_CLASSES = ("FaceSequenceDataset", "FeatureSequenceDataset")


# --------------------------------------------------------------------------- #
# Plain NumPy / pandas parts
# --------------------------------------------------------------------------- #


def sequence_indices(n_available: int, seq_len: int) -> np.ndarray:
    """``seq_len`` positions spread evenly over ``n_available`` faces (repeats when there are too few)."""
    if n_available < 1:
        raise ValueError("A video needs at least one face crop.")
    if seq_len < 1:
        raise ValueError("seq_len must be at least 1.")
    return np.round(np.linspace(0, n_available - 1, seq_len)).astype(int)


def video_table(manifest: pd.DataFrame, min_faces: int = 1, verbose: bool = True) -> pd.DataFrame:
    """One row per video: ``video, label, target, split, n_faces, crop_paths`` (in frame order).

    Uses rows with ``status == "ok"`` when the manifest has a status column;
    when a frame has several faces, keeps its most confident one. Videos with
    fewer than ``min_faces`` faces are dropped (the report dropped short videos too).
    """
    rows = crop_manifest.crop_rows(manifest, ["video", "frame_index", "crop_path", "target", "split"])
    if "prob" in rows.columns:
        rows = rows.sort_values("prob", ascending=False, kind="stable")
    rows = rows.drop_duplicates(["video", "frame_index"]).sort_values(["video", "frame_index"], kind="stable")
    if "label" not in rows.columns:
        rows = rows.assign(label=np.where(rows["target"].astype(int) == 1, "FAKE", "REAL"))
    table = (rows.groupby("video", sort=True)
             .agg(label=("label", "first"), target=("target", "first"), split=("split", "first"),
                  n_faces=("crop_path", "size"), crop_paths=("crop_path", list))
             .reset_index())
    table["target"] = table["target"].astype(int)
    short = table["n_faces"] < min_faces
    if short.any() and verbose:
        print(f"Dropping {int(short.sum())} video(s) with fewer than {min_faces} faces.")
    return table[~short].reset_index(drop=True)


def normalize_frame(frame: np.ndarray, method: str = "minmax") -> np.ndarray:
    """uint8 RGB frame -> float32 in [0, 1]: per-frame min-max (the report's) or divide by 255."""
    x = np.asarray(frame, dtype=np.float32)
    if method == "scale":
        return x / 255.0
    if method == "minmax":
        lo, hi = float(x.min()), float(x.max())
        return (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)
    raise ValueError(f"Unknown normalization {method!r}; choose from {NORMALIZATIONS}.")


def sequence_augmentation(seed: int | None = None):
    """Training augmentation for face sequences (albumentations), same draw for all frames of a call.

    Mirror, small shifts / zooms / rotations, brightness and contrast, and
    JPEG re-compression (fakes spread on social media are re-encoded, so the
    model should not rely on compression traces).
    """
    import albumentations as A

    return A.Compose([
        A.HorizontalFlip(p=0.5),
        A.Affine(scale=(0.9, 1.1), translate_percent=(-0.05, 0.05), rotate=(-10, 10), p=0.5),
        A.RandomBrightnessContrast(brightness_limit=0.2, contrast_limit=0.2, p=0.5),
        A.ImageCompression(quality_range=(60, 100), p=0.3),
    ], seed=seed)


def load_sequence(crop_paths, seq_len: int, image_size: int, normalization: str = "minmax",
                  augmentation=None) -> np.ndarray:
    """One video's (seq_len, H, W, 3) float32 sequence in [0, 1]."""
    positions = sequence_indices(len(crop_paths), seq_len)
    frames = np.stack([crop_manifest.read_crop(crop_paths[i], image_size) for i in positions])
    if augmentation is not None:
        frames = np.asarray(augmentation(images=frames)["images"])
    return np.stack([normalize_frame(f, normalization) for f in frames])


# --------------------------------------------------------------------------- #
# Keras datasets (created when first accessed)
# --------------------------------------------------------------------------- #


def _define_classes() -> None:
    if "FaceSequenceDataset" in globals():
        return
    import keras

    class FaceSequenceDataset(keras.utils.PyDataset):
        """Batches of face sequences, one per video: ``(B, T, H, W, 3)`` in [0, 1] and ``(B,)`` labels.

        ``source`` is the crop manifest (one row per crop; filter the split
        first) or a :func:`video_table`. ``augment=True`` draws a random
        augmentation per video each time it is read (training only).
        """

        def __init__(self, source: pd.DataFrame, seq_len: int, image_size: int, batch_size: int = 4,
                     augment: bool = False, shuffle: bool = False, normalization: str = "minmax",
                     seed: int = 0, min_faces: int = 1, **kwargs):
            super().__init__(**kwargs)
            if normalization not in NORMALIZATIONS:
                raise ValueError(f"Unknown normalization {normalization!r}; choose from {NORMALIZATIONS}.")
            table = source if "crop_paths" in source.columns else video_table(source, min_faces)
            if len(table) == 0:
                raise ValueError("No videos with face crops to read: check the split name and the face manifest.")
            self.table = table.reset_index(drop=True)
            self.seq_len, self.image_size, self.batch_size = int(seq_len), int(image_size), int(batch_size)
            self.augment, self.shuffle, self.normalization, self.seed = augment, shuffle, normalization, seed
            self.augmentation = sequence_augmentation(seed) if augment else None
            self._rng = np.random.default_rng(seed)
            self.order = np.arange(len(self.table))
            if shuffle:
                self._rng.shuffle(self.order)

        @property
        def videos(self) -> list:
            return self.table["video"].tolist()

        @property
        def labels(self) -> np.ndarray:
            return self.table["target"].to_numpy(dtype=np.float32)

        def __len__(self) -> int:
            return math.ceil(len(self.table) / self.batch_size)

        def __getitem__(self, index):
            if not 0 <= index < len(self):
                raise IndexError(index)
            rows = self.order[index * self.batch_size:(index + 1) * self.batch_size]
            x = np.stack([load_sequence(self.table.at[r, "crop_paths"], self.seq_len, self.image_size,
                                        self.normalization, self.augmentation) for r in rows])
            return x, self.labels[rows]

        def on_epoch_end(self):
            if self.shuffle:
                self._rng.shuffle(self.order)

        def signature(self) -> dict:
            """What the samples depend on (for feature caches)."""
            return {"videos": self.videos,
                    "crops": [[str(Path(p).name) for p in paths] for paths in self.table["crop_paths"]],
                    "crop_dirs": sorted({str(Path(p).parent) for paths in self.table["crop_paths"] for p in paths}),
                    "seq_len": self.seq_len, "image_size": self.image_size,
                    "normalization": self.normalization,
                    "augmentation_seed": self.seed if self.augment else None}

    class FeatureSequenceDataset(keras.utils.PyDataset):
        """Batches of cached per-frame features ``(B, T, D)`` and labels ``(B,)``.

        ``views`` is one array ``(N, T, D)`` or a list of them: the clean
        features and augmented copies of the same videos. Each epoch every
        video is served from a randomly drawn view (always view 0 with one).
        """

        def __init__(self, views, labels, batch_size: int = 8, shuffle: bool = False, seed: int = 0, **kwargs):
            super().__init__(**kwargs)
            views = [np.asarray(v, dtype=np.float32) for v in (views if isinstance(views, (list, tuple)) else [views])]
            if any(v.shape != views[0].shape for v in views):
                raise ValueError("All feature views must have the same shape (N, T, D).")
            self.views = np.stack(views)
            self.labels = np.asarray(labels, dtype=np.float32).ravel()
            if len(self.labels) != self.views.shape[1]:
                raise ValueError(f"{self.views.shape[1]} feature sequences but {len(self.labels)} labels.")
            self.batch_size, self.shuffle = int(batch_size), shuffle
            self._rng = np.random.default_rng(seed)
            self.order = np.arange(len(self.labels))
            self._draw()

        def _draw(self):
            if self.shuffle:
                self._rng.shuffle(self.order)
            self.view_of = (self._rng.integers(0, len(self.views), len(self.labels)) if self.shuffle
                            else np.zeros(len(self.labels), dtype=int))

        def __len__(self) -> int:
            return math.ceil(len(self.labels) / self.batch_size)

        def __getitem__(self, index):
            if not 0 <= index < len(self):
                raise IndexError(index)
            rows = self.order[index * self.batch_size:(index + 1) * self.batch_size]
            return self.views[self.view_of[rows], rows], self.labels[rows]

        def on_epoch_end(self):
            self._draw()

    globals()["FaceSequenceDataset"] = FaceSequenceDataset
    globals()["FeatureSequenceDataset"] = FeatureSequenceDataset


def __getattr__(name):  # PEP 562: the Keras classes are created on first access
    if name in _LAZY_CLASSES:
        _define_classes()
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def sequence_datasets(manifest: pd.DataFrame, seq_len: int, image_size: int, batch_size: int = 4,
                      normalization: str = "minmax", seed: int = 0, min_faces: int = 1,
                      splits=("train", "val", "test")) -> dict:
    """``{split: FaceSequenceDataset}``; only "train" is augmented and shuffled."""
    _define_classes()
    table = video_table(manifest, min_faces)
    out = {}
    for split in splits:
        part = table[table["split"] == split]
        if len(part) == 0:
            raise ValueError(f"No videos with faces in the {split!r} split. The dataset's metadata.json needs "
                             "train, val and test videos (helpers.data_sources makes the splits).")
        is_train = split == "train"
        out[split] = globals()["FaceSequenceDataset"](part, seq_len, image_size, batch_size,
                                                      augment=is_train, shuffle=is_train,
                                                      normalization=normalization, seed=seed)
    return out
