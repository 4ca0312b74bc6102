"""Self-Blended Images: pseudo-fakes made from real faces only.

Shiohara and Yamasaki (CVPR 2022) train a deepfake detector without a single
fake video. Each training face is blended with a slightly altered copy of
itself: the copy (the *source*) gets other colours, another sharpness and a
small shift or zoom; the untouched face (the *target*) receives it inside a
soft mask around the eyes, nose and mouth. The result shows the traces every
face swap leaves -- a seam where two images meet, a colour or sharpness step,
two slightly misaligned layers -- but none of the fingerprints of one
particular generator, so a model trained on it has less to over-fit to.

This module is our own implementation of that recipe, built on the five MTCNN
landmarks the crop manifest stores (``lm_x0 .. lm_y4``, in crop pixels):

* :func:`self_blend` turns one face crop into a pseudo-fake (and returns the
  mask, the source and the blend ratio, so a notebook can show them);
* :class:`SelfBlendedDataset` yields the real faces of a manifest and, on the
  fly, a pseudo-fake of each (label 1 = FAKE), seeded and different at each
  epoch.

Only the mask region changes: outside it the pseudo-fake equals the real
face pixel for pixel, and the mask never leaves the face box.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import cv2
import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from . import crop_manifest, faces
from .datasets_torch import to_tensor
from .crop_manifest import read_crop

#: Blend ratios, as in the paper: a full blend is drawn half of the time.
BLEND_RATIOS = (0.25, 0.5, 0.75, 1.0, 1.0, 1.0)
FAKE, REAL = 1, 0


@dataclass
class SelfBlend:
    """One pseudo-fake and how it was made."""

    image: np.ndarray      # the pseudo-fake, RGB uint8, the crop's size
    mask: np.ndarray       # float32 in [0, 1], the share of the source in each pixel (ratio included)
    source: np.ndarray     # the altered copy that was blended in, RGB uint8
    ratio: float           # the blend ratio drawn from BLEND_RATIOS
    box: tuple             # the face box in crop pixels (x1, y1, x2, y2): the mask stays inside it
    label: int = FAKE
    changes: dict = field(default_factory=dict)  # the augmentations drawn for the source


# ----------------------------------------------------------------------------------- the source copy
def colour_change(image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """Shift the RGB channels, hue / saturation / value, brightness and contrast by small random amounts."""
    rgb_shift = rng.uniform(-20, 20, size=3)
    hue, saturation, value = rng.uniform(-8, 8), rng.uniform(-25, 25), rng.uniform(-25, 25)
    brightness, contrast = rng.uniform(-0.1, 0.1), rng.uniform(-0.1, 0.1)
    out = image.astype(np.float32) + rgb_shift
    hsv = cv2.cvtColor(np.clip(out, 0, 255).astype(np.uint8), cv2.COLOR_RGB2HSV).astype(np.float32)
    hsv[..., 0] = (hsv[..., 0] + hue) % 180  # OpenCV's hue runs from 0 to 180
    hsv[..., 1] = np.clip(hsv[..., 1] + saturation, 0, 255)
    hsv[..., 2] = np.clip(hsv[..., 2] + value, 0, 255)
    out = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB).astype(np.float32)
    out = (out - 127.5) * (1 + contrast) + 127.5 + 255 * brightness
    return np.clip(out, 0, 255).astype(np.uint8), {"rgb_shift": rgb_shift.round(1).tolist(), "hue": hue,
                                                   "saturation": saturation, "value": value,
                                                   "brightness": brightness, "contrast": contrast}


def frequency_change(image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """Either soften the face (scale it down and back up) or sharpen it (unsharp mask)."""
    h, w = image.shape[:2]
    if rng.random() < 0.5:
        factor = float(rng.uniform(0.35, 0.7))
        small = cv2.resize(image, (max(2, int(w * factor)), max(2, int(h * factor))), interpolation=cv2.INTER_AREA)
        return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR), {"frequency": "down-up", "factor": factor}
    amount = float(rng.uniform(0.5, 1.5))
    blurred = cv2.GaussianBlur(image, (0, 0), sigmaX=1.0)
    sharp = cv2.addWeighted(image.astype(np.float32), 1 + amount, blurred.astype(np.float32), -amount, 0)
    return np.clip(sharp, 0, 255).astype(np.uint8), {"frequency": "sharpen", "amount": amount}


def small_affine(image: np.ndarray, rng: np.random.Generator, shift: float = 0.03,
                 zoom: float = 0.05) -> tuple[np.ndarray, dict]:
    """Move the image by up to ``shift`` of its size and zoom it by up to ``zoom`` about its centre."""
    h, w = image.shape[:2]
    scale = float(rng.uniform(1 - zoom, 1 + zoom))
    dx, dy = (float(v) for v in rng.uniform(-shift, shift, size=2) * (w, h))
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), 0.0, scale)
    matrix[:, 2] += (dx, dy)
    moved = cv2.warpAffine(image, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    return moved, {"scale": scale, "dx": dx, "dy": dy}


# ----------------------------------------------------------------------------------- the mask
def landmark_ellipse(shape: tuple, landmarks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A filled ellipse (0/1, float32) over the inner face, from the five landmarks.

    Centre: the landmarks' mean; orientation: the line through the eyes;
    half-axes: a random multiple of the spread of the points (eyes to mouth),
    so the ellipse covers eyes, nose and mouth with some cheek around them.
    """
    points = np.asarray(landmarks, np.float32).reshape(5, 2)
    centre = points.mean(axis=0)
    eye_vector = points[1] - points[0]
    angle = float(np.degrees(np.arctan2(eye_vector[1], eye_vector[0])))
    eye_distance = float(np.linalg.norm(eye_vector))
    eyes_to_mouth = float(np.linalg.norm(points[3:].mean(axis=0) - points[:2].mean(axis=0)))
    half_width = max(2.0, eye_distance * rng.uniform(0.85, 1.15))
    half_height = max(2.0, eyes_to_mouth * rng.uniform(0.95, 1.3))
    mask = np.zeros(shape[:2], np.float32)
    cv2.ellipse(mask, (int(round(centre[0])), int(round(centre[1]))),
                (int(round(half_width)), int(round(half_height))), angle, 0, 360, 1.0, thickness=-1)
    return mask


