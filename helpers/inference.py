"""One prediction path for pictures and videos, shared by notebook 07 and the Gradio demo.

The steps are the course's pipeline, each done by the module that owns it::

    check the file   (here: type, size, length, readable)
    read frames      helpers.video_frames   evenly spaced frames of a video
    find faces       helpers.face_detector  MTCNN boxes, landmarks and square crops; in a video,
                                            one person followed from frame to frame (track_faces)
    score faces      helpers.models_torch   a checkpoint of notebook 04 -> P(fake) per face
    explain          helpers.explain        Grad-CAM heat map over each face
    one video score  helpers.evaluation     frame scores -> one score per video

Use it like this::

    from helpers import inference
    predictor = inference.load_predictor()            # notebook 04's best checkpoint
    result = predictor.predict_image("photo.jpg")
    result.label, result.confidences, result.faces[0].overlay
    video = predictor.predict_video("clip.mp4", n_frames=16)
    video.label, video.timeline_table()

Every problem with the input (no face, unreadable file, a file too large or too
long, an unsupported type) raises :class:`DemoInputError` with a message meant
for the person who uploaded the file; the demo shows that message as it is.

Memory stays bounded whatever is uploaded: pictures and video frames have a
pixel budget, video frames larger than ``WORK_FRAME_PIXELS`` are scaled down as
soon as they are decoded, and a video is analysed ``FRAMES_IN_MEMORY`` frames
at a time, so one request never holds more than that many frames: only the
faces found in them are kept, and the one frame shown at the end (that of the
most suspicious tracked face) is decoded again.
"""
from __future__ import annotations

import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .video_frames import VIDEO_EXTENSIONS  # the same videos as the folder source takes

# Limits on what the demo accepts. They keep one request to a few seconds on a
# laptop CPU; raise them if your machine is faster.
MAX_FILE_MB = 100             # uploads larger than this are refused
MAX_VIDEO_SECONDS = 60        # longer videos are refused (trim them first)
MAX_IMAGE_PIXELS = 50_000_000  # about 8000 x 6000; larger pictures are refused
MAX_VIDEO_FRAME_PIXELS = 4096 * 2160  # "DCI 4K", about 8.8 megapixels; videos with larger frames are refused
WORK_FRAME_PIXELS = 1920 * 1080  # video frames larger than this are scaled down to it as soon as decoded
MAX_N_FRAMES = 64             # at most this many frames are sampled from one video
FRAMES_IN_MEMORY = 8          # a video is decoded and analysed this many frames at a time
MAX_FACES_EXPLAINED = 8       # Grad-CAM for at most this many faces of one picture (the most suspicious)
DEFAULT_N_FRAMES = 16         # frames sampled evenly from a video
DEFAULT_VIDEO_RULE = "confident"  # frame scores -> video score, see helpers.evaluation.AGGREGATORS
THRESHOLD = 0.5               # P(fake) at or above this is called FAKE

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")

NOTEBOOK_04 = "notebooks/04_inception_resnet.ipynb"


class DemoInputError(ValueError):
    """The input cannot be used; the message says why and what to do instead."""


class NoCheckpointError(FileNotFoundError):
    """No trained checkpoint to predict with; the message says how to make one."""


def no_checkpoint_message(where: Path | str | None = None) -> str:
    """What to do when there is no checkpoint to load."""
    if where is None:
        from . import config

        where = config.models_dir()
    return (f"No trained checkpoint found in {where}. Make one first: run {NOTEBOOK_04} "
            "(or `make course`, which runs every notebook), then start again. "
            "Or point at a checkpoint you have: `python -m helpers.demo_app --checkpoint PATH` "
            "(`make demo CHECKPOINT=PATH`), or load_predictor(checkpoint=PATH) in Python.")


def label_of(prob_fake: float, threshold: float = THRESHOLD) -> str:
    return "FAKE" if prob_fake >= threshold else "REAL"


def confidences_of(prob_fake: float) -> dict:
    """The two class probabilities, in the form gr.Label shows."""
    p = float(prob_fake)
    return {"real": 1.0 - p, "fake": p}


# --------------------------------------------------------------------------------------------
# Input checks


def _size_mb(path: Path) -> float:
    return path.stat().st_size / 2**20


