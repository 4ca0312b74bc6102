"""MTCNN face detection, square face crops, and one tracked face per video.

MTCNN (Zhang et al., 2016) finds faces with three small networks in a cascade:

* **P-Net** (proposal) slides over an *image pyramid* -- the frame scaled down
  step by step by ``factor`` (0.709, so each level has half the pixels of the
  previous one) -- and marks every 12x12 window that might be a face. Cheap,
  many false alarms.
* **R-Net** (refine) looks again at each candidate, resized to 24x24, rejects
  most of them and corrects the box.
* **O-Net** (output) looks at the survivors at 48x48, gives the final
  probability, the box and five *landmarks* (eyes, nose, mouth corners).

We use facenet-pytorch's trained networks, but drive the cascade ourselves
(:meth:`FaceDetector._cascade`), for speed: facenet-pytorch resizes every
candidate window one at a time with an "area" interpolation that is slow on a
CPU (hundreds of candidates per frame); here all candidates of a batch are
cut and resized in one go. The algorithm and thresholds are facenet-pytorch's;
``engine="facenet"`` runs facenet-pytorch's own ``MTCNN.detect`` instead, for
comparison.

Speed also comes from *where* we look:

* detection runs on a copy of the frame scaled to ``detect_size`` pixels on
  its long side (640 by default; a 1920x1080 frame has 9x more pixels), and
  the crop is then cut from the full-resolution frame;
* frames of a video go through the networks together, in batches, while
  background threads decode the next frames and the next video.

The small copy misses faces that are small in a large frame (40-60 px in a
1080p video become 13-20 px in the copy, under MTCNN's 20 px minimum). So a
frame in which the first look found no face with probability >= ``confident``
gets **one second look**, as cheap as the situation allows:

* when the video already has a confident face in another frame (or this frame
  a weak one), MTCNN looks again only at a square around that face, cut from
  the full-resolution frame and scaled so that the face is about 48 px (a
  192 px square: measured on one CPU thread, 0.01-0.03 s against 0.04 s for
  the first look at a 1080p frame);
* otherwise (no face anywhere yet), it looks at the full frame for the faces
  the first look could not see: only the pyramid levels for faces between
  ``smallest_face`` and the first look's smallest face.

Every face records which look found it (``found_by``: "first", "near_track"
or "finer"); :attr:`FaceDetector.stats` counts the looks and their seconds.

:func:`track_faces` then follows one person through a video (the face every model
trains on), and :func:`draw_faces` draws what was found. The extraction of a whole
dataset (threads, resumable runs) is :mod:`helpers.faces`; the crops' table is
:mod:`helpers.crop_manifest`.
"""
from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field

import numpy as np

#: Frames per pass through MTCNN when batch_size is None. On a CPU small batches are faster (the
#: activations of 8 frames stay in the cache; 32 frames were 1.5x slower per frame here).
AUTO_BATCH = {"cpu": 8, "cuda": 32}


# ----------------------------------------------------------------------------------------------
# One face


