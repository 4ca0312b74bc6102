"""The crop manifest: the one table every model's data loader reads.

One row per sampled frame of every video (and one per video that could not
be read at all): where the frame's face crop is (``crop_path``), the face's
box, detection probability and five landmarks, the video's label and split,
and a ``status`` that says why a row has no crop (:data:`STATUSES`).
:func:`helpers.faces.extract_faces` writes it; :func:`load_manifest`,
:func:`crop_rows` and :func:`read_crop` are how the loaders of both
frameworks read it; :func:`video_summary` sums it up per video.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from . import geometry, safe_io

MANIFEST_NAME = "manifest.parquet"
#: x, y of each of MTCNN's five landmarks, in the order of ``geometry.LANDMARK_NAMES``.
LANDMARK_COLUMNS = [f"lm_{axis}{k}" for k in range(len(geometry.LANDMARK_NAMES)) for axis in ("x", "y")]
MANIFEST_COLUMNS = (["video", "frame_index", "crop_path", "x1", "y1", "x2", "y2", "prob"] + LANDMARK_COLUMNS
                    + ["label", "target", "split", "original", "status", "reason", "found_by", "second_look"])
#: Why a row has no crop (``status``): every sampled frame and every video is accounted for.
STATUSES = {
    "ok": "a face was found; crop_path is its crop",
    "no_face": "the frame was read but MTCNN found no face in it",
    "missing_frame": "the container announced this frame but the video ended before it",
    "damaged": "the video is damaged before this frame (reason says after which frame); earlier frames were kept",
    "unreadable": "the video could not be opened or decoded (reason says why)",
    "missing_file": "the video file named in metadata.json does not exist",
}


def crop_folder_name(video: str) -> str:
    """A video's name as one folder / file name (its sub-folders joined with ``__``)."""
    return video.replace("/", "__").replace("\\", "__")


def write_parquet(df, path: Path) -> None:
    """Write a manifest (or a part of one) all or nothing (:func:`helpers.safe_io.atomic_path`)."""
    with safe_io.atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False)


def assemble_manifest(out_dir: Path, names: list):
    """The manifest of ``names``, joined from their parts in ``out_dir / "parts"``."""
    import pandas as pd

    parts = [pd.read_parquet(out_dir / "parts" / f"{crop_folder_name(n)}.parquet") for n in names]
    df = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=MANIFEST_COLUMNS)
    extra = [c for c in df.columns if c not in MANIFEST_COLUMNS]
    return df[MANIFEST_COLUMNS + extra]


def read_crop(path, image_size: int | None = None) -> np.ndarray:
    """A saved face crop as RGB uint8 (H, W, 3), resized to ``image_size`` x ``image_size`` if given.

    Shrinking uses area averaging, enlarging bilinear interpolation. Both
    frameworks' loaders read crops with it. A missing or unreadable file is a
    FileNotFoundError that names it and says how to rebuild the crops.
    """
    import cv2

    path = Path(path)
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(
            f"Cannot read the face crop {path}. Was the crop folder moved or deleted? Re-run the face "
            "extraction (notebook 02, helpers.faces.extract_faces) so the manifest and the crop files match.")
    image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    if image_size is not None and image.shape[:2] != (image_size, image_size):
        shrinking = image.shape[0] > image_size
        image = cv2.resize(image, (image_size, image_size),
                           interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    return image


def load_manifest(manifest_path, only_faces: bool = True):
    """The crop manifest as a DataFrame (crop_path made absolute).

    ``only_faces=True`` keeps the rows with a crop (status "ok"); False keeps
    every sampled frame and every unreadable video, with ``status`` and
    ``reason`` saying why there is no crop (see :data:`STATUSES`).
    """
    import pandas as pd

    manifest_path = Path(manifest_path)
    if not manifest_path.exists():
        raise FileNotFoundError(f"No face manifest at {manifest_path}: run helpers.faces.extract_faces "
                                "(notebook 02) first.")
    df = pd.read_parquet(manifest_path)
    root = manifest_path.parent
    df["crop_path"] = [str(root / p) if isinstance(p, str) and p else None for p in df["crop_path"]]
    if only_faces:
        df = df[df["status"] == "ok"].reset_index(drop=True)
    return df


def crop_rows(manifest, required=("crop_path",)):
    """The rows of a manifest that have a face crop (status "ok", crop_path set).

    ``required``: the columns the caller needs; a ValueError says which are
    missing and how to make a proper manifest. Every model's data loader
    starts here.
    """
    missing = [c for c in dict.fromkeys([*required, "crop_path"]) if c not in manifest.columns]
    if missing:
        raise ValueError(f"The face manifest lacks the column(s) {missing}; build it with "
                         "helpers.faces.extract_faces and read it with helpers.crop_manifest.load_manifest.")
    rows = manifest
    if "status" in rows.columns:
        rows = rows[rows["status"] == "ok"]
    return rows[rows["crop_path"].notna()]


def video_summary(manifest) -> "pd.DataFrame":
    """One row per video: label, split, status, frames sampled / read / with a face, detection rate,
    seconds it added to the run and seconds its reader spent decoding, frames that got a second look
    and its seconds, and for a video damaged part-way the last good frame (``damaged_after_frame``)
    with the decoder's complaint in ``reason``. ``manifest``: a path or the DataFrame of
    ``load_manifest(..., only_faces=False)``."""
    if not hasattr(manifest, "columns"):
        manifest = load_manifest(manifest, only_faces=False)
    df = manifest.copy()
    df["read"] = df["status"].isin(["ok", "no_face"])
    df["face"] = df["status"] == "ok"
    grouped = df.groupby("video", sort=False)
    summary = grouped.agg(label=("label", "first"), split=("split", "first"), frames_sampled=("frame_index", "size"),
                          frames_read=("read", "sum"), frames_with_face=("face", "sum"))
    if "video_seconds" in df.columns:
        summary["seconds"] = grouped["video_seconds"].first()
    if "read_seconds" in df.columns:
        summary["read_seconds"] = grouped["read_seconds"].first()
    unreadable = grouped["status"].agg(lambda s: s.isin(["unreadable", "missing_file"]).any())
    summary.loc[unreadable, "frames_sampled"] = 0
    summary["detection_rate"] = (summary["frames_with_face"] / summary["frames_read"].where(summary["frames_read"] > 0))
    summary["status"] = np.where(unreadable, grouped["status"].first(),
                                 np.where(summary["frames_with_face"] > 0, "ok", "no_face"))
    reasons = df["reason"].where(df["reason"].fillna("") != "")
    summary["reason"] = reasons.groupby(df["video"], sort=False).first().reindex(summary.index).fillna("")
    if "second_look" in df.columns:
        summary["second_looks"] = grouped["second_look"].agg(lambda s: int((s.fillna("") != "").sum()))
    for column in ("second_look_seconds", "damaged_after_frame"):
        if column in df.columns:
            summary[column] = grouped[column].first()
    return summary.reset_index()