def check_file(path, kinds=("image", "video")) -> tuple[Path, str]:
    """Check that ``path`` is an existing, not too large file of a supported type.

    Returns ``(path, kind)`` with kind "image" or "video" (decided by the file's
    extension). Does not open the file; :func:`load_image` and :func:`probe_video`
    find out whether it is readable.
    """
    if path is None:
        raise DemoInputError("No file was given: upload a picture or a video.")
    path = Path(path).expanduser()
    if not path.exists():
        raise DemoInputError(f"File not found: {path}.")
    if path.is_dir():
        raise DemoInputError(f"{path} is a folder, not a file: choose one picture or video.")
    if not path.is_file():
        raise DemoInputError(f"{path.name} is not a regular file (a named pipe or a device), so it was not opened: "
                             "choose one picture or video.")
    suffix = path.suffix.lower()
    kind = "image" if suffix in IMAGE_EXTENSIONS else "video" if suffix in VIDEO_EXTENSIONS else None
    if kind is None or kind not in kinds:
        wanted = []
        if "image" in kinds:
            wanted.append("a picture (" + ", ".join(e.lstrip(".") for e in IMAGE_EXTENSIONS) + ")")
        if "video" in kinds:
            wanted.append("a video (" + ", ".join(e.lstrip(".") for e in VIDEO_EXTENSIONS) + ")")
        shown = suffix or "no extension"
        raise DemoInputError(f"Unsupported file type ({shown}) for {path.name}: "
                             f"upload {' or '.join(wanted)}.")
    size = _size_mb(path)
    if size > MAX_FILE_MB:
        raise DemoInputError(f"{path.name} is {size:.0f} MB; the demo accepts files up to {MAX_FILE_MB} MB. "
                             "Use a shorter clip or a smaller picture.")
    if size == 0:
        raise DemoInputError(f"{path.name} is empty (0 bytes): the upload or the copy did not finish.")
    return path, kind


def load_image(image) -> np.ndarray:
    """A path, PIL image or array -> RGB uint8 array; DemoInputError if it cannot be used."""
    from PIL import Image, UnidentifiedImageError

    if isinstance(image, (str, Path)):
        path, _ = check_file(image, kinds=("image",))
        try:
            with Image.open(path) as probe:
                width, height = probe.size
                if width * height > MAX_IMAGE_PIXELS:
                    raise DemoInputError(
                        f"{path.name} is {width} x {height} pixels; the demo accepts up to "
                        f"{MAX_IMAGE_PIXELS / 1e6:.0f} megapixels. Resize it first.")
                probe.verify()  # checks the file's structure without decoding all of it
            with Image.open(path) as picture:
                array = np.asarray(picture.convert("RGB"))
        except DemoInputError:
            raise
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
            raise DemoInputError(f"{path.name} could not be read as a picture (corrupt or not really a "
                                 f"{path.suffix.lstrip('.')} file: {error}). Try another file.") from None
        return array
    from .face_detector import as_rgb_uint8

    try:
        array = as_rgb_uint8(image)
    except ValueError:
        raise DemoInputError(f"Expected an RGB picture of shape (height, width, 3), got an array of shape "
                             f"{np.shape(image)}.") from None
    if array.shape[0] * array.shape[1] > MAX_IMAGE_PIXELS:
        raise DemoInputError(f"The picture is {array.shape[1]} x {array.shape[0]} pixels; the demo accepts up "
                             f"to {MAX_IMAGE_PIXELS / 1e6:.0f} megapixels. Resize it first.")
    return array


def upload_message(error, path) -> str:
    """A reading error's text as the uploader should see it: only the file's name, never the server's
    folders (an upload lives in a temporary folder of the server), and advice for an upload."""
    name = Path(path).name
    text = str(error)
    if name:
        text = re.sub(r"(?:[A-Za-z]:)?[\\/][^\s'\"]*[\\/](?=" + re.escape(name) + ")", "", text)
    return text.replace("or remove it from the dataset", "or upload another file")


def _too_many_pixels(name: str, width: int, height: int) -> DemoInputError:
    return DemoInputError(f"{name} has frames of {width} x {height} pixels; the demo accepts videos up to "
                          f"{MAX_VIDEO_FRAME_PIXELS / 1e6:.1f} megapixels per frame (e.g. 4096 x 2160). "
                          "Scale it down first, e.g. to 1920 x 1080.")


def _header_size(path: Path) -> tuple:
    """Width and height as the container announces them, read without decoding a frame ((0, 0) if unknown)."""
    try:
        import av

        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            return int(stream.codec_context.width or 0), int(stream.codec_context.height or 0)
    except Exception:  # unreadable: probe_video reports it properly
        return 0, 0