@dataclass
class Face:
    """One detected face.

    ``box`` and ``landmarks_frame`` are in full-resolution frame pixels;
    ``landmarks`` (left eye, right eye, nose, mouth left, mouth right) are in
    pixels of ``crop``, the square RGB uint8 crop (box plus margin, resized to
    crop_size). ``crop_box`` is the square region of the frame the crop shows.
    """

    box: tuple
    prob: float
    landmarks: np.ndarray
    crop: np.ndarray
    landmarks_frame: np.ndarray = field(repr=False, default=None)
    crop_box: tuple = field(repr=False, default=None)
    found_by: str = "first"   # which look found it: "first", "near_track" or "finer" (see FaceDetector)

    @property
    def centre(self) -> tuple:
        return ((self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2)

    @property
    def size(self) -> float:
        return float(max(self.box[2] - self.box[0], self.box[3] - self.box[1]))


def crop_face(frame: np.ndarray, box, landmarks, crop_size: int, margin: float = 0.2):
    """Square crop around ``box`` (plus ``margin`` x its size on each side), resized to ``crop_size``.

    Parts outside the frame are black. Returns ``(crop, landmarks in crop px,
    crop_box in frame px)``.
    """
    import cv2

    x1, y1, x2, y2 = (float(v) for v in box)
    side = max(x2 - x1, y2 - y1) * (1 + 2 * margin)
    side_px = max(2, int(round(side)))
    left = int(round((x1 + x2) / 2 - side_px / 2))
    top = int(round((y1 + y2) / 2 - side_px / 2))
    h, w = frame.shape[:2]
    # the part of the square inside the frame, and the black border around it
    ax, ay = max(left, 0), max(top, 0)
    bx, by = min(left + side_px, w), min(top + side_px, h)
    if bx <= ax or by <= ay:
        region = np.zeros((side_px, side_px, 3), np.uint8)
    else:
        region = frame[ay:by, ax:bx]
        pads = (ay - top, top + side_px - by, ax - left, left + side_px - bx)
        if any(pads):
            region = cv2.copyMakeBorder(region, *pads, cv2.BORDER_CONSTANT, value=(0, 0, 0))
    interpolation = cv2.INTER_AREA if side_px > crop_size else cv2.INTER_LINEAR
    crop = cv2.resize(np.ascontiguousarray(region), (crop_size, crop_size), interpolation=interpolation)
    scale = crop_size / side_px
    points = None if landmarks is None else (np.asarray(landmarks, np.float32) - [left, top]) * scale
    return crop, points, (left, top, left + side_px, top + side_px)


def pyramid_scales(height: int, width: int, min_face_size: float = 20, factor: float = 0.709) -> list:
    """The scales P-Net runs at: the first maps ``min_face_size`` px to P-Net's 12 px window,
    each next one is ``factor`` times smaller, until the short side would be under 12 px."""
    scale = 12.0 / float(min_face_size)
    short = min(height, width) * scale
    scales = []
    while short >= 12:
        scales.append(scale)
        scale *= factor
        short *= factor
    return scales


def as_rgb_uint8(image) -> np.ndarray:
    """PIL image or array (grey, RGB, RGBA, float in [0, 1] or [0, 255]) -> contiguous RGB uint8 (H, W, 3).

    The one conversion the course uses (face detection and the demo). Floats
    are *rounded* to the nearest integer (not truncated), after scaling
    [0, 1] images to [0, 255] and clipping; NaN becomes 0. ValueError for
    anything that is not a picture.
    """
    if hasattr(image, "convert") and not isinstance(image, np.ndarray):
        image = image.convert("RGB")
    array = np.asarray(image)
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4) or min(array.shape[:2]) < 1:
        raise ValueError(f"Expected an RGB image (height, width, 3), got an array of shape {array.shape}.")
    if array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    array = array[..., :3]
    if array.dtype != np.uint8:
        if np.issubdtype(array.dtype, np.floating) and array.size and float(np.nanmax(array)) <= 1.0:
            array = array * 255.0
        array = np.clip(np.nan_to_num(array), 0, 255).round().astype(np.uint8)
    return np.ascontiguousarray(array)


# ----------------------------------------------------------------------------------------------
# The detector

#: The looks a frame can get: the first, on the small copy; at most one second look per frame.
LOOKS = ("first", "near_track", "finer")


@dataclass
class _Candidates:
    """The faces found in one image: boxes (N, 4), probs (N,), landmarks (N, 5, 2), full-resolution
    px, most confident first, and which look found each."""

    boxes: np.ndarray
    probs: np.ndarray
    points: np.ndarray
    looks: list
    second_look: str | None = None   # the second look this image got, if any

    def __post_init__(self):
        self.boxes = np.asarray(self.boxes, np.float32).reshape(-1, 4)
        self.probs = np.asarray(self.probs, np.float32).reshape(-1)
        self.points = np.asarray(self.points, np.float32).reshape(-1, 5, 2)
        if isinstance(self.looks, str):
            self.looks = [self.looks] * len(self.probs)
        order = np.argsort(-self.probs, kind="stable")
        self.boxes, self.probs, self.points = self.boxes[order], self.probs[order], self.points[order]
        self.looks = [self.looks[k] for k in order]

    def confident(self, threshold: float) -> bool:
        return bool(len(self.probs)) and float(self.probs[0]) >= threshold

    def merged(self, other: "_Candidates", overlap: float = 0.5) -> "_Candidates":
        """Both sets of faces; where two boxes overlap (IoU > ``overlap``), the more probable one."""
        boxes = np.concatenate([self.boxes, other.boxes])
        probs = np.concatenate([self.probs, other.probs])
        points = np.concatenate([self.points, other.points])
        looks = self.looks + other.looks
        kept: list = []
        for k in np.argsort(-probs, kind="stable"):
            if all(_iou(boxes[k], boxes[j]) <= overlap for j in kept):
                kept.append(int(k))
        return _Candidates(boxes[kept], probs[kept], points[kept], [looks[k] for k in kept], self.second_look)


