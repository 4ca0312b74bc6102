"""Tiny crop manifests for the data-loader tests: PNG crops on disk plus the rows
helpers.faces.extract_faces would write for them (video, frame_index, crop_path,
box, prob, label, target, split, original, status, reason)."""
from pathlib import Path

import cv2
import numpy as np


def write_crops(folder, paint, videos_per_class: int, faces_per_video: int, crop_size: int,
                splits=("train", "val", "test")) -> list:
    """For every split, class and video, ``faces_per_video`` crops painted by
    ``paint(rng, target, frame_number, crop_size) -> RGB uint8 array``; returns the manifest rows.
    Videos are named ``<split>_<real|fake>_<k>.mp4``; frame k has index 10 k."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    rows = []
    for split in splits:
        for label, target in (("REAL", 0), ("FAKE", 1)):
            for v in range(videos_per_class):
                video = f"{split}_{label.lower()}_{v}.mp4"
                for f in range(faces_per_video):
                    path = folder / f"{video[:-4]}_{f:03d}.png"
                    cv2.imwrite(str(path), cv2.cvtColor(paint(rng, target, f, crop_size), cv2.COLOR_RGB2BGR))
                    rows.append(row(video, f * 10, path, label, target, split))
    return rows


def row(video: str, frame_index: int, crop_path, label: str, target: int, split: str, prob: float = 0.99,
        status: str = "ok", reason: str = "") -> dict:
    """One manifest row (crop_path None and prob NaN for a frame without a face)."""
    return {"video": video, "frame_index": frame_index, "crop_path": None if crop_path is None else str(crop_path),
            "x1": 0.0, "y1": 0.0, "x2": 100.0, "y2": 100.0, "prob": prob, "label": label, "target": target,
            "split": split, "original": None, "status": status, "reason": reason}