def probe_video(path):
    """A video's header (helpers.video_frames.VideoInfo); DemoInputError if unusable, too long or too large."""
    from .video_frames import VideoReadError, probe_video as read_header

    path, _ = check_file(path, kinds=("video",))
    width, height = _header_size(path)
    if width * height > MAX_VIDEO_FRAME_PIXELS:  # refused before a single frame is decoded
        raise _too_many_pixels(path.name, width, height)
    try:
        info = read_header(path)
    except VideoReadError as error:
        raise DemoInputError(upload_message(error, path)) from None
    if info.n_frames <= 0 or info.width <= 0 or info.height <= 0:
        raise DemoInputError(f"{path.name} could not be read as a video (no frames). Try another file, "
                             "or re-encode it as H.264 MP4.")
    if info.width * info.height > MAX_VIDEO_FRAME_PIXELS:
        raise _too_many_pixels(path.name, info.width, info.height)
    if info.duration_s > MAX_VIDEO_SECONDS:
        raise DemoInputError(f"{path.name} lasts {info.duration_s:.0f} s; the demo accepts videos up to "
                             f"{MAX_VIDEO_SECONDS} s. Trim it first (e.g. keep the part where the face is visible).")
    return info


def fit_pixels(frame: np.ndarray, max_pixels: int | None = None) -> np.ndarray:
    """``frame`` scaled down (same aspect ratio, area interpolation) to at most ``max_pixels``
    (None: ``WORK_FRAME_PIXELS`` as it is set now); as is if smaller."""
    import cv2

    max_pixels = WORK_FRAME_PIXELS if max_pixels is None else max_pixels
    height, width = frame.shape[:2]
    if height * width <= max_pixels:
        return frame
    scale = (max_pixels / (height * width)) ** 0.5
    size = (max(1, int(width * scale)), max(1, int(height * scale)))
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)


def check_n_frames(n_frames) -> int:
    """The number of frames to sample, checked: a whole number from 1 to ``MAX_N_FRAMES``."""
    try:
        number = int(n_frames)
    except (TypeError, ValueError):
        number = None
    if number is None or number != n_frames or not 1 <= number <= MAX_N_FRAMES:
        raise DemoInputError(f"The number of frames to sample must be a whole number from 1 to {MAX_N_FRAMES}, "
                             f"got {n_frames!r}.")
    return number


# --------------------------------------------------------------------------------------------
# Results


class _Verdict:
    """What every prediction derives from its ``prob_fake`` and ``threshold`` (and ``faces``, if any)."""

    @property
    def label(self) -> str:
        return label_of(self.prob_fake, self.threshold)

    @property
    def verdict(self) -> str:
        """REAL, FAKE or UNCERTAIN (inside the checkpoint's uncertain band; helpers.calibration)."""
        from .calibration import verdict_of

        return verdict_of(self.prob_fake, self.threshold, getattr(self, "band", None))

    @property
    def confidences(self) -> dict:
        return confidences_of(self.prob_fake)

    @property
    def n_faces(self) -> int:
        return len(self.faces)


@dataclass
class FacePrediction(_Verdict):
    """One detected face and what the model thinks of it."""

    box: tuple                 # (x1, y1, x2, y2) in the pixels of the picture / of the analysed frame
    #                            (video frames above WORK_FRAME_PIXELS are scaled down before analysis)
    detection_prob: float      # MTCNN's confidence that this is a face
    prob_fake: float           # the classifier's P(fake)
    crop: np.ndarray           # the face as the model saw it, RGB uint8
    overlay: np.ndarray | None = None  # Grad-CAM over the crop, RGB uint8 (None if not explained)
    frame_index: int | None = None     # for videos: which frame
    time_s: float | None = None        # for videos: when
    threshold: float = THRESHOLD
    band: dict | None = None           # the uncertain band (None: every verdict is REAL or FAKE)
    warnings: list = field(default_factory=list)  # this face looks unlike the training faces

    def summary(self) -> dict:
        return {"box": [round(float(v), 1) for v in self.box], "detection_prob": round(float(self.detection_prob), 4),
                "prob_fake": float(self.prob_fake), "label": self.label, "verdict": self.verdict,
                "warnings": self.warnings, "frame_index": self.frame_index}