def _next_to(index: int, looked: set, waiting: set) -> bool:
    """Whether no waiting frame lies between ``index`` and the nearest looked-at frame on one side."""
    order = sorted(looked | waiting | {index})
    k = order.index(index)
    return (k > 0 and order[k - 1] in looked) or (k + 1 < len(order) and order[k + 1] in looked)


def _iou(a, b) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return float(w * h / union) if union > 0 else 0.0


class FaceDetector:
    """MTCNN (facenet-pytorch's networks) on down-scaled frames, crops from the full frames.

    >>> detector = FaceDetector(crop_size=160)          # doctest: +SKIP
    >>> faces = detector.detect(frames)[0]              # faces of the first frame, most confident first
    >>> faces = detector.detect(image)                  # one picture of any size -> its faces

    Args:
        device: "auto" (GPU if PyTorch sees one), "cpu" or "cuda".
        crop_size: side of the square crops (px).
        margin: context added around the face box on each side, as a fraction of the box size.
        detect_size: long side of the copy MTCNN looks at (frames larger than that are
            scaled down; None = always full resolution).
        min_face_size: smallest face searched for, in pixels of that copy.
        thresholds: P-Net, R-Net and O-Net acceptance thresholds.
        factor: image-pyramid step.
        batch_size: frames per pass through the networks (None: 8 on a CPU, 32 on a GPU).
        engine: "fast" (the cascade driven here) or "facenet" (facenet-pytorch's MTCNN.detect).
        threads: PyTorch CPU threads while detecting; None = all cores but one, which is left
            to the video reader (on a 2-core machine: 1; MTCNN's many small operations also
            lose more to thread synchronisation than they gain when cores are busy).
        recover: give each frame without a face of probability >= ``confident`` one second
            look (near a known face, or at finer scales; see the module docstring).
        confident: the probability above which a face needs no second look.
        smallest_face: the smallest face (px of the full frame) the finer look searches for.
    """

    #: The near-track look: a square of this many face sizes around the known face ...
    NEAR_REGION = 4.0
    #: ... scaled so that the face is this many pixels (MTCNN finds 40-60 px faces most reliably).
    NEAR_FACE_PX = 48.0

    def __init__(self, device: str = "auto", crop_size: int = 160, margin: float = 0.2,
                 detect_size: int | None = 640, min_face_size: float = 20, thresholds=(0.6, 0.7, 0.7),
                 factor: float = 0.709, batch_size: int | None = None, engine: str = "fast", threads: int | None = None,
                 recover: bool = True, confident: float = 0.95, smallest_face: float = 32):
        import torch
        from facenet_pytorch import MTCNN

        from . import gpu

        if engine not in ("fast", "facenet"):
            raise ValueError(f"engine must be 'fast' or 'facenet', got {engine!r}.")
        self.device = torch.device(gpu.torch_device("auto" if device is None else str(device)))
        self.crop_size = int(crop_size)
        self.margin = float(margin)
        self.detect_size = None if detect_size is None else int(detect_size)
        self.min_face_size = float(min_face_size)
        self.thresholds = tuple(float(t) for t in thresholds)
        self.factor = float(factor)
        self.batch_size = max(1, int(batch_size or AUTO_BATCH.get(self.device.type, 8)))
        self.engine = engine
        self.threads = max(1, (os.cpu_count() or 2) - 1) if threads is None else max(1, int(threads))
        self.recover = bool(recover)
        self.confident = float(confident)
        self.smallest_face = float(smallest_face)
        # resize with OpenCV on the CPU (faster there); with torch ops (interpolate, roi_align) on a GPU
        self.opencv_resize = self.device.type == "cpu"
        self.mtcnn = MTCNN(min_face_size=self.min_face_size, thresholds=list(self.thresholds),
                           factor=self.factor, keep_all=True, select_largest=False, post_process=False,
                           device=self.device).eval()
        self.reset_stats()
        self.last_second_looks: list = []  # per image of the last call: None, "near_track" or "finer"

    def __repr__(self) -> str:
        return (f"FaceDetector(device={self.device.type!r}, crop_size={self.crop_size}, margin={self.margin}, "
                f"detect_size={self.detect_size}, min_face_size={self.min_face_size:g}, engine={self.engine!r}, "
                f"recover={self.recover})")

    def reset_stats(self) -> None:
        """Zero :attr:`stats`: per look ("first", "near_track", "finer"), frames looked at and seconds spent."""
        self.stats = {name: {"frames": 0, "seconds": 0.0} for name in LOOKS}

    # -- public --------------------------------------------------------------------------------

    def detect(self, frames, threads: int | None = None):
        """Faces in each frame, most confident first.

        ``frames``: a list of RGB images (arrays or PIL images, any sizes) or a
        (N, H, W, 3) array -> a list with, per frame, a list of :class:`Face`.
        A single image (H, W, 3) -> the list of its faces. ``threads``: CPU
        threads for this call (None = ``self.threads``). The frames are
        treated as unrelated pictures; :meth:`detect_video` uses what one frame
        of a video tells about the next.
        """
        single = isinstance(frames, np.ndarray) and frames.ndim in (2, 3) or hasattr(frames, "convert")
        images = [as_rgb_uint8(frames)] if single else [as_rgb_uint8(f) for f in frames]
        found = self._find(images, threads=threads)
        self.last_second_looks = [c.second_look for c in found]
        result = self._faces(images, found)
        return result[0] if single else result

    def detect_video(self, frames, indices, track: dict, threads: int | None = None) -> list:
        """Faces in frames of ONE video (a list of RGB arrays, their frame ``indices``).

        ``track`` (a dict, updated here) remembers, by frame index, the best
        confident face box seen so far in this video; pass the same dict for
        every batch of the video. A frame without a confident face then gets
        its second look near the face of the nearest frame in ``track``, which
        costs little; only while the video has no confident face yet does a
        frame get the finer look at the whole frame, one frame at a time, until
        one is found.
        """
        images = [as_rgb_uint8(f) for f in frames]
        found = self._find(images, threads=threads, indices=list(indices), track=track)
        self.last_second_looks = [c.second_look for c in found]
        return self._faces(images, found)

    def scaled_copy(self, image: np.ndarray) -> tuple:
        """The copy MTCNN looks at (long side at most ``detect_size``) and its scale factor."""
        import cv2

        scale = self._copy_scale(*image.shape[:2])
        if scale == 1.0:
            return image, 1.0
        h, w = image.shape[:2]
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        return cv2.resize(image, size, interpolation=cv2.INTER_AREA), scale

    def detect_boxes(self, images: list, threads: int | None = None) -> list:
        """Per image ``(boxes (N, 4), probs (N,), landmarks (N, 5, 2))`` in full-resolution pixels,
        most confident first. ``images`` are RGB uint8 arrays (unrelated pictures)."""
        return [(c.boxes, c.probs, c.points) for c in self._find(images, threads=threads)]

    def finer_scales(self, height: int, width: int) -> list:
        """The pyramid scales (of the full frame) of the finer look: the faces from
        ``smallest_face`` px up to the first look's smallest face. Empty when the first look
        already covers them (e.g. frames no larger than ``detect_size``)."""
        first = 12.0 / self.min_face_size * self._copy_scale(height, width)
        scales, scale = [], 12.0 / self.smallest_face
        while scale > first * 1.0001 and min(height, width) * scale >= 12:
            scales.append(scale)
            scale *= self.factor
        return scales

    # -- the looks -----------------------------------------------------------------------------

    def _copy_scale(self, height: int, width: int) -> float:
        if not self.detect_size or max(height, width) <= self.detect_size:
            return 1.0
        return self.detect_size / max(height, width)

    def _find(self, images: list, threads: int | None = None, indices: list | None = None,
              track: dict | None = None) -> list:
        """The candidates of each image (:class:`_Candidates`, full-resolution px), after the first
        look and, where needed, one second look."""
        with self._cpu_threads(threads):
            found = self._timed("first", len(images), self._first_look, images)
            if not self.recover:
                return found
            unsure = [i for i, c in enumerate(found) if not c.confident(self.confident)]
            if track is None:  # unrelated pictures: a weak face is looked at again closely, others finer
                near = [i for i in unsure if len(found[i].probs)]
                self._near_look(images, near, [found[i].boxes[0] for i in near], found)
                self._finer_look(images, [i for i in unsure if not len(found[i].probs)], found)
                return found
            for i, c in enumerate(found):
                if c.confident(self.confident):
                    track[indices[i]] = c.boxes[0]
            pending = list(unsure)
            while pending and not track:  # nothing known yet: look at one frame at a time until a face shows
                i = pending.pop(0)
                if len(found[i].probs):
                    self._near_look(images, [i], [found[i].boxes[0]], found)
                else:
                    self._finer_look(images, [i], found)
                if found[i].confident(self.confident):
                    track[indices[i]] = found[i].boxes[0]
            looked = set(track)  # frame indices known or already looked at again
            while pending:
                # waves outwards from the known frames: a frame's hint is a face at most a neighbour away,
                # so a face moving through a batch is followed step by step
                wave = [i for i in pending if _next_to(indices[i], looked, {indices[j] for j in pending})]
                hints = [track[min(track, key=lambda k: (abs(k - indices[i]), k))] for i in wave]
                self._near_look(images, wave, hints, found)
                for i in wave:
                    looked.add(indices[i])
                    if found[i].confident(self.confident):
                        track[indices[i]] = found[i].boxes[0]
                pending = [i for i in pending if i not in wave]
        return found

    def _timed(self, look: str, n_frames: int, function, *args):
        start = time.perf_counter()
        try:
            return function(*args)
        finally:
            self.stats[look]["frames"] += n_frames
            self.stats[look]["seconds"] += time.perf_counter() - start

    def _first_look(self, images: list) -> list:
        """MTCNN on each image's copy of at most ``detect_size`` px, equal sizes batched together."""
        scaled, scales = [], []
        for image in images:
            image, scale = self.scaled_copy(image)
            scaled.append(image)
            scales.append(scale)
        results: list = [None] * len(images)
        groups: dict = {}
        for i, image in enumerate(scaled):  # the networks take equal-size images together
            groups.setdefault(image.shape, []).append(i)
        for members in groups.values():
            for start in range(0, len(members), self.batch_size):
                chunk = members[start:start + self.batch_size]
                for i, (boxes, probs, points) in zip(chunk, self._run(np.stack([scaled[i] for i in chunk]))):
                    results[i] = _Candidates(boxes / scales[i], probs, points / scales[i], "first")
        return results

    def _near_look(self, images: list, which: list, hints: list, found: list) -> None:
        """Look again at a square around a face box (``hints``, one per image in ``which``), cut
        from the full-resolution image and scaled so the face is about NEAR_FACE_PX."""
        if not which:
            return
        side = int(round(self.NEAR_REGION * self.NEAR_FACE_PX))
        margin = (self.NEAR_REGION - 1) / 2

        def look():
            regions, boxes = [], []
            for i, hint in zip(which, hints):
                region, _, box = crop_face(images[i], hint, None, side, margin)
                regions.append(region)
                boxes.append(box)
            for start in range(0, len(which), self.batch_size):
                chunk = slice(start, start + self.batch_size)
                for i, box, (b, p, lm) in zip(which[chunk], boxes[chunk], self._run(np.stack(regions[chunk]))):
                    scale = side / (box[2] - box[0])
                    offset = np.array([box[0], box[1]], np.float32)
                    extra = _Candidates(b / scale + np.tile(offset, 2), p, lm / scale + offset, "near_track")
                    found[i] = found[i].merged(extra)
                    found[i].second_look = "near_track"

        with self._cpu_threads(1):  # a few small images: a second thread only adds waiting
            self._timed("near_track", len(which), look)

    def _finer_look(self, images: list, which: list, found: list) -> None:
        """Look at whole full-resolution images for faces smaller than the first look can see."""
        which = [i for i in which if self.finer_scales(*images[i].shape[:2])]
        if not which:
            return

        def look():
            groups: dict = {}
            for i in which:
                groups.setdefault(images[i].shape, []).append(i)
            for shape, members in groups.items():
                scales = self.finer_scales(*shape[:2])
                for start in range(0, len(members), self.batch_size):
                    chunk = members[start:start + self.batch_size]
                    batch = np.stack([images[i] for i in chunk])
                    run = self._cascade(batch, scales=scales) if self.engine == "fast" else self._run(batch)
                    for i, (b, p, lm) in zip(chunk, run):
                        found[i] = found[i].merged(_Candidates(b, p, lm, "finer"))
                        found[i].second_look = "finer"

        self._timed("finer", len(which), look)

    def _faces(self, images: list, found: list) -> list:
        """Crops and landmarks of every candidate: a list of :class:`Face` per image."""
        result = []
        for image, candidates in zip(images, found):
            faces = []
            for box, prob, lm, look in zip(candidates.boxes, candidates.probs, candidates.points, candidates.looks):
                crop, lm_crop, crop_box = crop_face(image, box, lm, self.crop_size, self.margin)
                faces.append(Face(box=tuple(float(v) for v in box), prob=float(prob), landmarks=lm_crop,
                                  crop=crop, landmarks_frame=np.asarray(lm, np.float32), crop_box=crop_box,
                                  found_by=look))
            result.append(faces)
        return result

    def stages(self, image) -> dict:
        """What each stage of the cascade keeps for one image: {"P-Net": boxes, "R-Net": ..., "O-Net": ...}
        (boxes (N, 5) = x1, y1, x2, y2, score, in the pixels of the image given; no down-scaling)."""
        record: dict = {}
        with self._cpu_threads():
            self._cascade(np.array(as_rgb_uint8(image))[None], record=record)
        return record

    # -- the cascade ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def _cpu_threads(self, threads: int | None = None):
        import torch

        threads = self.threads if threads is None else max(1, int(threads))
        before = torch.get_num_threads()
        change = self.device.type == "cpu" and before != threads
        if change:
            torch.set_num_threads(threads)
        try:
            yield
        finally:
            if change:
                torch.set_num_threads(before)

    def _run(self, batch: np.ndarray) -> list:
        if self.engine == "facenet":
            boxes, probs, points = self.mtcnn.detect(batch, landmarks=True)
            out = []
            for b, p, lm in zip(boxes, probs, points):
                if b is None:
                    out.append((np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 5, 2), np.float32)))
                else:  # NumPy 2: object arrays -> float
                    out.append((np.asarray(b, np.float32).reshape(-1, 4), np.asarray(p, np.float32).reshape(-1),
                                np.asarray(lm, np.float32).reshape(-1, 5, 2)))
            return out
        return self._cascade(batch)

    def _crops(self, images, batch: np.ndarray, boxes, image_inds, size: int):
        """Cut every candidate box out of its image and resize it to size x size (normalised floats).

        Boxes are clipped to the image first, as facenet-pytorch does. On the CPU,
        OpenCV's area resize of each small crop is fastest; on a GPU, one
        roi_align call does them all.
        """
        import cv2
        import torch
        from torchvision.ops import roi_align

        n, h, w = batch.shape[:3]
        b = boxes[:, :4].detach().trunc().to(torch.int64).cpu().numpy()
        x1 = np.clip(b[:, 0], 1, w) - 1
        y1 = np.clip(b[:, 1], 1, h) - 1
        x2 = np.maximum(np.clip(b[:, 2], None, w), x1 + 1)
        y2 = np.maximum(np.clip(b[:, 3], None, h), y1 + 1)
        if self.opencv_resize:
            inds = image_inds.cpu().numpy()
            out = np.empty((len(b), size, size, 3), np.uint8)
            for k in range(len(b)):
                out[k] = cv2.resize(batch[inds[k], y1[k]:y2[k], x1[k]:x2[k]], (size, size),
                                    interpolation=cv2.INTER_AREA)
            crops = torch.from_numpy(out).permute(0, 3, 1, 2).float()
        else:
            rois = torch.tensor(np.stack([x1, y1, x2, y2], 1), dtype=images.dtype, device=images.device)
            rois = torch.cat([image_inds.to(images.dtype)[:, None], rois], dim=1)
            crops = roi_align(images, rois, (size, size), 1.0, -1, True)
        return (crops.to(self.device) - 127.5) * 0.0078125

    def _cascade(self, batch: np.ndarray, record: dict | None = None, scales: list | None = None) -> list:
        """MTCNN on a batch of equal-size RGB uint8 images (N, H, W, 3); ``scales``: the pyramid levels
        (None: from ``min_face_size`` down, see :func:`pyramid_scales`)."""
        import cv2
        import torch
        import torch.nn.functional as F
        from facenet_pytorch.models.utils.detect_face import (
            batched_nms_numpy, bbreg, generateBoundingBox, rerec)
        from torchvision.ops import batched_nms

        mt = self.mtcnn
        t1, t2, t3 = self.thresholds
        with torch.inference_mode():
            n, h, w = batch.shape[:3]
            images = None  # the batch as a float tensor on the device, for the torch-ops path
            if not self.opencv_resize:
                images = torch.from_numpy(batch).to(self.device).permute(0, 3, 1, 2).float().contiguous()

            # Stage 1, P-Net: every 12x12 window of every pyramid level
            boxes, inds = [], []
            previous = list(batch)
            if scales is None:
                scales = pyramid_scales(h, w, self.min_face_size, self.factor)
            for scale in scales:
                size = (int(h * scale + 1), int(w * scale + 1))
                if self.opencv_resize:
                    # each level from the one before (area averaging): the pyramid then costs
                    # about two reads of the image instead of one per level
                    previous = [cv2.resize(image, size[::-1], interpolation=cv2.INTER_AREA) for image in previous]
                    level = torch.from_numpy(np.stack(previous)).permute(0, 3, 1, 2).float()
                else:
                    level = F.interpolate(images, size=size, mode="area")
                reg, prob = mt.pnet((level - 127.5) * 0.0078125)
                found, found_inds = generateBoundingBox(reg, prob[:, 1], scale, t1)
                keep = batched_nms(found[:, :4], found[:, 4], found_inds, 0.5)
                boxes.append(found[keep])
                inds.append(found_inds[keep])
            boxes, inds = torch.cat(boxes), torch.cat(inds)
            keep = batched_nms(boxes[:, :4], boxes[:, 4], inds, 0.7)
            boxes, inds = boxes[keep], inds[keep]
            wh = (boxes[:, 2:4] - boxes[:, 0:2]).repeat(1, 2)
            boxes = torch.cat([boxes[:, :4] + boxes[:, 5:9] * wh, boxes[:, 4:5]], dim=1)
            boxes = rerec(boxes)
            if record is not None:
                record["P-Net"] = boxes.cpu().numpy().copy()

            # Stage 2, R-Net: each candidate at 24x24
            if len(boxes):
                reg, prob = mt.rnet(self._crops(images, batch, boxes, inds, 24))
                passed = prob[:, 1] > t2
                boxes = torch.cat([boxes[passed, :4], prob[passed, 1:2]], dim=1)
                inds, reg = inds[passed], reg[passed]
                keep = batched_nms(boxes[:, :4], boxes[:, 4], inds, 0.7)
                boxes, inds, reg = boxes[keep], inds[keep], reg[keep]
                boxes = rerec(bbreg(boxes, reg))
            if record is not None:
                record["R-Net"] = boxes.cpu().numpy().copy()

            # Stage 3, O-Net: each survivor at 48x48; final score, box and five landmarks
            points = torch.zeros(0, 5, 2, device=self.device)
            if len(boxes):
                reg, marks, prob = mt.onet(self._crops(images, batch, boxes, inds, 48))
                passed = prob[:, 1] > t3
                boxes = torch.cat([boxes[passed, :4], prob[passed, 1:2]], dim=1)
                inds, reg, marks = inds[passed], reg[passed], marks[passed]
                size_w = (boxes[:, 2] - boxes[:, 0] + 1)[:, None]
                size_h = (boxes[:, 3] - boxes[:, 1] + 1)[:, None]
                points = torch.stack([size_w * marks[:, :5] + boxes[:, 0:1] - 1,
                                      size_h * marks[:, 5:] + boxes[:, 1:2] - 1], dim=2)
                boxes = bbreg(boxes, reg)
                keep = batched_nms_numpy(boxes[:, :4], boxes[:, 4], inds, 0.7, "Min")
                boxes, inds, points = boxes[keep], inds[keep], points[keep]
            if record is not None:
                record["O-Net"] = boxes.cpu().numpy().copy()

            boxes, points, inds = boxes.cpu().numpy(), points.cpu().numpy(), inds.cpu().numpy()
        return [(boxes[inds == i, :4].astype(np.float32), boxes[inds == i, 4].astype(np.float32),
                 points[inds == i].astype(np.float32).reshape(-1, 5, 2)) for i in range(n)]


