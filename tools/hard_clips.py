"""A hard face-detection benchmark set, made locally from the built-in sample's generator.

The synthetic clips of ``make benchmark`` show one large, well-lit face (about
300 px tall) in the middle of a plain backdrop: every detector finds it. Real
footage is harder. On real 1080p DFDC clips the fast pipeline lost faces that
were small (a dark clip with a small face lost 13 of 32 frames). This module
makes clips with what makes faces hard to find, one difficulty per clip and a
few together, so that a detector's misses can be measured without downloading
anything:

* **small faces**, 40-80 px tall in 1920x1080 or 1080x1920 frames (a person
  filmed from across a room);
* **dark** scenes with the sensor noise a dark scene brings, and **back-lit**
  ones (a bright window behind a face in shadow);
* **off-centre** faces, near a corner of the frame;
* **two people** in one frame (two renders side by side);
* **motion blur** (a camera pan during a long exposure);
* **heavy H.264 compression** (a high ``crf``, as in re-uploaded videos).

Every clip follows from its seed (same seed -> same frames). The clips are
rendered with :mod:`helpers.sample_data`'s public functions (``plan_clip``,
``render_frames``, ``write_video``, ``make_identity``); the degradations are
applied here, frame by frame, to what it renders.

    python tools/hard_clips.py DIR            make the set in DIR (kept; made once)
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from helpers import sample_data  # noqa: E402

#: Face box height / eye distance of the sample's face as MTCNN boxes it (measured: 88 px for 35 px).
BOX_PER_EYE_DISTANCE = 2.5


@dataclass(frozen=True)
class HardClip:
    """One clip of the hard set: its size and what makes its faces hard to find."""

    name: str
    width: int
    height: int
    face_px: float                  # face box height in frame pixels (of each person)
    centre: tuple = (0.5, 0.45)     # where the face sits, as a fraction of the frame (of its half, for two people)
    gain: float = 1.0               # overall brightness (0.3 = a dark room)
    backlight: float = 0.0          # 0..1: the face in shadow, the background blown out
    blur_px: float = 0.0            # length of the motion-blur streak, in pixels
    noise: float = 0.0              # extra sensor noise (grey levels, standard deviation)
    crf: int = 23                   # H.264 quality (23 = default, 35+ = heavy compression)
    people: int = 1                 # 1, or 2 side by side

    @property
    def difficulty(self) -> str:
        parts = [f"{self.face_px:.0f} px faces"]
        if self.gain < 0.8:
            parts.append("dark")
        if self.backlight:
            parts.append("back-lit")
        if abs(self.centre[0] - 0.5) > 0.15 or abs(self.centre[1] - 0.45) > 0.15:
            parts.append("off-centre")
        if self.people > 1:
            parts.append(f"{self.people} people")
        if self.blur_px:
            parts.append("motion blur")
        if self.crf >= 33:
            parts.append(f"crf {self.crf}")
        return ", ".join(parts)


#: The hard set: 1080p and portrait clips, every difficulty of the issue at least once.
HARD_SET = (
    HardClip("small_1080p", 1920, 1080, face_px=44, crf=28),
    HardClip("small_portrait_offcentre", 1080, 1920, face_px=44, centre=(0.22, 0.18)),
    HardClip("dark_small_1080p", 1920, 1080, face_px=48, gain=0.3, noise=5.0, crf=30),
    HardClip("backlit_1080p", 1920, 1080, face_px=52, backlight=0.85, centre=(0.3, 0.5)),
    HardClip("two_people_1080p", 1920, 1080, face_px=50, people=2, centre=(0.45, 0.4)),
    HardClip("motion_blur_1080p", 1920, 1080, face_px=60, blur_px=14, crf=30),
    HardClip("heavy_h264_corner_1080p", 1920, 1080, face_px=42, centre=(0.85, 0.2), crf=40),
    HardClip("dark_blur_portrait", 1080, 1920, face_px=56, gain=0.35, noise=4.0, blur_px=10, crf=34),
)


def _plan(spec: HardClip, width: int, height: int, seconds: float, fps: int, seed: int):
    identity = sample_data.make_identity(1 + seed % 7, seed)
    plan = sample_data.plan_clip(seed, width, height, seconds, fps, identity)
    eye_fraction = spec.face_px / BOX_PER_EYE_DISTANCE / min(width, height)
    return dataclasses.replace(plan, eye_fraction=eye_fraction, centre=tuple(spec.centre))


def _backlit(frame: np.ndarray, landmarks, amount: float) -> np.ndarray:
    """Darken a soft region around the face and brighten (and clip) everything else."""
    import cv2

    h, w = frame.shape[:2]
    k = 8  # the mask is smooth: draw and blur it at 1/8 of the size, then scale it up
    mask = np.zeros((h // k + 1, w // k + 1), np.float32)
    if landmarks is not None:
        centre = np.asarray(landmarks, np.float32).mean(axis=0) / k
        eye = float(np.linalg.norm(np.asarray(landmarks[1]) - np.asarray(landmarks[0]))) / k
        # the person (head and shoulders) in shadow, with a soft edge
        cv2.ellipse(mask, (int(centre[0]), int(centre[1] + 1.5 * eye)),
                    (max(1, int(3.5 * eye)), max(1, int(6.0 * eye))), 0, 0, 360, 1.0, -1)
        mask = cv2.GaussianBlur(mask, (0, 0), max(0.5, 0.8 * eye))
    mask = cv2.resize(mask, (w, h), interpolation=cv2.INTER_LINEAR)
    gain = (1 - amount * 0.7) * mask + (1 + amount * 1.2) * (1 - mask)
    return cv2.multiply(frame, cv2.merge([gain, gain, gain]), dtype=cv2.CV_8U)


def _motion_blur(frame: np.ndarray, length: float, angle_deg: float) -> np.ndarray:
    import cv2

    size = max(3, int(round(length)) | 1)
    kernel = np.zeros((size, size), np.float32)
    kernel[size // 2, :] = 1.0
    rotation = cv2.getRotationMatrix2D((size / 2 - 0.5, size / 2 - 0.5), angle_deg, 1.0)
    kernel = cv2.warpAffine(kernel, rotation, (size, size))
    return cv2.filter2D(frame, -1, kernel / max(kernel.sum(), 1e-6))


def _degrade(frame: np.ndarray, landmarks, spec: HardClip, t: float, rng: np.random.Generator) -> np.ndarray:
    """What a worse camera or a worse room does to a rendered frame (RGB uint8)."""
    import cv2

    if spec.backlight:
        frame = _backlit(frame, landmarks, spec.backlight)
    if spec.gain != 1.0:
        frame = cv2.convertScaleAbs(frame, alpha=spec.gain)
    if spec.blur_px:
        # the pan speeds up and slows down: the streak length varies between 40 % and 100 %
        length = spec.blur_px * (0.7 + 0.3 * math.sin(2 * math.pi * 0.4 * t))
        frame = _motion_blur(frame, length, angle_deg=10.0)
    if spec.noise:
        # a camera's denoiser and the encoder leave blotchy, not per-pixel, noise: make it at 1/4 size
        h, w = frame.shape[:2]
        coarse = rng.normal(0.0, spec.noise, (h // 4 + 1, w // 4 + 1)).astype(np.float32)
        noise = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_LINEAR)
        frame = cv2.add(frame, cv2.merge([noise, noise, noise]), dtype=cv2.CV_8U)
    return frame


def frames_of(spec: HardClip, seconds: float = 10.0, fps: int = 30, seed: int = 0):
    """Yield ``(frame RGB uint8, list of the faces' 5x2 landmarks)`` for every frame of ``spec``."""
    rng = np.random.default_rng([seed, 11])
    if spec.people == 1:
        renders = [sample_data.render_frames(_plan(spec, spec.width, spec.height, seconds, fps, seed))]
        offsets = [0]
    else:
        half = spec.width // spec.people // 2 * 2
        renders = [sample_data.render_frames(_plan(spec, half, spec.height, seconds, fps, seed + 1000 * k))
                   for k in range(spec.people)]
        offsets = [k * half for k in range(spec.people)]
    for i, parts in enumerate(zip(*renders)):
        frame = np.concatenate([p[0] for p in parts], axis=1) if len(parts) > 1 else parts[0][0]
        if frame.shape[1] < spec.width:  # an odd split: pad the last column(s)
            frame = np.pad(frame, ((0, 0), (0, spec.width - frame.shape[1]), (0, 0)), mode="edge")
        landmarks = [None if p[1] is None else np.asarray(p[1]) + [dx, 0] for p, dx in zip(parts, offsets)]
        yield _degrade(frame, landmarks[0], spec, i / fps, rng), landmarks


def make_hard_clip(spec: HardClip, path, seconds: float = 10.0, fps: int = 30, seed: int = 0) -> dict:
    """Write one clip of the hard set as H.264 MP4 and describe it (size, difficulty, crf, seconds to make)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    frames = (frame for frame, _ in frames_of(spec, seconds, fps, seed))
    n = sample_data.write_video(path, frames, spec.width, spec.height, fps, crf=spec.crf)
    return {"width": spec.width, "height": spec.height, "fps": fps, "n_frames": n, "face_px": spec.face_px,
            "people": spec.people, "crf": spec.crf, "difficulty": spec.difficulty,
            "seconds_to_make": round(time.perf_counter() - start, 1)}


def make_hard_set(folder, seconds: float = 10.0, fps: int = 30, clips=HARD_SET, progress=print) -> list:
    """Make (once) every clip of ``clips`` in ``folder`` with a ``metadata.json``; returns their paths.

    A clip already there with the same settings is kept; changing ``seconds``
    or ``fps`` gives other file names, so sets never mix.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths, metadata = [], {}
    for k, spec in enumerate(clips):
        path = folder / f"{spec.name}_{spec.width}x{spec.height}_{seconds:g}s_{fps}fps.mp4"
        info_path = path.with_suffix(".json")
        if not (path.exists() and info_path.exists()):
            info = make_hard_clip(spec, path, seconds, fps, seed=200 + k)
            info_path.write_text(json.dumps(info, indent=1))
            if progress:
                progress(f"  made {path.name} ({info['difficulty']}) in {info['seconds_to_make']:.0f} s "
                         "(kept for the next run)")
        info = json.loads(info_path.read_text())
        metadata[path.name] = {"label": "REAL", "split": "test", "original": None, "scene": info["difficulty"]}
        paths.append(path)
    (folder / "metadata.json").write_text(json.dumps(metadata, indent=1))
    return paths


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--fps", type=int, default=30)
    args = parser.parse_args(argv)
    for path in make_hard_set(args.folder, args.seconds, args.fps):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