@dataclass
class ImagePrediction(_Verdict):
    """Every face of one picture, and the picture's verdict (its most suspicious face)."""

    faces: list                # FacePrediction, most suspicious first
    annotated: np.ndarray      # the picture with a labelled box per face
    seconds: float = 0.0
    notes: list = field(default_factory=list)
    threshold: float = THRESHOLD
    band: dict | None = None
    warnings: list = field(default_factory=list)  # the input looks unlike the training data

    @property
    def prob_fake(self) -> float:
        return max(f.prob_fake for f in self.faces)

    @property
    def overlay(self) -> np.ndarray | None:
        """Grad-CAM of the face the verdict rests on."""
        return self.faces[0].overlay

    def summary(self) -> dict:
        return {"label": self.label, "verdict": self.verdict, "prob_fake": self.prob_fake, "n_faces": self.n_faces,
                "faces": [f.summary() for f in self.faces], "seconds": round(self.seconds, 3), "notes": self.notes,
                "warnings": self.warnings}


@dataclass
class VideoPrediction(_Verdict):
    """Per-frame scores of a video, and its verdict.

    The video is judged on one person, tracked through the sampled frames as in
    training (see :meth:`Predictor.predict_video`): ``faces`` and the frame
    scores are that person's.
    """

    path: Path
    info: object               # helpers.video_frames.VideoInfo: n_frames, fps, width, height, duration_s
    frame_indices: list        # the frames that were sampled
    times_s: list              # their time stamps
    frame_probs: list          # P(fake) per sampled frame (its tracked face), None = no face
    faces: list                # FacePrediction of the tracked face, one per frame with a face, in frame order
    prob_fake: float           # the video's score (rule applied to the frame scores)
    rule: str
    explained: FacePrediction | None = None  # the most suspicious tracked face, with its Grad-CAM
    annotated: np.ndarray | None = None      # the frame of that face, its box drawn (other faces grey)
    seconds: float = 0.0
    notes: list = field(default_factory=list)
    threshold: float = THRESHOLD
    band: dict | None = None
    warnings: list = field(default_factory=list)

    @property
    def n_frames_with_face(self) -> int:
        return sum(p is not None for p in self.frame_probs)

    @property
    def overlay(self) -> np.ndarray | None:
        return None if self.explained is None else self.explained.overlay

    def timeline_table(self):
        """DataFrame: frame_index, time_s, prob_fake (NaN where no face was found)."""
        import pandas as pd

        return pd.DataFrame({
            "frame_index": self.frame_indices,
            "time_s": [round(t, 3) for t in self.times_s],
            "prob_fake": [np.nan if p is None else float(p) for p in self.frame_probs],
        })

    def summary(self) -> dict:
        return {"label": self.label, "verdict": self.verdict, "warnings": self.warnings,
                "prob_fake": self.prob_fake, "rule": self.rule, "n_faces": self.n_faces,
                "n_frames_sampled": len(self.frame_indices), "n_frames_with_face": self.n_frames_with_face,
                "timeline": [None if p is None else float(p) for p in self.frame_probs],
                "duration_s": round(self.info.duration_s, 3), "seconds": round(self.seconds, 3),
                "notes": self.notes}


# --------------------------------------------------------------------------------------------
# Drawing


OTHER_FACE_COLOUR = (150, 150, 150)  # a face the video's verdict does not follow (grey, see predict_video)