# ----------------------------------------------------------------------------------------------
# Following one person through a video


def track_faces(detections: list) -> list:
    """Pick one face per frame, following the same person.

    ``detections``: per frame a list of :class:`Face` (or anything with
    ``.box`` and ``.prob``). The track starts at the most confident face of the
    whole video and walks forwards and backwards from there; in each frame it
    takes the face whose box centre is nearest to the track's last position
    (measured in face sizes), so a second person or a false alarm does not
    make the crops jump between people. Frames without a face get None.
    """
    chosen: list = [None] * len(detections)
    best = max(((face.prob, i, j) for i, faces in enumerate(detections) for j, face in enumerate(faces)),
               default=None)
    if best is None:
        return chosen
    _, start, j = best
    chosen[start] = detections[start][j]

    def centre(face):
        return np.array([(face.box[0] + face.box[2]) / 2, (face.box[1] + face.box[3]) / 2])

    def size(face):
        return max(face.box[2] - face.box[0], face.box[3] - face.box[1], 1.0)

    for step in (1, -1):
        last = chosen[start]
        i = start + step
        while 0 <= i < len(detections):
            if detections[i]:
                distances = [np.linalg.norm(centre(f) - centre(last)) / size(last) for f in detections[i]]
                chosen[i] = detections[i][int(np.argmin(distances))]
                last = chosen[i]
            i += step
    return chosen


# ----------------------------------------------------------------------------------------------
# Pictures for the notebook


def draw_faces(image: np.ndarray, faces: list, color=(0, 255, 0), thickness: int | None = None) -> np.ndarray:
    """A copy of ``image`` with each face's box, probability and landmarks drawn (RGB uint8)."""
    import cv2

    out = as_rgb_uint8(image).copy()
    thickness = thickness or max(1, round(max(out.shape[:2]) / 300))
    dot_colors = [(255, 0, 0), (0, 128, 255), (255, 255, 0), (255, 0, 255), (0, 255, 255)]
    for face in faces:
        x1, y1, x2, y2 = (int(round(v)) for v in face.box)
        cv2.rectangle(out, (x1, y1), (x2, y2), color, thickness)
        cv2.putText(out, f"{face.prob:.3f}", (x1, max(0, y1 - 4 * thickness)), cv2.FONT_HERSHEY_SIMPLEX,
                    0.4 * thickness, color, thickness)
        points = face.landmarks_frame if face.landmarks_frame is not None else []
        for (x, y), dot in zip(points, dot_colors):
            cv2.circle(out, (int(round(x)), int(round(y))), 2 * thickness, dot, -1)
    return out