def deform_mask(mask: np.ndarray, rng: np.random.Generator, strength: float = 0.04) -> np.ndarray:
    """Bend the mask's outline with a smooth random displacement (up to ``strength`` of its size)."""
    h, w = mask.shape
    coarse = rng.uniform(-1, 1, size=(2, 4, 4)).astype(np.float32) * strength * max(h, w)
    dx, dy = (cv2.resize(c, (w, h), interpolation=cv2.INTER_CUBIC) for c in coarse)
    grid_x, grid_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(mask, grid_x + dx, grid_y + dy, interpolation=cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def soften_mask(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Blur the mask with a random Gaussian (a hard or a soft seam), keep its peak at 1."""
    sigma = float(rng.uniform(0.01, 0.05)) * max(mask.shape)
    soft = cv2.GaussianBlur(mask, (0, 0), sigmaX=max(sigma, 0.5))
    peak = float(soft.max())
    return soft / peak if peak > 0 else soft


def inside_box(mask: np.ndarray, box) -> np.ndarray:
    """The mask with everything outside the face box set to 0."""
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    kept = np.zeros_like(mask)
    h, w = mask.shape
    x1, y1, x2, y2 = max(0, x1), max(0, y1), min(w, x2), min(h, y2)
    kept[y1:y2, x1:x2] = mask[y1:y2, x1:x2]
    return kept


def blend_mask(shape: tuple, landmarks: np.ndarray, box, rng: np.random.Generator) -> np.ndarray:
    """Ellipse from the landmarks, deformed, blurred and cut to the face box (float32 in [0, 1])."""
    mask = soften_mask(deform_mask(landmark_ellipse(shape, landmarks, rng), rng), rng)
    return inside_box(mask, box)


# ----------------------------------------------------------------------------------- the blend
def face_box_in_crop(row, crop_size: int, margin: float = faces.COMMON_DEFAULTS["margin"]) -> tuple:
    """The MTCNN face box of a manifest row in the pixels of its square crop.

    The crop is the box's longer side plus ``margin`` on each side, centred on
    the box (``face_detector.crop_face``), so the box sits in the middle of the crop.
    """
    width, height = float(row["x2"]) - float(row["x1"]), float(row["y2"]) - float(row["y1"])
    side = max(width, height) * (1 + 2 * margin)
    scale = crop_size / max(2.0, round(side))
    centre = crop_size / 2
    return (centre - width * scale / 2, centre - height * scale / 2,
            centre + width * scale / 2, centre + height * scale / 2)


def landmarks_of(row) -> np.ndarray:
    """The five landmarks of a manifest row (crop pixels), shape (5, 2)."""
    return np.asarray([row[c] for c in crop_manifest.LANDMARK_COLUMNS], np.float32).reshape(5, 2)


def self_blend(face: np.ndarray, landmarks, box=None, seed=None) -> SelfBlend:
    """A pseudo-fake of ``face`` (RGB uint8): an altered copy of itself, blended in around the landmarks.

    ``landmarks``: the five MTCNN points in the crop's pixels; ``box``: the
    face box in the crop's pixels (None: the whole crop). ``seed`` (an int or
    a sequence of ints) makes the result reproducible.

    The blend is ``mask * source + (1 - mask) * target`` with the untouched
    face as target, so pixels where the mask is 0 keep their value exactly.
    """
    rng = np.random.default_rng(seed)
    face = np.ascontiguousarray(face, dtype=np.uint8)
    h, w = face.shape[:2]
    box = (0, 0, w, h) if box is None else tuple(float(v) for v in box)
    source, colour = colour_change(face, rng)
    source, frequency = frequency_change(source, rng)
    source, moved = small_affine(source, rng)
    ratio = float(rng.choice(BLEND_RATIOS))
    mask = blend_mask(face.shape, landmarks, box, rng) * ratio
    weight = mask[..., None]
    blended = weight * source.astype(np.float32) + (1 - weight) * face.astype(np.float32)
    image = np.where(weight > 0, np.clip(np.rint(blended), 0, 255), face).astype(np.uint8)
    return SelfBlend(image=image, mask=mask.astype(np.float32), source=source, ratio=ratio, box=box,
                     changes={**colour, **frequency, **moved})


# ----------------------------------------------------------------------------------- the dataset
class SelfBlendedDataset(Dataset):
    """The real faces of a manifest, each also as an on-the-fly pseudo-fake.

    Items ``0 .. n-1`` are the real crops (label 0), items ``n .. 2n-1`` a
    self-blend of the same crops (label 1 = FAKE), so the classes are balanced
    and no fake video is ever read. Each time an item is drawn it gets a new
    seed ``(seed, index, how often it was drawn)``, so every epoch sees new
    pseudo-fakes and two runs with the same seed and order see the same ones.
    ``fresh_each_epoch=False`` gives each item one fixed pseudo-fake instead
    (for validation, and to measure a loss twice on the same faces). Fake rows of the manifest are ignored. Yields ``(tensor 3 x S x S in [0, 1], float label)``
    like :class:`helpers.datasets_torch.FaceCropDataset`.
    """

    def __init__(self, manifest_df: pd.DataFrame, image_size: int, seed: int = 0,
                 margin: float = faces.COMMON_DEFAULTS["margin"], fresh_each_epoch: bool = True):
        table = crop_manifest.crop_rows(manifest_df, ("crop_path", "target", "x1", "y1", "x2", "y2",
                                              *crop_manifest.LANDMARK_COLUMNS))
        table = table[table["target"] == REAL].dropna(subset=crop_manifest.LANDMARK_COLUMNS).reset_index(drop=True)
        if len(table) == 0:
            raise ValueError("No real face crop with landmarks in this manifest: Self-Blended Images need real "
                             "faces. Check the split you passed and re-run the face extraction (notebook 02).")
        self.table, self.image_size, self.seed, self.margin = table, int(image_size), int(seed), margin
        self.fresh_each_epoch = bool(fresh_each_epoch)
        self.targets = np.r_[np.zeros(len(table)), np.ones(len(table))].astype("float32")
        self._draws = defaultdict(int)

    def __len__(self) -> int:
        return 2 * len(self.table)

    def pseudo_fake(self, position: int, seed) -> SelfBlend:
        """The self-blend of real crop number ``position`` at its own resolution."""
        row = self.table.iloc[position]
        face = read_crop(row["crop_path"])
        return self_blend(face, landmarks_of(row), face_box_in_crop(row, face.shape[0], self.margin), seed=seed)

    def __getitem__(self, index: int):
        n = len(self.table)
        if index < n:
            face = read_crop(self.table["crop_path"].iloc[index], self.image_size)
        else:
            draw = self._draws[index]
            self._draws[index] += int(self.fresh_each_epoch)
            face = self.pseudo_fake(index - n, seed=(self.seed, index, draw)).image
            if face.shape[:2] != (self.image_size, self.image_size):
                face = cv2.resize(face, (self.image_size, self.image_size), interpolation=cv2.INTER_AREA)
        return to_tensor(face), torch.tensor(self.targets[index])


def make_sbi_loader(manifest_df: pd.DataFrame, image_size: int, batch_size: int = 32, seed: int = 42,
                    train: bool = True, num_workers: int = 0):
    """A loader of reals and their pseudo-fakes: ``train=True`` shuffles (seeded) and draws new pseudo-fakes
    each epoch; ``train=False`` keeps the order (reals first) and one fixed pseudo-fake per real."""
    from torch.utils.data import DataLoader

    dataset = SelfBlendedDataset(manifest_df, image_size, seed=seed, fresh_each_epoch=train)
    return DataLoader(dataset, batch_size=batch_size, shuffle=train, drop_last=train and len(dataset) > batch_size,
                      num_workers=num_workers, generator=torch.Generator().manual_seed(seed) if train else None)