def annotate(image: np.ndarray, faces: list, others: list = ()) -> np.ndarray:
    """Draw each face's box and verdict ("FAKE 0.87") on a copy of the picture.

    ``others``: faces that were found but not judged (anything with a ``.box``,
    e.g. the people a video's track does not follow); drawn with a thin grey
    box labelled "not judged".
    """
    from PIL import Image, ImageDraw, ImageFont

    picture = Image.fromarray(image).convert("RGB")
    draw = ImageDraw.Draw(picture)
    scale = max(picture.size) / 600
    width = max(2, int(round(3 * scale)))
    font = ImageFont.load_default(size=max(12, int(round(18 * scale))))

    def box(face, colour, text, line):
        x1, y1, x2, y2 = (float(v) for v in face.box)
        draw.rectangle([x1, y1, x2, y2], outline=colour, width=line)
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        text_y = y1 - (bottom - top) - 2 * width if y1 - (bottom - top) - 2 * width > 0 else y2 + width
        draw.rectangle([x1, text_y, x1 + (right - left) + 2 * width, text_y + (bottom - top) + 2 * width], fill=colour)
        draw.text((x1 + width, text_y + width - top), text, fill=(255, 255, 255), font=font)

    for face in others:
        box(face, OTHER_FACE_COLOUR, "not judged", max(1, width // 2))
    for face in faces:
        box(face, (220, 40, 40) if face.label == "FAKE" else (40, 170, 70), f"{face.label} {face.prob_fake:.2f}", width)
    return np.asarray(picture)


# --------------------------------------------------------------------------------------------
# The predictor


class Predictor:
    """A trained face classifier plus a face detector, ready to judge pictures and videos.

    Make one with :func:`load_predictor`. Calls are serialised with a lock, so
    one Predictor can serve several requests (the Gradio app) safely.
    """

    def __init__(self, model, metadata: dict | None = None, device: str = "cpu", detector=None,
                 checkpoint: Path | None = None, threshold: float | None = None, rule: str | None = None,
                 band: dict | None = None, input_reference: dict | None = None, temperature: float | None = None):
        from . import evaluation

        self.metadata = dict(metadata or {})
        # The checkpoint may say how it wants to be used (notebook 04 records its threshold and the
        # video rule it chose); explicit arguments win.
        rule = rule or self.metadata.get("video_rule") or DEFAULT_VIDEO_RULE
        if rule not in evaluation.AGGREGATORS:
            raise ValueError(f"Unknown video rule {rule!r}; choose from {sorted(evaluation.AGGREGATORS)}.")
        self.model = model.to(device).eval()
        self.device = device
        self.checkpoint = None if checkpoint is None else Path(checkpoint)
        self.threshold = float(threshold if threshold is not None else self.metadata.get("threshold") or THRESHOLD)
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"threshold must be a probability strictly between 0 and 1, got {self.threshold}.")
        self.rule = rule
        self.image_size = int(self.metadata.get("image_size") or 160)
        # Optional, from notebook 09 (helpers.calibration): a temperature for the scores, an uncertain band
        # around the threshold and what the training faces looked like (for warnings about unusual input).
        self.temperature = float(temperature or self.metadata.get("temperature") or 1.0)
        self.band = band if band is not None else self.metadata.get("uncertain_band")
        self.input_reference = input_reference if input_reference is not None else self.metadata.get("input_reference")
        self._detector = detector
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        source = self.checkpoint.name if self.checkpoint else "in-memory model"
        return f"Predictor({source}, image_size={self.image_size}, device={self.device!r}, rule={self.rule!r})"

    @property
    def detector(self):
        if self._detector is None:
            from .face_detector import FaceDetector
            from .faces import COMMON_DEFAULTS

            # Crops like the training crops: the same margin around the box, at the model's input size.
            margin = self.metadata.get("margin", COMMON_DEFAULTS["margin"])
            self._detector = FaceDetector(device=self.device, crop_size=self.image_size, margin=margin)
        return self._detector

    def warm_up(self) -> "Predictor":
        """Load the face detector and the Grad-CAM code and run each once on a blank face.

        The first request is otherwise several seconds slower than the next ones
        (imports, first passes through the networks); the web app calls this at start.
        """
        blank = np.full((self.image_size, self.image_size, 3), 128, np.uint8)
        with self._lock:
            self._detect([blank])
            self.score_faces([blank])
            self.explain_faces([blank])
        return self

    # -- building blocks ---------------------------------------------------------------------

    def _faces_tensor(self, crops: list):
        """Crops (RGB uint8, any size) -> float tensor (N, 3, S, S) in [0, 1], as the model was trained.

        Resized and scaled the way helpers.datasets_torch prepares training crops.
        """
        import cv2
        import torch

        from .datasets_torch import to_tensor

        size = self.image_size
        tensors = []
        for crop in crops:
            crop = np.array(crop, dtype=np.uint8)  # a writable copy (torch warns about read-only arrays)
            if crop.shape[:2] != (size, size):
                shrinking = crop.shape[0] > size
                crop = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
            tensors.append(to_tensor(crop))
        return torch.stack(tensors)

    def score_faces(self, crops: list, batch_size: int = 32) -> np.ndarray:
        """P(fake) for each face crop (helpers.training_torch.predict_probs over batches of crops)."""
        from .training_torch import predict_probs

        if not crops:
            return np.zeros(0, dtype=np.float64)
        batches = (self._faces_tensor(crops[start:start + batch_size]) for start in range(0, len(crops), batch_size))
        probs = np.asarray(predict_probs(self.model, batches, self.device), dtype=np.float64)
        if self.temperature != 1.0:
            from .calibration import apply_temperature

            probs = apply_temperature(probs, self.temperature)
        return probs

    def face_warnings(self, box, detection_prob: float) -> list:
        """Warnings for a face unlike the training faces (helpers.calibration.input_warnings); [] without a reference."""
        from .calibration import input_warnings

        size = max(float(box[2]) - float(box[0]), float(box[3]) - float(box[1]))
        return input_warnings(size, float(detection_prob), self.input_reference)

    def explain_faces(self, crops: list) -> list:
        """Grad-CAM overlay (RGB uint8, model's input size) for each face crop."""
        from . import explain

        if not crops:
            return []
        faces = self._faces_tensor(crops)
        cams = explain.gradcam_torch(self.model, faces.to(self.device))
        shown = (faces.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
        self.model.eval()
        return [explain.overlay(face, cam) for face, cam in zip(shown, np.asarray(cams))]

    def _detect(self, frames: list) -> list:
        return self.detector.detect(frames)

    # -- pictures -----------------------------------------------------------------------------

    def predict_image(self, image, explain: bool = True) -> ImagePrediction:
        """Judge every face in a picture (a path, a PIL image or an RGB array).

        Raises DemoInputError when the file cannot be used or holds no face.
        With several faces, each is scored; the picture's verdict follows the
        most suspicious one. Videos differ (:meth:`predict_video` follows one
        person, as in training): a picture has no frames to track a person
        through, and no face in it is more "the" subject than another.
        """
        with self._lock:
            start = time.perf_counter()
            array = load_image(image)
            name = Path(image).name if isinstance(image, (str, Path)) else "the picture"
            found = self._detect([array])[0]
            if not found:
                raise DemoInputError(
                    f"No face found in {name}. Upload a picture where one face is clearly visible "
                    "(roughly frontal, well lit, at least about 40 pixels wide).")
            crops = [np.asarray(f.crop) for f in found]
            probs = self.score_faces(crops)
            overlays = [None] * len(crops)
            if explain:  # the most suspicious faces only: Grad-CAM needs memory for every face at once
                chosen = [int(k) for k in np.argsort(-probs, kind="stable")[:MAX_FACES_EXPLAINED]]
                for k, overlay in zip(chosen, self.explain_faces([crops[k] for k in chosen])):
                    overlays[k] = overlay
            faces = [FacePrediction(box=tuple(float(v) for v in f.box), detection_prob=float(f.prob),
                                    prob_fake=float(p), crop=c, overlay=o, threshold=self.threshold, band=self.band,
                                    warnings=self.face_warnings(f.box, f.prob))
                     for f, p, c, o in zip(found, probs, crops, overlays)]
            faces.sort(key=lambda f: f.prob_fake, reverse=True)
            notes = []
            if len(faces) > 1:
                notes.append(f"{len(faces)} faces found: each is scored; the picture's verdict follows the most "
                             "suspicious one. Crop the picture to one face for a cleaner answer.")
            if explain and len(faces) > MAX_FACES_EXPLAINED:
                notes.append(f"Heat maps are shown for the {MAX_FACES_EXPLAINED} most suspicious faces only.")
            return ImagePrediction(faces=faces, annotated=annotate(array, faces),
                                   seconds=time.perf_counter() - start, notes=notes, threshold=self.threshold,
                                   band=self.band, warnings=faces[0].warnings)

    # -- videos -------------------------------------------------------------------------------

    def predict_video(self, path, n_frames: int = DEFAULT_N_FRAMES, explain: bool = True,
                      rule: str | None = None) -> VideoPrediction:
        """Score ``n_frames`` evenly spaced frames of a video and combine them into one verdict.

        A video is judged on one person, the way the model was trained
        (notebook 02 kept one face per frame): helpers.face_detector.track_faces starts
        at the most confidently detected face of the sampled frames and follows
        that person from frame to frame (nearest box centre). Each sampled frame
        gets the score of its tracked face; frames without a face are skipped;
        the video's score applies ``rule`` (see helpers.evaluation.AGGREGATORS)
        to those frame scores. Other faces are found but not scored (a note
        says so: crop the video to judge another person). With ``explain``,
        the most suspicious tracked face gets a Grad-CAM overlay.

        Frames are decoded, scaled to at most ``WORK_FRAME_PIXELS`` and searched
        for faces ``FRAMES_IN_MEMORY`` at a time, then dropped: only the
        detections (boxes and small face crops) are kept. The one frame shown,
        that of the most suspicious tracked face, is decoded again at the end.
        A video that is damaged part-way is judged on the frames before the
        damage, and a note says so.
        """
        from . import evaluation
        from .face_detector import track_faces
        from .video_frames import VideoReadError, sample_frame_indices

        rule = rule or self.rule
        if rule not in evaluation.AGGREGATORS:
            raise ValueError(f"Unknown video rule {rule!r}; choose from {sorted(evaluation.AGGREGATORS)}.")
        n_frames = check_n_frames(n_frames)
        with self._lock:
            start = time.perf_counter()
            path = Path(path)
            info = probe_video(path)
            indices = [int(i) for i in sample_frame_indices(info.n_frames, n_frames)]
            fps = info.fps or 25.0
            state = _VideoState()
            damage = None
            try:
                for chunk in _frame_chunks(path, indices, FRAMES_IN_MEMORY):
                    self._analyse_chunk(chunk, state)
            except (VideoReadError, FileNotFoundError) as error:  # the decoder gave up part-way: keep what came before
                if not state.indices:
                    raise DemoInputError(upload_message(error, path)) from None
                damage = state.indices[-1]
            if not state.indices:
                raise DemoInputError(f"No frame of {path.name} could be decoded: the file may be corrupt. "
                                     "Try another file, or re-encode it as H.264 MP4.")
            if not any(state.detections):
                raise DemoInputError(f"No face found in any of the {len(state.indices)} frames sampled from "
                                     f"{path.name}. Use a video where a face is clearly visible, or sample more frames.")
            tracked = track_faces(state.detections)  # one face per frame, the same person throughout
            followed = [k for k, face in enumerate(tracked) if face is not None]
            crops = [np.asarray(tracked[k].crop) for k in followed]
            probs = self.score_faces(crops)
            faces = [FacePrediction(box=tuple(float(v) for v in tracked[k].box),
                                    detection_prob=float(tracked[k].prob), prob_fake=float(p), crop=crop,
                                    frame_index=state.indices[k], time_s=state.indices[k] / fps,
                                    threshold=self.threshold, band=self.band)
                     for k, p, crop in zip(followed, probs, crops)]
            frame_probs = [None] * len(state.indices)
            for k, face in zip(followed, faces):
                frame_probs[k] = face.prob_fake
            scored = [p for p in frame_probs if p is not None]
            video_prob = float(evaluation.AGGREGATORS[rule](scored))
            top = int(np.argmax(probs))
            explained = faces[top]
            if explain:
                explained.overlay = self.explain_faces([explained.crop])[0]
            shown = followed[top]
            others = [face for face in state.detections[shown] if face is not tracked[shown]]
            frame = _decoded_frame(path, state.indices[shown])
            notes = []
            if damage is not None:
                notes.append(f"Only {len(state.indices)} of the {len(indices)} sampled frames could be decoded: the "
                             f"file is damaged after frame {damage}, so the verdict rests on the frames before it.")
            elif len(state.indices) < len(indices):
                notes.append(f"Only {len(state.indices)} of the {len(indices)} sampled frames could be decoded: the "
                             f"video ends after frame {state.indices[-1]}, earlier than its header says (it may be "
                             "cut short).")
            missing = len(state.indices) - len(scored)
            if missing:
                notes.append(f"No face in {missing} of the {len(state.indices)} sampled frames; those frames are "
                             "skipped.")
            if state.scaled_from:
                notes.append(f"Frames of {state.scaled_from[0]} x {state.scaled_from[1]} pixels were scaled down to "
                             f"{state.scaled_to[0]} x {state.scaled_to[1]} for the analysis.")
            most = max(len(found) for found in state.detections)
            if most > 1:
                notes.append(f"Up to {most} faces were seen per frame. As in training (notebook 02), the verdict "
                             "follows one person: the most confidently detected face, tracked from frame to frame; "
                             "the other faces (grey boxes) are not judged. To judge another person, crop the video "
                             "to that person and upload it again.")
            return VideoPrediction(
                path=path, info=info, frame_indices=state.indices, times_s=[i / fps for i in state.indices],
                frame_probs=frame_probs, faces=faces, prob_fake=video_prob, rule=rule, explained=explained,
                annotated=annotate(frame, [explained], others), seconds=time.perf_counter() - start,
                notes=notes, threshold=self.threshold, band=self.band, warnings=self._video_warnings(faces))

    def _video_warnings(self, faces: list) -> list:
        """Warnings for a video whose typical face (median size and detector confidence) is unusual."""
        if not faces:
            return []
        sizes = [max(f.box[2] - f.box[0], f.box[3] - f.box[1]) for f in faces]
        middle = float(np.median(sizes)), float(np.median([f.detection_prob for f in faces]))
        return self.face_warnings((0.0, 0.0, middle[0], middle[0]), middle[1])

    def _analyse_chunk(self, chunk: list, state: "_VideoState") -> None:
        """Find the faces of a few decoded frames and keep them (boxes and small crops), not the frames."""
        frames = [frame for _, frame, _ in chunk]
        detections = self._detect(frames)
        for (index, frame, original), found in zip(chunk, detections):
            if original != (frame.shape[1], frame.shape[0]):
                state.scaled_from, state.scaled_to = original, (frame.shape[1], frame.shape[0])
            state.indices.append(index)
            state.detections.append(list(found))

    # -- either -------------------------------------------------------------------------------

    def predict_file(self, path, n_frames: int = DEFAULT_N_FRAMES, explain: bool = True):
        """Picture or video, by the file's extension."""
        path, kind = check_file(path)
        if kind == "image":
            return self.predict_image(path, explain=explain)
        return self.predict_video(path, n_frames=n_frames, explain=explain)


@dataclass
class _VideoState:
    """What predict_video keeps while it walks through a video's frames: what was found, never a frame."""

    indices: list = field(default_factory=list)       # sampled frames decoded so far
    detections: list = field(default_factory=list)    # per decoded frame: its faces (face_detector.Face: box, confidence and
    #                                                   a crop at the model's input size), most confident first
    scaled_from: tuple | None = None
    scaled_to: tuple | None = None


def _frame_chunks(path: Path, indices: list, size: int, threads: int | None = None):
    """Lists of at most ``size`` decoded frames, each ``(index, frame, (width, height) as decoded)``; the
    frame itself is scaled down to ``WORK_FRAME_PIXELS`` when it is larger. ``threads``: decoder threads
    (None: up to 4; each holds a frame of its own)."""
    from . import video_frames

    threads = threads or max(1, min(4, os.cpu_count() or 1))
    chunk = []
    try:
        for index, frame in video_frames.iter_frames_by_index(path, indices, threads=threads):
            chunk.append((index, fit_pixels(frame), (frame.shape[1], frame.shape[0])))
            del frame  # only the scaled copy is kept
            if len(chunk) == size:
                yield chunk
                chunk = []
    except video_frames.VideoReadError:
        if chunk:  # the frames decoded before the damage are still analysed
            yield chunk
        raise
    if chunk:
        yield chunk


def _decoded_frame(path: Path, index: int) -> np.ndarray:
    """Frame ``index`` of a video decoded again, scaled as for the analysis (so that its boxes fit)."""
    from .video_frames import VideoReadError

    try:
        for chunk in _frame_chunks(path, [index], 1, threads=1):  # one frame: one decoder thread is enough
            return chunk[0][1]
    except (VideoReadError, FileNotFoundError) as error:
        raise DemoInputError(upload_message(error, path)) from None
    raise DemoInputError(f"Frame {index} of {path.name} could not be decoded a second time. Try again, or "
                         "re-encode the video as H.264 MP4.")


def load_predictor(checkpoint=None, device: str = "auto", **options) -> Predictor:
    """A Predictor from a checkpoint in notebook 04's format.

    ``checkpoint=None`` takes the best checkpoint notebook 04 trained
    (models_torch.default_checkpoint()); without one, NoCheckpointError says
    how to make one. ``options`` go to :class:`Predictor` (threshold, rule, detector).
    """
    from . import gpu, model_registry, models_torch

    if checkpoint is None:
        checkpoint = models_torch.default_checkpoint()
        if checkpoint is None:
            raise NoCheckpointError(no_checkpoint_message())
    path = Path(checkpoint).expanduser()
    if not os.path.lexists(path):
        raise NoCheckpointError(f"Checkpoint {path} does not exist. " + no_checkpoint_message())
    if path.is_dir():
        raise models_torch.CheckpointError(models_torch.folder_message(path))
    resolved = gpu.torch_device(device)
    model, metadata = model_registry.load_checkpoint(path, device=resolved)
    check_video_rule(metadata, path)
    return Predictor(model, metadata, device=resolved, checkpoint=path, **options)


def check_video_rule(metadata: dict, path) -> None:
    """CheckpointError unless the checkpoint's ``video_rule`` (if any) is a rule of helpers.evaluation."""
    from . import evaluation, models_torch

    rule = metadata.get("video_rule")
    if rule is not None and rule not in evaluation.AGGREGATORS:
        raise models_torch.CheckpointError(
            f"{path} was not used: its metadata 'video_rule' is {rule!r}; it must be one of "
            f"{', '.join(sorted(evaluation.AGGREGATORS))}. Re-save the model with models_torch.save_checkpoint "
            f"and a valid rule, or {models_torch.RETRAIN_HINT}.")
