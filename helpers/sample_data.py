"""The built-in sample: talking-head-like clips and their fakes, made locally.

Nothing is downloaded. The faces come from the photos that installed packages
ship with a clean licence (:data:`PHOTOS`): Grace Hopper's U.S. Navy portrait
(Matplotlib, public domain), the NASA portrait of the astronaut Eileen Collins
(scikit-image, public domain) and the "camera" photo of Lav Varshney
(scikit-image, CC0). Each *identity* of the sample is one of these photos,
mirrored, warped (face shape, a slight head turn, smile, eyebrows), recoloured,
with its skin smoothed or sharpened and set on its own backdrop. A detector
trained on the sample can learn manipulation artefacts, never who is who.

How a real clip is made (all of it seeded, so the same seed gives the same files):

1. *Scene*: the identity's photo on a backdrop (blurred borders, a gradient or soft shapes).
2. *Camera*: every frame is an affine view of that scene: slow pan, zoom and a slight roll.
3. *Talking*: a local warp below the mouth opens and closes the jaw.
4. *Capture nuisances*: exposure, white balance and a light gradient that drift,
   lens blur, sensor noise.
5. *Distribution nuisances*: sharpening or blurring, down- and up-scaling,
   H.264 (libx264, yuv420p) at a quality drawn per clip, like the DFDC videos.

The nuisances are drawn per clip and a fake shares its original's, so no global
statistic of a frame (sharpness, noise, colour, file size) tells REAL from FAKE.

A fake is made from a real clip (its ``original``) with one of :data:`METHODS`
(the ``difficulty`` decides how well each hides its traces):

``identity-swap``  another identity's face, aligned on five landmarks, colour-transferred,
                   sharpness- and noise-matched, blended with a feathered mask or Poisson blending;
``self-blend``     the face blended with a shifted, rescaled, colour- and sharpness-jittered copy
                   of itself (Self-Blended Images): only a faint boundary;
``mouth``          only the mouth region replaced, moving out of step (like re-enactment);
``eyes``           only the eye region replaced;
``flicker``        an identity swap whose mask, colour and opacity waver from frame to frame.

Difficulty ``"easy"`` is the first generator (one photo, low-resolution swaps
that are visibly blurrier than the original): a quick first look.

Public functions:

    generate_sample(out_dir, profile="standard", **overrides)  a whole dataset folder
    make_clip(path, width, height, seconds, fake, seed)         one clip, any size (e.g. 1920x1080)
    sample_settings(profile, **overrides)                       the generation settings of a profile
    portrait_landmarks(photo=...)                               the cached MTCNN landmarks of a photo
"""
from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from . import config, metadata, safe_io
from .geometry import apply_transform, similarity_transform

# ----------------------------------------------------------------------------
# Settings per profile
# ----------------------------------------------------------------------------

SAMPLE_PROFILES = {
    # a handful of tiny clips: seconds to make, used by every smoke test (one fake per method)
    "smoke": dict(n_real=4, n_fake=5, n_noface=1, width=320, height=240, seconds=1.0, fps=30,
                  portrait_fraction=0.25, n_identities=4, difficulty="medium",
                  fractions=(0.7, 0.15, 0.15)),
    # enough for a randomly initialised CNN to learn something measurable on a laptop CPU, and
    # enough test videos (about 30 %, >= 40) for an AUC with a usable confidence interval
    "standard": dict(n_real=70, n_fake=70, n_noface=1, width=640, height=360, seconds=(1.6, 2.4), fps=30,
                     portrait_fraction=0.2, n_identities=20, difficulty="medium",
                     fractions=(0.55, 0.15, 0.30)),
    # more and larger clips (DFDC's 1920x1080 halved)
    "full": dict(n_real=150, n_fake=150, n_noface=2, width=960, height=540, seconds=(3.0, 4.0), fps=30,
                 portrait_fraction=0.2, n_identities=32, difficulty="medium",
                 fractions=(0.6, 0.15, 0.25)),
}
# How hard the fakes are to tell from the reals. "easy" is the first generator (one photo,
# low-resolution swaps: blur gives them away); "medium" and "hard" use every photo, every
# method and nuisances on real and fake clips alike, "hard" with better-hidden traces.
DIFFICULTIES = ("easy", "medium", "hard")
# The manipulation methods of "medium" and "hard" (each fake gets one, in equal shares).
METHODS = ("identity-swap", "self-blend", "mouth", "eyes", "flicker")
# Which part of the face each method changes (recorded per fake as its "region").
METHOD_REGIONS = {"identity-swap": "face", "self-blend": "face", "mouth": "mouth", "eyes": "eyes",
                  "flicker": "face"}
# How strong the traces of a fake are (0 hidden .. 1 obvious), drawn per fake. In "medium" the
# traces also lean one way, as those of learned generators do: the pasted face smoother and cleaner
# than the frame around it (sharpness_match and noise_match below 1), its colours off, its mask's
# edge narrow. In "hard" they are weaker and go either way (too smooth or too crisp, too clean or
# too noisy), so only inconsistency is left. Measured on the standard sample (n = 42 test videos,
# 160 px, random weights, 2026-12-03): with today's colour, resolution and edge traces but the
# fine-detail and noise deficit only a spread |N(0, 0.6 s)|, Meso-4 reached a test video AUC of
# 0.62 after 8 epochs and the custom CNN 0.60; with the deficit starting at 0.4 s and 0.5 s
# (generator v5) Meso-4 0.87 and the custom CNN 0.68 after 10 epochs, while face statistics alone
# stayed at 0.56 (the trivial classifier of notebook 01).
STRENGTH_RANGES = {"medium": (0.75, 1.0), "hard": (0.1, 0.65)}
DEFAULT_SEED = metadata.DEFAULT_SEED
GENERATOR_VERSION = 5  # bump when the generator's output changes, so cached samples are remade

PORTRAIT_CREDIT = ("Grace Hopper, official U.S. Navy photograph (public domain), "
                   "shipped with Matplotlib as mpl-data/sample_data/grace_hopper.jpg")


@dataclass(frozen=True)
class Photo:
    """A face photo shipped by an installed package, with where it comes from and its licence."""
    name: str
    package: str
    file: str            # path inside the installed package
    subject: str
    licence: str
    source: str
    pose: str = "frontal"  # identity swaps only pair photos of the same pose

    def credit(self) -> str:
        return f"{self.subject}; {self.licence}; shipped with {self.package} as {self.file} ({self.source})"


PHOTOS = {
    "grace_hopper": Photo("grace_hopper", "matplotlib", "mpl-data/sample_data/grace_hopper.jpg",
                          "Grace Hopper (portrait, 1984)", "public domain",
                          "official U.S. Navy photograph"),
    "astronaut": Photo("astronaut", "scikit-image", "skimage/data/astronaut.png",
                       "Eileen Collins, NASA astronaut (portrait)", "public domain",
                       "NASA Great Images database; 'No known copyright restrictions, released into the "
                       "public domain' (scikit-image's data docstring)"),
    "camera": Photo("camera", "scikit-image", "skimage/data/camera.png",
                    "Lav Varshney behind a camera (grey, three-quarter profile)", "CC0 1.0",
                    "'No copyright restrictions. CC0 by the photographer (Lav Varshney)' "
                    "(scikit-image's data docstring)", pose="profile"),
}
# The order identities take their photos in (so the grey profile photo is one identity in five).
PHOTO_CYCLE = ("grace_hopper", "astronaut", "camera", "grace_hopper", "astronaut")


def sample_settings(profile: str = "standard", **overrides) -> dict:
    """The generation settings of ``profile`` with ``overrides`` (``None`` = keep the profile's value)."""
    config.check_profile(profile)
    settings = config.apply_overrides({**SAMPLE_PROFILES[profile], "seed": DEFAULT_SEED}, overrides,
                                      what="sample setting")
    if settings["difficulty"] not in DIFFICULTIES:
        raise ValueError(f"Unknown sample difficulty {settings['difficulty']!r}; choose one of "
                         f"{', '.join(DIFFICULTIES)}.")
    for key in ("seconds", "fractions"):
        if isinstance(settings[key], list):
            settings[key] = tuple(settings[key])
    fractions = np.asarray(settings["fractions"], dtype=float)
    if fractions.shape != (3,) or (fractions < 0).any() or fractions[[0, 2]].min() <= 0:
        raise ValueError(f"fractions must be three shares (train, val, test), train and test above 0; "
                         f"got {settings['fractions']}.")
    _check_size(settings["width"], settings["height"])
    return settings


def _check_size(width: int, height: int) -> None:
    if width % 2 or height % 2 or width < 64 or height < 64:
        raise ValueError(f"Clip size {width}x{height}: H.264 in yuv420p needs even width and height "
                         "of at least 64 px (e.g. 640x360, 1920x1080, 1080x1920).")
    if max(width, height) > 1920 or min(width, height) > 1080:
        raise ValueError(f"Clip size {width}x{height} is larger than DFDC's 1920x1080 (or 1080x1920).")


# ----------------------------------------------------------------------------
# The source photo and its landmarks (MTCNN once, then cached)
# ----------------------------------------------------------------------------

def photo_path(photo: str = "grace_hopper") -> Path:
    """Path of one of :data:`PHOTOS` inside its installed package."""
    if photo not in PHOTOS:
        raise ValueError(f"Unknown photo {photo!r}; choose one of {', '.join(PHOTOS)}.")
    if PHOTOS[photo].package == "matplotlib":
        import matplotlib.cbook

        return Path(matplotlib.cbook.get_sample_data(Path(PHOTOS[photo].file).name, asfileobj=False))
    try:
        import skimage
    except ImportError:
        raise ImportError(f"The sample's photo {photo!r} ships with scikit-image, which is not installed: "
                          "pip install scikit-image==0.26.0 (it is in requirements.txt), or use "
                          "difficulty=\"easy\" (Matplotlib's photo only).") from None
    return Path(skimage.__file__).parent / Path(PHOTOS[photo].file).relative_to("skimage")


def portrait_path() -> Path:
    """Path of the public-domain portrait shipped with Matplotlib (the photo of difficulty "easy")."""
    return photo_path("grace_hopper")


@lru_cache(maxsize=8)
def _photo_rgb(photo: str = "grace_hopper") -> np.ndarray:
    path = photo_path(photo)
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)  # grey photos come back with three equal channels
    if bgr is None:
        raise FileNotFoundError(f"Cannot read the sample photo {path}; is {PHOTOS[photo].package} installed?")
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    rgb.setflags(write=False)
    return rgb


def _portrait_rgb() -> np.ndarray:
    return _photo_rgb("grace_hopper")


def _landmark_cache_path() -> Path:
    return config.data_dir() / "cache" / "portrait_landmarks.json"


def portrait_landmarks(cache_path: Path | None = None, photo: str = "grace_hopper") -> np.ndarray:
    """Five MTCNN landmarks of a photo (left eye, right eye, nose, mouth left, mouth right), 5x2 px.

    MTCNN runs once per photo; the result is cached as JSON in
    ``data/cache/portrait_landmarks.json`` keyed by the photo's SHA-1.
    """
    cache_path = Path(cache_path or _landmark_cache_path())
    digest = hashlib.sha1(photo_path(photo).read_bytes()).hexdigest()[:16]
    cache = {}
    if cache_path.exists():
        try:
            cache = json.loads(cache_path.read_text())
        except (OSError, ValueError):
            cache = {}
    if digest not in cache:
        from facenet_pytorch import MTCNN  # heavy import, only the first time

        detector = MTCNN(keep_all=True, device="cpu")
        boxes, probs, points = detector.detect(_photo_rgb(photo), landmarks=True)
        if boxes is None or len(boxes) == 0:
            raise RuntimeError(f"MTCNN found no face in the sample photo {photo!r}.")
        best = int(np.argmax(np.asarray(probs, dtype=np.float32)))
        cache[digest] = {"photo": photo_path(photo).name,
                         "box": np.asarray(boxes[best], dtype=np.float32).round(2).tolist(),
                         "prob": float(np.asarray(probs, dtype=np.float32)[best]),
                         "landmarks": np.asarray(points[best], dtype=np.float32).round(2).tolist()}
        safe_io.atomic_write_text(cache_path, json.dumps(cache, indent=2))
    return np.asarray(cache[digest]["landmarks"], dtype=np.float64)


def photo_credits(photos=None) -> dict:
    """``{photo: {"subject", "licence", "source", "package", "file"}}`` for the data card."""
    return {name: {"subject": PHOTOS[name].subject, "licence": PHOTOS[name].licence,
                   "source": PHOTOS[name].source, "package": PHOTOS[name].package, "file": PHOTOS[name].file}
            for name in (photos or PHOTOS)}


# ----------------------------------------------------------------------------
# Identities: variants of the photos
# ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Identity:
    index: int
    mirror: bool = False
    widen: float = 0.0        # relative change of face width
    lengthen: float = 0.0     # relative change of face height
    hue: float = 0.0          # OpenCV hue units (180 = full turn)
    saturation: float = 1.0
    gamma: float = 1.0
    warmth: float = 0.0       # >0 warmer (more red, less blue)
    texture: float = 0.0      # <0 smoother skin, >0 crisper wrinkles
    backdrop_tint: tuple = (1.0, 1.0, 1.0)
    # the fields below are used from difficulty "medium" on; their defaults are the first generator's
    photo: str = "grace_hopper"
    turn: float = 0.0         # a slight head turn: the inner face shifts sideways (in face units)
    smile: float = 0.0        # mouth corners up and out (<0: down)
    brows: float = 0.0        # eyebrows raised (<0: lowered)
    backdrop: str = "blur"    # blur (the photo's own borders) | gradient | shapes
    face_unit: bool = False   # size faces by max(eye distance, eyes-to-mouth) (profile photos)


def make_identity(index: int, seed: int, photos=None) -> Identity:
    """Identity ``index`` of the pool made from ``seed``.

    ``photos=None`` is the first generator's pool (difficulty "easy"): variants of
    Grace Hopper's photo, index 0 unaltered. With a list of :data:`PHOTOS` names,
    identity ``k`` uses ``photos[k % len(photos)]`` (the first ``len(photos)``
    unaltered but for their backdrop) and adds a head turn, a smile, eyebrows
    and a backdrop of its own.
    """
    if photos is None:
        if index == 0:
            return Identity(0)
        rng = np.random.default_rng([seed, 1, index])
        return Identity(
            index=index,
            mirror=bool(rng.random() < 0.5),
            widen=float(rng.uniform(-0.12, 0.14)),
            lengthen=float(rng.uniform(-0.08, 0.10)),
            hue=float(rng.uniform(-7, 7)),
            saturation=float(rng.uniform(0.65, 1.35)),
            gamma=float(rng.uniform(0.8, 1.25)),
            warmth=float(rng.uniform(-0.12, 0.12)),
            texture=float(rng.uniform(-1, 1)),
            backdrop_tint=tuple(float(v) for v in rng.uniform(0.7, 1.15, size=3)),
        )
    photos = tuple(photos)
    photo = photos[index % len(photos)]
    rng = np.random.default_rng([seed, 1, index, 3])
    backdrop = str(rng.choice(["blur", "gradient", "shapes"]))
    tint = tuple(float(v) for v in rng.uniform(0.7, 1.15, size=3))
    if index < len(photos):
        return Identity(index, photo=photo, backdrop=backdrop, backdrop_tint=tint, face_unit=True)
    return Identity(
        index=index, photo=photo, backdrop=backdrop, backdrop_tint=tint, face_unit=True,
        mirror=bool(rng.random() < 0.5),
        widen=float(rng.uniform(-0.10, 0.12)),
        lengthen=float(rng.uniform(-0.07, 0.09)),
        hue=float(rng.uniform(-5, 5)),
        saturation=float(rng.uniform(0.7, 1.3)),
        gamma=float(rng.uniform(0.82, 1.2)),
        warmth=float(rng.uniform(-0.10, 0.10)),
        texture=float(rng.uniform(-1, 1)),
        turn=float(rng.uniform(-0.12, 0.12)),
        smile=float(rng.uniform(-0.4, 1.0)),
        brows=float(rng.uniform(-0.6, 1.0)),
    )


def _eye_distance(lm: np.ndarray) -> float:
    return float(np.linalg.norm(lm[1] - lm[0]))


def _face_size(lm: np.ndarray, identity: Identity | None = None) -> float:
    """The length faces are measured in: the eye distance, or for ``face_unit`` identities the larger
    of the eye distance and the eyes-to-mouth distance (a face in profile has its eyes close together)."""
    eye = _eye_distance(lm)
    if identity is None or not identity.face_unit:
        return eye
    return max(eye, float(np.linalg.norm((lm[3] + lm[4]) / 2 - (lm[0] + lm[1]) / 2)))


def _face_shape_warp(img: np.ndarray, lm: np.ndarray, widen: float, lengthen: float):
    """Stretch the face around its centre (Gaussian-weighted), returning image and moved landmarks."""
    if abs(widen) < 1e-6 and abs(lengthen) < 1e-6:
        return img, lm
    h, w = img.shape[:2]
    c = lm.mean(axis=0)
    sigma = 1.7 * _eye_distance(lm)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    weight = np.exp(-((xs - c[0]) ** 2 + (ys - c[1]) ** 2) / (2 * sigma ** 2)).astype(np.float32)
    map_x = (c[0] + (xs - c[0]) / (1 + widen * weight)).astype(np.float32)
    map_y = (c[1] + (ys - c[1]) / (1 + lengthen * weight)).astype(np.float32)
    out = cv2.remap(img, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    # forward-map the landmarks: solve p = c + (q - c) * (1 + a * weight(p)) by fixed-point iteration
    moved = lm.copy()
    for _ in range(20):
        wgt = np.exp(-((moved - c) ** 2).sum(axis=1) / (2 * sigma ** 2))
        moved = c + (lm - c) * (1 + np.array([widen, lengthen])[None, :] * wgt[:, None])
    return out, moved


def _recolour(img: np.ndarray, hue: float, saturation: float, gamma: float, warmth: float) -> np.ndarray:
    hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV).astype(np.float32)
    hsv[..., 0] = np.mod(hsv[..., 0] + hue, 180)
    hsv[..., 1] = np.clip(hsv[..., 1] * saturation, 0, 255)
    hsv[..., 2] = 255 * (hsv[..., 2] / 255) ** gamma
    rgb = cv2.cvtColor(np.clip(hsv, 0, 255).astype(np.uint8), cv2.COLOR_HSV2RGB).astype(np.float32)
    rgb *= np.array([1 + warmth, 1.0, 1 - warmth], dtype=np.float32)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def _retexture(img: np.ndarray, amount: float) -> np.ndarray:
    """amount < 0: smooth the skin (bilateral filter); amount > 0: emphasise fine detail."""
    if amount < 0:
        smooth = cv2.bilateralFilter(img, 9, 40, 7)
        return cv2.addWeighted(img, 1 + amount, smooth, -amount, 0)
    blur = cv2.GaussianBlur(img, (0, 0), 2.0)
    return cv2.addWeighted(img, 1 + 0.8 * amount, blur, -0.8 * amount, 0)


def _expression_warp(img: np.ndarray, lm: np.ndarray, turn: float, smile: float, brows: float, unit: float):
    """Head turn, smile and eyebrows as one smooth displacement field; returns image and moved landmarks.

    Each effect moves pixels near a landmark by a Gaussian-weighted offset
    (in ``unit`` = face size): the inner face sideways (turn, the nose most),
    the mouth corners out and up (smile), the band above the eyes up (brows).
    """
    h, w = img.shape[:2]
    eyes_mid = (lm[0] + lm[1]) / 2
    bumps = [((lm.mean(axis=0)), 1.1, (turn, 0.0)), (lm[2], 0.45, (0.6 * turn, 0.0)),
             (lm[3], 0.28, (-0.10 * smile, -0.09 * smile)), (lm[4], 0.28, (0.10 * smile, -0.09 * smile)),
             (eyes_mid - np.array([0.0, 0.42 * unit]), 0.45, (0.0, -0.10 * brows))]
    pad = 1.8 * unit
    x0, y0 = int(max(0, lm[:, 0].min() - 2 * pad)), int(max(0, lm[:, 1].min() - 2 * pad))
    x1, y1 = int(min(w, lm[:, 0].max() + 2 * pad)), int(min(h, lm[:, 1].max() + 2 * pad))
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)

    def displacement(points):
        out = np.zeros_like(points)
        for centre, sigma, (ox, oy) in bumps:
            wgt = np.exp(-((points - centre) ** 2).sum(axis=-1) / (2 * (sigma * unit) ** 2))
            out += wgt[..., None] * np.array([ox, oy]) * unit
        return out

    field_ = displacement(np.stack([xs, ys], axis=-1))
    dx, dy = field_[..., 0], field_[..., 1]
    out = img.copy()
    out[y0:y1, x0:x1] = cv2.remap(img, (xs - dx).astype(np.float32), (ys - dy).astype(np.float32),
                                  cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return out, lm + displacement(lm)


@lru_cache(maxsize=64)
def _identity_photo(identity: Identity) -> tuple[np.ndarray, np.ndarray]:
    """The identity's photo (RGB uint8) and its 5 landmarks."""
    img = _photo_rgb(identity.photo)
    lm = portrait_landmarks(photo=identity.photo).copy()
    if identity.mirror:
        img = np.ascontiguousarray(img[:, ::-1])
        lm[:, 0] = img.shape[1] - 1 - lm[:, 0]
        lm = lm[[1, 0, 2, 4, 3]]
    img, lm = _face_shape_warp(img, lm, identity.widen, identity.lengthen)
    if identity.turn or identity.smile or identity.brows:
        img, lm = _expression_warp(img, lm, identity.turn, identity.smile, identity.brows,
                                   _face_size(lm, identity))
    if identity.index:
        img = _recolour(img, identity.hue, identity.saturation, identity.gamma, identity.warmth)
        img = _retexture(img, identity.texture)
    img.setflags(write=False)
    return img, lm


_PAD = 720  # backdrop margin around the photo, in photo pixels


def _backdrop(identity: Identity, padded: np.ndarray) -> np.ndarray:
    """The backdrop around the photo, float32: its own borders blurred, a gradient, or soft shapes."""
    small = cv2.resize(padded, None, fx=1 / 8, fy=1 / 8, interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), 8).astype(np.float32)
    mean = small.reshape(-1, 3).mean(axis=0)
    if identity.backdrop == "blur":
        small = 0.6 * small + 0.4 * mean  # a calmer, flatter backdrop
    else:
        rng = np.random.default_rng([identity.index, 21, sum(identity.photo.encode())])
        sh, sw = small.shape[:2]
        colours = rng.uniform(0.55, 1.35, size=(2, 3)) * mean
        ramp = np.linspace(0, 1, sw if rng.random() < 0.5 else sh, dtype=np.float32)
        ramp = ramp[None, :, None] if len(ramp) == sw else ramp[:, None, None]
        small = np.broadcast_to(colours[0] * (1 - ramp) + colours[1] * ramp, small.shape).copy()
        if identity.backdrop == "shapes":  # a room: a few soft rectangles and discs
            for _ in range(int(rng.integers(3, 7))):
                colour = tuple(float(v) for v in rng.uniform(0.4, 1.5, 3) * mean)
                cx, cy = int(rng.integers(sw)), int(rng.integers(sh))
                rx, ry = int(rng.integers(sw // 20 + 1, sw // 5 + 2)), int(rng.integers(sh // 20 + 1, sh // 4 + 2))
                if rng.random() < 0.5:
                    cv2.rectangle(small, (cx - rx, cy - ry), (cx + rx, cy + ry), colour, -1)
                else:
                    cv2.ellipse(small, (cx, cy), (rx, ry), 0, 0, 360, colour, -1)
            small = cv2.GaussianBlur(small, (0, 0), 2.5)
    blurred = cv2.resize(small, (padded.shape[1], padded.shape[0]), interpolation=cv2.INTER_LINEAR)
    return np.clip(blurred * np.array(identity.backdrop_tint, np.float32), 0, 255)


@lru_cache(maxsize=32)
def _scene(identity: Identity) -> tuple[np.ndarray, np.ndarray]:
    """The photo on a soft backdrop (see :func:`_backdrop`); landmarks in scene px."""
    img, lm = _identity_photo(identity)
    h, w = img.shape[:2]
    padded = cv2.copyMakeBorder(img, _PAD, _PAD, _PAD, _PAD, cv2.BORDER_REPLICATE)
    blurred = _backdrop(identity, padded)
    mask = np.zeros(padded.shape[:2], np.float32)
    margin = 30
    mask[_PAD + margin:_PAD + h - margin, _PAD + margin:_PAD + w] = 1  # the photo's bottom edge is cut by the frame
    mask = cv2.GaussianBlur(mask, (0, 0), 22)[..., None]
    scene = (mask * padded + (1 - mask) * blurred).astype(np.uint8)
    scene.setflags(write=False)
    return scene, lm + _PAD


def identity_pool(n_identities: int, seed: int, difficulty: str = "easy") -> list[Identity]:
    """The identities a sample of ``difficulty`` draws its clips and donors from."""
    photos = None if difficulty == "easy" else PHOTO_CYCLE
    return [make_identity(k, seed, photos) for k in range(n_identities)]


def identity_preview(n_identities: int = 8, seed: int = DEFAULT_SEED, size: int = 128,
                     difficulty: str = "easy") -> list[np.ndarray]:
    """Face crops (RGB, ``size`` px) of the first ``n_identities`` identities: see how alike they are."""
    crops = []
    for identity in identity_pool(n_identities, seed, difficulty):
        img, lm = _identity_photo(identity)
        centre, half = lm.mean(axis=0), 1.6 * _face_size(lm, identity)
        x0, y0 = int(centre[0] - half), int(centre[1] - 1.1 * half)
        x1, y1 = int(centre[0] + half), int(centre[1] + 0.9 * half)
        crop = img[max(0, y0):y1, max(0, x0):x1]
        crops.append(cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA))
    return crops


# ----------------------------------------------------------------------------
# Clip plans: everything random about a clip, drawn up front from its seed
# ----------------------------------------------------------------------------

@dataclass
class ClipPlan:
    seed: int
    width: int
    height: int
    fps: int
    n_frames: int
    identity: Identity
    has_face: bool = True
    eye_fraction: float = 0.15     # eye distance / min(width, height)
    centre: tuple = (0.5, 0.42)    # where the face centre sits, as a fraction of the frame
    pan: tuple = ()                # (amplitude_x, amplitude_y, freq1, freq2, phase1..4)
    zoom: tuple = ()               # (amplitude, freq, phase)
    roll: tuple = ()               # (degrees, freq, phase)
    talk: tuple = ()               # (amplitude, freq, phase)
    light: tuple = ()              # (gain amp, freq, phase, gradient amp, gradient angle, drift, temperature amp)
    noise_sigma: float = 2.5
    crf: int = 23
    # Nuisances of difficulty "medium" and "hard" (empty: the first generator). Capture, before any
    # manipulation: "exposure" gain, "white_balance" (r, g, b gains), "lens_blur" sigma (px at 640x360).
    # Distribution, after it: "filter" (>0 blur sigma, <0 unsharp-mask amount), "rescale" (down to
    # this fraction of the size and back up; 1 = none). Sensor noise and crf as above, for every clip.
    nuisances: dict = field(default_factory=dict)


@dataclass
class SwapPlan:
    seed: int
    donor: Identity
    donor_kind: str                # "identity" (another identity) or "self-blend" (altered copy of the target)
    strength: float                # 0..1, how visible the artifacts are
    resolution: float              # the face is rendered at this fraction of its size, then upscaled
    colour_match: float            # 1 = donor colours fully matched to the target
    colour_bias: tuple = (0.0, 0.0, 0.0)  # residual offset in Lab units
    feather: float = 0.15          # mask feather, in eye distances
    mask_size: tuple = (1.0, 1.3)  # ellipse half-axes, in eye distances
    jitter: float = 0.01           # frame-to-frame jitter of the pasted face, in eye distances
    donor_blur: float = 0.0        # self-blend: blur (>0) or sharpen (<0) the donor copy
    donor_colour: tuple = (0.0, 1.0, 1.0)  # self-blend: hue shift, saturation, brightness
    align_offset: tuple = (0.0, 0.0, 1.0)  # self-blend: small misalignment (dx, dy in eye distances, scale)
    extra: dict = field(default_factory=dict)
    # From difficulty "medium" on: the method (one of METHODS; "" = the first generator's swap),
    # the difficulty, and how well the pasted face matches the frame's sharpness and noise
    # (1 = exactly; <1 too smooth / too clean, >1 too crisp / too noisy).
    method: str = ""
    difficulty: str = "easy"
    sharpness_match: float = 1.0
    noise_match: float = 1.0
    blend: str = "feather"         # feather | poisson (cv2.seamlessClone)
    mask_shape: str = "ellipse"    # ellipse | hull (a polygon round the landmarks, randomly deformed)
    blend_ratio: float = 1.0       # the pasted face's opacity at the mask's centre
    flicker: float = 0.0           # flicker: per-frame change of mask size, colour and opacity
    talk_offset: float = 0.0       # mouth: the pasted mouth moves out of step (phase shift, radians)


def plan_clip(seed: int, width: int, height: int, seconds: float, fps: int, identity: Identity,
              has_face: bool = True, difficulty: str = "easy") -> ClipPlan:
    """Draw every random choice of one clip from its own seed.

    From difficulty "medium" on, the clip also gets its nuisances (:func:`draw_nuisances`):
    the same for a real clip and every fake made from it.
    """
    rng = np.random.default_rng([seed, 2])
    portrait = height > width
    n_frames = max(2, int(round(seconds * fps)))
    plan = ClipPlan(
        seed=seed, width=width, height=height, fps=fps, n_frames=n_frames, identity=identity,
        has_face=has_face,
        eye_fraction=float(rng.uniform(0.16, 0.22) if portrait else rng.uniform(0.13, 0.19)),
        centre=(float(rng.uniform(0.42, 0.58)), float(rng.uniform(0.38, 0.46) if portrait else rng.uniform(0.42, 0.52))),
        pan=(float(rng.uniform(0.01, 0.05)), float(rng.uniform(0.005, 0.03)),
             float(rng.uniform(0.1, 0.35)), float(rng.uniform(0.35, 0.8)), *rng.uniform(0, 2 * np.pi, 4).tolist()),
        zoom=(float(rng.uniform(0.02, 0.08)), float(rng.uniform(0.08, 0.3)), float(rng.uniform(0, 2 * np.pi))),
        roll=(float(rng.uniform(0.5, 3.0)), float(rng.uniform(0.1, 0.4)), float(rng.uniform(0, 2 * np.pi))),
        talk=(float(rng.uniform(0.04, 0.12)), float(rng.uniform(1.5, 3.5)), float(rng.uniform(0, 2 * np.pi))),
        light=(float(rng.uniform(0.03, 0.10)), float(rng.uniform(0.1, 0.4)), float(rng.uniform(0, 2 * np.pi)),
               float(rng.uniform(0.03, 0.12)), float(rng.uniform(0, 2 * np.pi)), float(rng.uniform(-0.4, 0.4)),
               float(rng.uniform(0.0, 0.04))),
        noise_sigma=float(rng.uniform(1.0, 3.5)),
        crf=int(rng.integers(18, 25)),
    )
    if difficulty != "easy":
        nuisances = draw_nuisances(seed, difficulty)
        plan.noise_sigma, plan.crf = nuisances.pop("noise_sigma"), nuisances.pop("crf")
        plan.nuisances = nuisances
    return plan


# Ranges the nuisances are drawn from, per difficulty (uniform unless said otherwise).
NUISANCE_RANGES = {
    "medium": dict(exposure=(0.8, 1.2), white_balance=(0.9, 1.1), lens_blur=(0.0, 1.2), noise_sigma=(0.8, 3.5),
                   filter=(-0.8, 1.2), rescale=(0.5, 1.0), rescale_share=0.35, crf=(18, 28)),
    "hard": dict(exposure=(0.75, 1.25), white_balance=(0.86, 1.14), lens_blur=(0.0, 1.5), noise_sigma=(0.8, 5.5),
                 filter=(-1.0, 1.4), rescale=(0.4, 1.0), rescale_share=0.5, crf=(20, 34)),
}


def draw_nuisances(seed: int, difficulty: str = "medium") -> dict:
    """The per-clip nuisances (see :class:`ClipPlan`): one draw per *real* clip, shared by its fakes."""
    r = NUISANCE_RANGES[difficulty]
    rng = np.random.default_rng([seed, 12])
    filter_ = float(rng.uniform(*r["filter"]))
    return {
        "exposure": float(rng.uniform(*r["exposure"])),
        "white_balance": tuple(float(v) for v in rng.uniform(*r["white_balance"], size=3)),
        "lens_blur": float(rng.uniform(*r["lens_blur"])) if rng.random() < 0.7 else 0.0,
        "noise_sigma": float(rng.uniform(*r["noise_sigma"])),
        "filter": filter_ if abs(filter_) > 0.25 else 0.0,
        "rescale": float(rng.uniform(*r["rescale"])) if rng.random() < r["rescale_share"] else 1.0,
        "crf": int(rng.integers(r["crf"][0], r["crf"][1] + 1)),
    }


def plan_swap(seed: int, target: Identity, donor_pool: list[Identity], strength: float | None = None,
              method: str | None = None, difficulty: str = "easy") -> SwapPlan:
    """Draw a fake's choices: method, donor, strength of each artifact. ``strength`` in [0, 1] or random.

    Difficulty "easy" is the first generator (``method`` must be None: an identity
    swap or a self-blend, both rendered at reduced resolution); "medium" and
    "hard" use :data:`METHODS` (``method=None``: drawn at random).
    """
    if difficulty != "easy":
        return _plan_fake(seed, target, donor_pool, strength, method, difficulty)
    if method is not None:
        raise ValueError(f"Difficulty \"easy\" has no methods to choose; use difficulty \"medium\" or \"hard\" "
                         f"for method={method!r}.")
    rng = np.random.default_rng([seed, 3])
    s = float(rng.uniform(0.15, 1.0)) if strength is None else float(np.clip(strength, 0, 1))
    others = [d for d in donor_pool if d != target]
    self_blend = (not others) or rng.random() < 0.4
    donor = target if self_blend else others[int(rng.integers(len(others)))]
    direction = rng.normal(size=3)
    direction /= np.linalg.norm(direction) + 1e-9
    return SwapPlan(
        seed=seed, donor=donor, donor_kind="self-blend" if self_blend else "identity", strength=s,
        resolution=float(np.clip(0.76 - 0.4 * s + rng.uniform(-0.04, 0.04), 0.25, 0.85)),
        colour_match=float(1.0 - 0.5 * s),
        colour_bias=tuple(float(v) for v in direction * s * np.array([6.0, 5.0, 5.0])),
        feather=float(0.24 - 0.16 * s + rng.uniform(-0.02, 0.02)),
        mask_size=(float(rng.uniform(0.9, 1.1)), float(rng.uniform(1.2, 1.45))),
        jitter=float(0.004 + 0.018 * s),
        donor_blur=float(rng.uniform(0.6, 1.4) if rng.random() < 0.6 else -rng.uniform(0.3, 0.8)) if self_blend else 0.0,
        donor_colour=(float(rng.uniform(-5, 5)), float(rng.uniform(0.8, 1.25)), float(rng.uniform(0.88, 1.12)))
        if self_blend else (0.0, 1.0, 1.0),
        align_offset=(float(rng.uniform(-0.04, 0.04)), float(rng.uniform(-0.04, 0.04)), float(rng.uniform(0.96, 1.05)))
        if self_blend else (0.0, 0.0, 1.0),
    )


def _plan_fake(seed: int, target: Identity, donor_pool: list[Identity], strength: float | None,
               method: str | None, difficulty: str) -> SwapPlan:
    """The choices of a fake of difficulty "medium" or "hard" (see :data:`METHODS`)."""
    if difficulty not in STRENGTH_RANGES:
        raise ValueError(f"Unknown sample difficulty {difficulty!r}; choose one of {', '.join(DIFFICULTIES)}.")
    rng = np.random.default_rng([seed, 13])
    method = method or str(rng.choice(METHODS))
    if method not in METHODS:
        raise ValueError(f"Unknown manipulation method {method!r}; choose one of {', '.join(METHODS)}.")
    s = float(rng.uniform(*STRENGTH_RANGES[difficulty])) if strength is None else float(np.clip(strength, 0, 1))
    same_pose = [d for d in donor_pool if d != target and PHOTOS[d.photo].pose == PHOTOS[target.photo].pose]
    others = same_pose or [target]  # no other face in the same pose: the target's own photo, re-pasted
    self_blend = method == "self-blend"
    donor = target if self_blend else others[int(rng.integers(len(others)))]
    direction = rng.normal(size=3)
    direction /= np.linalg.norm(direction) + 1e-9
    region = METHOD_REGIONS[method]
    mask_size = {"face": (float(rng.uniform(0.9, 1.1)), float(rng.uniform(1.2, 1.45))),
                 "mouth": (float(rng.uniform(0.55, 0.7)), float(rng.uniform(0.34, 0.44))),
                 "eyes": (float(rng.uniform(0.95, 1.1)), float(rng.uniform(0.32, 0.42)))}[region]
    return SwapPlan(
        seed=seed, donor=donor, donor_kind="self-blend" if self_blend else "identity", strength=s,
        resolution=1.0 if self_blend else float(np.clip(1.0 - s * (0.6 * rng.uniform(0.5, 1.0) if difficulty == "medium"
                                                                 else 0.45 * rng.uniform(0.3, 1.0)), 0.4, 1.0)),
        colour_match=float(1.0 - (0.5 if difficulty == "medium" else 0.3) * s * rng.uniform(0.3, 1.0)),
        colour_bias=tuple(float(v) for v in direction * s * (np.array([18.0, 15.0, 15.0]) if difficulty == "medium"
                                                              else np.array([4.0, 3.0, 3.0]))),
        feather=float(np.clip(0.3 - (0.24 if difficulty == "medium" else 0.2) * s + rng.uniform(-0.03, 0.03),
                              0.04, 0.35)),
        mask_size=mask_size,
        jitter=float((0.004 if method == "flicker" else 0.002) + 0.01 * s),
        donor_blur=float((rng.uniform(0.4, 1.2) if rng.random() < 0.6 else -rng.uniform(0.2, 0.6)) * (0.4 + s))
        if self_blend else 0.0,
        donor_colour=(float(rng.uniform(-4, 4) * (0.4 + s)), float(1 + rng.uniform(-0.15, 0.15) * (0.4 + s)),
                      float(1 + rng.uniform(-0.08, 0.08) * (0.4 + s))) if self_blend else (0.0, 1.0, 1.0),
        align_offset=(float(rng.uniform(-0.03, 0.03) * (0.5 + s)), float(rng.uniform(-0.03, 0.03) * (0.5 + s)),
                      float(1 + rng.uniform(-0.03, 0.04) * (0.5 + s))) if self_blend else (0.0, 0.0, 1.0),
        method=method, difficulty=difficulty,
        sharpness_match=float(np.exp(-s * (0.4 + abs(rng.normal(0, 0.3)))) if difficulty == "medium"
                              else np.exp(rng.normal(0, 0.5 * s))),
        noise_match=float(np.clip(np.exp(-s * (0.5 + abs(rng.normal(0, 0.4)))) if difficulty == "medium"
                                  else np.exp(rng.normal(0, 0.55 * s)), 0.3, 1.8)),
        blend="poisson" if (not self_blend and method != "flicker" and rng.random() < 0.35) else "feather",
        mask_shape="hull" if (region == "face" and rng.random() < 0.5) else "ellipse",
        blend_ratio=float(rng.choice([0.25, 0.5, 0.75, 1, 1, 1])) if self_blend else 1.0,
        flicker=float(0.4 + 0.6 * s) if method == "flicker" else 0.0,
        talk_offset=float(rng.uniform(1.0, 5.0)) if method == "mouth" else 0.0,
    )


# ----------------------------------------------------------------------------
# Rendering
# ----------------------------------------------------------------------------

def _compose(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """2x3 affine ``a`` after ``b``."""
    a3 = np.vstack([a, [0, 0, 1]])
    b3 = np.vstack([b, [0, 0, 1]])
    return (a3 @ b3)[:2]


def _camera(plan: ClipPlan, t: float, scene_lm: np.ndarray) -> np.ndarray:
    """2x3 affine from scene pixels to frame pixels at time ``t``."""
    w, h = plan.width, plan.height
    eye = _face_size(scene_lm, plan.identity)
    base_scale = plan.eye_fraction * min(w, h) / eye
    ax, ay, f1, f2, p1, p2, p3, p4 = plan.pan
    za, zf, zp = plan.zoom
    ra, rf, rp = plan.roll
    tau = 2 * np.pi * t
    zoom = 1 + za * math.sin(zf * tau + zp)
    angle = math.radians(ra * math.sin(rf * tau + rp))
    dx = w * ax * (0.7 * math.sin(f1 * tau + p1) + 0.3 * math.sin(f2 * tau + p2))
    dy = h * ay * (0.7 * math.sin(f1 * tau + p3) + 0.3 * math.sin(f2 * tau + p4))
    if plan.has_face:
        anchor = scene_lm.mean(axis=0)
    else:
        # aim at the backdrop, well to the right of the photo: no face in view
        anchor = np.array([scene_lm[:, 0].max() + 4.2 * eye / zoom + 0.9 * w / base_scale, scene_lm[:, 1].mean()])
    target = np.array([plan.centre[0] * w + dx, plan.centre[1] * h + dy])
    scale = base_scale * zoom
    c, s = math.cos(angle), math.sin(angle)
    lin = scale * np.array([[c, -s], [s, c]])
    m = np.zeros((2, 3))
    m[:, :2] = lin
    m[:, 2] = target - lin @ anchor
    return m


def _ellipse_mask(shape: tuple, centre: np.ndarray, axes: tuple, angle_deg: float, feather_px: float,
                  scale: float = 1.0) -> np.ndarray:
    """Float mask in [0, 1] of a (feathered) ellipse; drawn with sub-pixel precision."""
    h, w = shape
    mask = np.zeros((h, w), np.uint8)
    shift = 4
    cv2.ellipse(mask, (int(round(centre[0] * scale * 16)), int(round(centre[1] * scale * 16))),
                (max(1, int(round(axes[0] * scale * 16))), max(1, int(round(axes[1] * scale * 16)))),
                angle_deg, 0, 360, 255, -1, cv2.LINE_AA, shift)
    mask = mask.astype(np.float32) / 255
    if feather_px * scale > 0.3:
        mask = cv2.GaussianBlur(mask, (0, 0), feather_px * scale)
    return mask


def _colour_transfer(patch: np.ndarray, target: np.ndarray, mask: np.ndarray, amount: float,
                     bias: tuple) -> np.ndarray:
    """Move the patch's Lab mean/std inside ``mask`` towards the target's by ``amount``, then add ``bias``."""
    p = cv2.cvtColor(patch.astype(np.float32) / 255, cv2.COLOR_RGB2Lab)
    t = cv2.cvtColor(target.astype(np.float32) / 255, cv2.COLOR_RGB2Lab)
    m = mask > 0.5
    if m.sum() < 4:
        return patch
    mp, sp = p[m].mean(0), p[m].std(0) + 1e-3
    mt, st = t[m].mean(0), t[m].std(0) + 1e-3
    matched = (p - mp) / sp * st + mt
    out = (1 - amount) * p + amount * matched + np.array(bias, np.float32)
    rgb = cv2.cvtColor(out.astype(np.float32), cv2.COLOR_Lab2RGB)
    return np.clip(rgb * 255, 0, 255).astype(np.uint8)


def _match_colours(patch: np.ndarray, target: np.ndarray, inside: np.ndarray, amount: float,
                   bias) -> np.ndarray:
    """:func:`_colour_transfer` with OpenCV's masked statistics (faster; used from "medium" on)."""
    mask = inside.astype(np.uint8)
    if int(mask.sum()) < 4:
        return patch
    p = cv2.cvtColor(patch.astype(np.float32) * (1 / 255), cv2.COLOR_RGB2Lab)
    t = cv2.cvtColor(target.astype(np.float32) * (1 / 255), cv2.COLOR_RGB2Lab)
    mp, sp = (v.ravel() for v in cv2.meanStdDev(p, mask=mask))
    mt, st = (v.ravel() for v in cv2.meanStdDev(t, mask=mask))
    gain = 1 + amount * ((st + 1e-3) / (sp + 1e-3) - 1)
    offset = amount * (mt - mp * (st + 1e-3) / (sp + 1e-3)) + np.asarray(bias)
    out = cv2.transform(p, np.hstack([np.diag(gain), offset[:, None]]).astype(np.float32))
    rgb = cv2.cvtColor(out, cv2.COLOR_Lab2RGB)
    return cv2.convertScaleAbs(rgb, alpha=255)


@lru_cache(maxsize=32)
def _donor_photo(donor: Identity, blur: float, colour: tuple) -> tuple[np.ndarray, np.ndarray]:
    img, lm = _identity_photo(donor)
    if blur > 0:
        img = cv2.GaussianBlur(img, (0, 0), blur)
    elif blur < 0:
        soft = cv2.GaussianBlur(img, (0, 0), 1.5)
        img = cv2.addWeighted(img, 1 - 2 * blur, soft, 2 * blur, 0)
    if colour != (0.0, 1.0, 1.0):
        img = _recolour(img, colour[0], colour[1], 1.0, 0.0)
        img = np.clip(img.astype(np.float32) * colour[2], 0, 255).astype(np.uint8)
    return img, lm


def _swap_face(frame: np.ndarray, lm: np.ndarray, swap: SwapPlan, rng: np.random.Generator):
    """Paste the donor face onto ``frame`` (in place) over the face with landmarks ``lm`` (difficulty
    "easy"); returns the box ``(x0, y0, x1, y1)`` that was changed, or None."""
    donor_img, donor_lm = _donor_photo(swap.donor, swap.donor_blur, swap.donor_colour)
    eye = _eye_distance(lm)
    h, w = frame.shape[:2]
    # where the donor goes: its landmarks onto the target's, plus the self-blend misalignment and jitter
    target = lm.copy()
    centre = target.mean(axis=0)
    dx, dy, sc = swap.align_offset
    jit = rng.normal(size=4) * swap.jitter
    target = centre + (target - centre) * sc * (1 + jit[2]) + np.array([dx + jit[0], dy + jit[1]]) * eye
    ang = jit[3] * 0.5
    rot = np.array([[math.cos(ang), -math.sin(ang)], [math.sin(ang), math.cos(ang)]])
    target = centre + (target - centre) @ rot.T
    m = similarity_transform(donor_lm, target)
    # the mask: an ellipse over eyes, nose and mouth of the target face
    eyes_mid = (lm[0] + lm[1]) / 2
    mouth_mid = (lm[3] + lm[4]) / 2
    e_centre = (eyes_mid + mouth_mid) / 2 + np.array([0, 0.12 * eye])
    angle = math.degrees(math.atan2(lm[1][1] - lm[0][1], lm[1][0] - lm[0][0]))
    axes = (swap.mask_size[0] * eye, swap.mask_size[1] * eye)
    feather = max(0.5, swap.feather * eye)
    reach = max(axes) + 3 * feather + 2
    x0, y0 = int(max(0, math.floor(e_centre[0] - reach))), int(max(0, math.floor(e_centre[1] - reach)))
    x1, y1 = int(min(w, math.ceil(e_centre[0] + reach))), int(min(h, math.ceil(e_centre[1] + reach)))
    if x1 - x0 < 4 or y1 - y0 < 4:
        return None
    rw, rh = x1 - x0, y1 - y0
    r = swap.resolution
    lw, lh = max(4, int(round(rw * r))), max(4, int(round(rh * r)))
    sx, sy = lw / rw, lh / rh
    to_low = np.array([[sx, 0, -x0 * sx], [0, sy, -y0 * sy]])
    patch = cv2.warpAffine(donor_img, _compose(to_low, m), (lw, lh), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REFLECT)
    roi = frame[y0:y1, x0:x1]
    target_low = cv2.resize(roi, (lw, lh), interpolation=cv2.INTER_AREA)
    stats_mask = _ellipse_mask((lh, lw), e_centre - [x0, y0], axes, angle, 0, scale=(sx + sy) / 2)
    patch = _colour_transfer(patch, target_low, stats_mask, swap.colour_match, swap.colour_bias)
    up = cv2.resize(patch, (rw, rh), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    mask = _ellipse_mask((rh, rw), e_centre - [x0, y0], axes, angle, feather)[..., None]
    frame[y0:y1, x0:x1] = np.clip(mask * up + (1 - mask) * roi.astype(np.float32) + 0.5, 0, 255).astype(np.uint8)
    return (x0, y0, x1, y1)


def _talk(frame: np.ndarray, lm: np.ndarray, amount: float, unit: float | None = None) -> np.ndarray:
    """Open the jaw by ``amount`` eye distances (or ``unit`` px): a local downward warp below the mouth."""
    if amount <= 1e-3:
        return frame
    h, w = frame.shape[:2]
    eye = _eye_distance(lm) if unit is None else unit
    mouth = (lm[3] + lm[4]) / 2
    cx, cy = mouth[0], mouth[1] + 0.45 * eye
    sx, sy = 0.9 * eye, 0.55 * eye
    x0, x1 = int(max(0, cx - 3 * sx)), int(min(w, cx + 3 * sx))
    y0, y1 = int(max(0, mouth[1] - 0.6 * eye)), int(min(h, cy + 3.5 * sy))
    if x1 - x0 < 4 or y1 - y0 < 4:
        return frame
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    bump = np.exp(-((xs - cx) ** 2) / (2 * sx ** 2) - ((ys - cy) ** 2) / (2 * sy ** 2))
    # content moves down: sample from above
    map_y = ys - amount * eye * bump
    out = frame.copy()
    out[y0:y1, x0:x1] = cv2.remap(frame, xs, map_y.astype(np.float32), cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_REPLICATE)
    return out


def _light_and_noise(frame: np.ndarray, plan: ClipPlan, t: float, noise_seed: int) -> np.ndarray:
    """Slow brightness / light-gradient / white-balance drift, then luminance sensor noise."""
    h, w = frame.shape[:2]
    g_amp, g_f, g_p, grad_amp, grad_angle, drift, temp_amp = plan.light
    tau = 2 * np.pi * t
    gain = 1 + g_amp * math.sin(g_f * tau + g_p)
    angle = grad_angle + drift * t
    xs = np.linspace(-0.5, 0.5, w, dtype=np.float32)
    ys = np.linspace(-0.5, 0.5, h, dtype=np.float32)
    ramp = 1 + grad_amp * (math.cos(angle) * xs[None, :] + math.sin(angle) * ys[:, None])
    temp = temp_amp * math.sin(0.5 * g_f * tau + g_p + 1.0)
    gains = cv2.merge([ramp * (gain * (1 + temp)), ramp * gain, ramp * (gain * (1 - temp))])
    out = cv2.multiply(frame, gains, dtype=cv2.CV_32F)
    noise = np.empty((h, w), np.float32)
    cv2.setRNGSeed(int(noise_seed))  # OpenCV's generator: fast, and seeded per frame
    cv2.randn(noise, 0.0, plan.noise_sigma)
    out = cv2.add(out, cv2.merge([noise, noise, noise]))
    return cv2.convertScaleAbs(cv2.max(out, 0.0))  # rounds and saturates to uint8


def render_frames(plan: ClipPlan, swap: SwapPlan | None = None):
    """Yield ``(frame RGB uint8, landmarks 5x2 in frame px or None)`` for every frame of a clip."""
    for frame, lm, _ in _render(plan, swap):
        yield frame, lm



def _filmed_scene(plan: ClipPlan, scene: np.ndarray, scene_lm, t: float):
    """The scene as the moving camera sees it at time ``t``: ``(frame, landmarks)`` (landmarks None without a face)."""
    cam = _camera(plan, t, scene_lm)
    frame = cv2.warpAffine(scene, cam, (plan.width, plan.height), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REPLICATE)
    return frame, (apply_transform(cam, scene_lm) if plan.has_face else None)


def _mouth_opening(plan: ClipPlan, t: float) -> float:
    """How far the mouth is open at time ``t`` (0 = closed): the clip's talking rhythm."""
    amplitude, frequency, phase = plan.talk
    return amplitude * max(0.0, math.sin(frequency * 2 * np.pi * t + phase)) ** 2


def _render(plan: ClipPlan, swap: SwapPlan | None = None):
    """Yield ``(frame, landmarks, changed box or None)``: the box a fake's manipulation touched."""
    if plan.nuisances:
        yield from _render_with_nuisances(plan, swap)
        return
    scene, scene_lm = _scene(plan.identity)
    noise_rng = np.random.default_rng([plan.seed, 5])
    jitter_rng = np.random.default_rng([swap.seed, 6]) if swap is not None else None
    for i in range(plan.n_frames):
        t = i / plan.fps
        frame, lm = _filmed_scene(plan, scene, scene_lm, t)
        box = None
        if lm is not None:
            if swap is not None:
                box = _swap_face(frame, lm, swap, jitter_rng)
            frame = _talk(frame, lm, _mouth_opening(plan, t))
        yield _light_and_noise(frame, plan, t, int(noise_rng.integers(2**31 - 1))), lm, box


# ----------------------------------------------------------------------------
# Rendering from difficulty "medium" on: capture nuisances, a manipulation, distribution nuisances
# ----------------------------------------------------------------------------

def _capture(frame: np.ndarray, plan: ClipPlan, t: float) -> np.ndarray:
    """What the camera adds before anyone edits the video: light drift, exposure, white balance,
    lens blur (sensor noise comes later, see :func:`_render_with_nuisances`)."""
    h, w = frame.shape[:2]
    g_amp, g_f, g_p, grad_amp, grad_angle, drift, temp_amp = plan.light
    n = plan.nuisances
    tau = 2 * np.pi * t
    gain = (1 + g_amp * math.sin(g_f * tau + g_p)) * n["exposure"]
    angle = grad_angle + drift * t
    xs = np.linspace(-0.5, 0.5, w, dtype=np.float32)
    ys = np.linspace(-0.5, 0.5, h, dtype=np.float32)
    ramp = 1 + grad_amp * (math.cos(angle) * xs[None, :] + math.sin(angle) * ys[:, None])
    temp = temp_amp * math.sin(0.5 * g_f * tau + g_p + 1.0)
    wr, wg, wb = n["white_balance"]
    gains = cv2.merge([ramp * (gain * wr * (1 + temp)), ramp * (gain * wg), ramp * (gain * wb * (1 - temp))])
    out = cv2.convertScaleAbs(cv2.multiply(frame, gains, dtype=cv2.CV_32F))
    sigma = n["lens_blur"] * min(w, h) / 360
    return cv2.GaussianBlur(out, (0, 0), sigma) if sigma > 0.2 else out


def _distribute(frame: np.ndarray, plan: ClipPlan) -> np.ndarray:
    """What happens to a video on its way to the viewer: sharpening or blur, down- and up-scaling."""
    n = plan.nuisances
    h, w = frame.shape[:2]
    if n["filter"] > 0:
        frame = cv2.GaussianBlur(frame, (0, 0), n["filter"] * min(w, h) / 360)
    elif n["filter"] < 0:
        soft = cv2.GaussianBlur(frame, (0, 0), 1.2)
        frame = cv2.addWeighted(frame, 1 - n["filter"], soft, n["filter"], 0)
    if n["rescale"] < 0.99:
        small = cv2.resize(frame, (max(16, int(w * n["rescale"])), max(16, int(h * n["rescale"]))),
                           interpolation=cv2.INTER_AREA)
        frame = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    return frame


def _face_frame(lm: np.ndarray, unit: float):
    """Centre of the face, the unit vectors along the eyes (x) and down the face (y), and the roll angle."""
    eyes_mid, mouth_mid = (lm[0] + lm[1]) / 2, (lm[3] + lm[4]) / 2
    ex = (lm[1] - lm[0]) / (_eye_distance(lm) + 1e-9)
    ey = np.array([-ex[1], ex[0]])
    centre = (eyes_mid + mouth_mid) / 2 + 0.12 * unit * ey
    return centre, ex, ey, math.degrees(math.atan2(ex[1], ex[0]))


# corners of the "hull" mask, in face units along (eyes, down) from the face centre
_HULL = np.array([(-0.95, -0.8), (0.0, -0.95), (0.95, -0.8), (1.1, 0.0), (0.85, 0.78), (0.0, 1.2),
                  (-0.85, 0.78), (-1.1, 0.0)])


def _region_mask(shape: tuple, lm: np.ndarray, unit: float, swap: SwapPlan, scale: float, feather: float,
                 offset: np.ndarray) -> np.ndarray:
    """The soft mask (float32 in [0, 1], ``shape``) of the region a fake changes, in ROI pixels."""
    centre, ex, ey, angle = _face_frame(lm, unit)
    centre = centre - offset
    region = METHOD_REGIONS[swap.method]
    if region == "mouth":
        centre = (lm[3] + lm[4]) / 2 - offset + 0.1 * unit * ey
    elif region == "eyes":
        centre = (lm[0] + lm[1]) / 2 - offset - 0.05 * unit * ey
    axes = (swap.mask_size[0] * unit * scale, swap.mask_size[1] * unit * scale)
    if swap.mask_shape != "hull":
        return _ellipse_mask(shape, centre, axes, angle, feather)
    wobble = np.random.default_rng([swap.seed, 14]).normal(0, 0.07, size=_HULL.shape) + 1
    corners = _HULL * wobble * unit * scale * np.array([swap.mask_size[0], swap.mask_size[1] / 1.3])
    points = centre + corners[:, :1] * ex + corners[:, 1:] * ey
    mask = np.zeros(shape, np.uint8)
    cv2.fillConvexPoly(mask, np.round(points * 16).astype(np.int32), 255, cv2.LINE_AA, 4)
    mask = mask.astype(np.float32) / 255
    return cv2.GaussianBlur(mask, (0, 0), feather) if feather > 0.3 else mask


def _high_pass(img: np.ndarray, inside: np.ndarray) -> float:
    grey = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return float((grey - cv2.GaussianBlur(grey, (0, 0), 1.0))[inside].std())


def _match_sharpness(patch: np.ndarray, target: np.ndarray, inside: np.ndarray, factor: float) -> np.ndarray:
    """Blur or sharpen ``patch`` so its fine detail inside the mask is ``factor`` x the target's."""
    if inside.sum() < 16:
        return patch
    want, have = factor * _high_pass(target, inside), _high_pass(patch, inside)
    if have > want:  # too crisp: the blur that brings it closest
        trials = [patch] + [cv2.GaussianBlur(patch, (0, 0), s) for s in (0.5, 0.75, 1.0, 1.35, 1.8, 2.4)]
        return min(trials, key=lambda im: abs(_high_pass(im, inside) - want))
    amount = float(np.clip(want / max(have, 1e-3) - 1, 0, 3))
    soft = cv2.GaussianBlur(patch, (0, 0), 1.0)
    return cv2.addWeighted(patch, 1 + amount, soft, -amount, 0)


def _donor_patch(clean: np.ndarray, lm: np.ndarray, unit: float, swap: SwapPlan, box: tuple, t: float,
                 plan: ClipPlan) -> np.ndarray:
    """The new content of the ROI ``box``: the donor's face aligned on the target's landmarks (or,
    for a self-blend, an altered copy of the frame itself), before colour and sharpness matching."""
    x0, y0, x1, y1 = box
    rw, rh = x1 - x0, y1 - y0
    roi = clean[y0:y1, x0:x1]
    if swap.method == "self-blend":  # Self-Blended Images: the same face, slightly moved and altered
        source = _recolour(roi, swap.donor_colour[0], swap.donor_colour[1], 1.0, 0.0)
        source = np.clip(source.astype(np.float32) * swap.donor_colour[2], 0, 255).astype(np.uint8)
        if swap.donor_blur > 0:
            source = cv2.GaussianBlur(source, (0, 0), swap.donor_blur)
        elif swap.donor_blur < 0:
            soft = cv2.GaussianBlur(source, (0, 0), 1.2)
            source = cv2.addWeighted(source, 1 - 2 * swap.donor_blur, soft, 2 * swap.donor_blur, 0)
        dx, dy, sc = swap.align_offset
        centre = lm.mean(axis=0) - [x0, y0]
        move = np.array([[sc, 0, (1 - sc) * centre[0] + dx * unit], [0, sc, (1 - sc) * centre[1] + dy * unit]])
        return cv2.warpAffine(source, move, (rw, rh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    donor_img, donor_lm = _identity_photo(swap.donor)
    m = similarity_transform(donor_lm, lm)
    r = swap.resolution
    lw, lh = max(4, int(round(rw * r))), max(4, int(round(rh * r)))
    to_low = np.array([[lw / rw, 0, -x0 * lw / rw], [0, lh / rh, -y0 * lh / rh]])
    patch = cv2.warpAffine(donor_img, _compose(to_low, m), (lw, lh), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REFLECT)
    if (lw, lh) != (rw, rh):
        patch = cv2.resize(patch, (rw, rh), interpolation=cv2.INTER_LINEAR)
    ta, tf, tp = plan.talk  # the pasted face talks too (the mouth method: out of step)
    amount = ta * max(0.0, math.sin(tf * 2 * np.pi * t + tp + swap.talk_offset)) ** 2
    return _talk(patch, lm - [x0, y0], amount, unit)


def _manipulate(clean: np.ndarray, lm: np.ndarray, swap: SwapPlan, plan: ClipPlan, t: float,
                rng: np.random.Generator):
    """Apply ``swap.method`` to the clean (noise-free) frame in place.

    Returns ``(mask, roi, changed)``: the soft mask inside the box ``roi``
    ``(x0, y0, x1, y1)``, and the box of the pixels it changed (None if none);
    ``(None, None, None)`` when the face is out of the frame.
    """
    h, w = clean.shape[:2]
    unit = _face_size(lm, plan.identity)
    jit = rng.normal(size=4) * swap.jitter
    moved = lm + np.array([jit[0], jit[1]]) * unit + (lm - lm.mean(axis=0)) * jit[2]
    scale, feather, opacity, bias = 1.0, max(0.5, swap.feather * unit), swap.blend_ratio, np.array(swap.colour_bias)
    if swap.flicker:  # the mask, the colour and the opacity waver from frame to frame
        scale = 1 + swap.flicker * 0.1 * float(rng.normal())
        feather *= 1 + swap.flicker * 0.6 * float(rng.random())
        bias = bias + swap.flicker * rng.normal(0, 2.5, size=3)
        if rng.random() < 0.2 * swap.flicker:
            opacity *= float(rng.uniform(0.45, 0.85))
    reach = 1.5 * unit * max(swap.mask_size) * scale + 3 * feather + 4
    centre = lm.mean(axis=0)
    x0, y0 = int(max(0, math.floor(centre[0] - reach))), int(max(0, math.floor(centre[1] - reach)))
    x1, y1 = int(min(w, math.ceil(centre[0] + reach))), int(min(h, math.ceil(centre[1] + reach)))
    if x1 - x0 < 8 or y1 - y0 < 8:
        return None, None, None
    box, offset = (x0, y0, x1, y1), np.array([x0, y0], float)
    roi = clean[y0:y1, x0:x1]
    mask = _region_mask(roi.shape[:2], moved, unit, swap, scale, feather, offset)
    inside = mask > 0.5
    patch = _donor_patch(clean, moved, unit, swap, box, t, plan)
    if swap.method != "self-blend":
        patch = _match_colours(patch, roi, inside, swap.colour_match, bias)
    patch = _match_sharpness(patch, roi, inside, swap.sharpness_match)
    if swap.blend == "poisson" and inside.any():
        binary = (inside * 255).astype(np.uint8)
        binary[:2], binary[-2:], binary[:, :2], binary[:, -2:] = 0, 0, 0, 0
        bx, by, bw, bh = cv2.boundingRect(binary)
        patch = cv2.seamlessClone(patch, roi, binary, (bx + bw // 2, by + bh // 2), cv2.NORMAL_CLONE)
    soft = (mask * opacity)[..., None]
    clean[y0:y1, x0:x1] = np.clip(soft * patch + (1 - soft) * roi + 0.5, 0, 255).astype(np.uint8)
    ys, xs = np.nonzero(soft[..., 0] > 1 / 512)
    changed = (x0 + int(xs.min()), y0 + int(ys.min()), x0 + int(xs.max()) + 1, y0 + int(ys.max()) + 1) \
        if len(xs) else None
    return mask * opacity, box, changed


def _render_with_nuisances(plan: ClipPlan, swap: SwapPlan | None):
    scene, scene_lm = _scene(plan.identity)
    noise_rng = np.random.default_rng([plan.seed, 5])
    fake_rng = np.random.default_rng([swap.seed, 6]) if swap is not None else None
    for i in range(plan.n_frames):
        t = i / plan.fps
        frame, lm = _filmed_scene(plan, scene, scene_lm, t)
        if lm is not None:
            frame = _talk(frame, lm, _mouth_opening(plan, t), _face_size(lm, plan.identity))
        clean = _capture(frame, plan, t)
        mask, box, changed = None, None, None
        if swap is not None and lm is not None:
            mask, box, changed = _manipulate(clean, lm, swap, plan, t, fake_rng)
        noise = np.empty(clean.shape[:2], np.float32)
        cv2.setRNGSeed(int(noise_rng.integers(2**31 - 1)))
        cv2.randn(noise, 0.0, plan.noise_sigma)
        if mask is not None and swap.noise_match != 1.0:  # the pasted face is too clean or too noisy
            x0, y0, x1, y1 = box
            noise[y0:y1, x0:x1] *= 1 + mask * (swap.noise_match - 1)
        out = cv2.add(clean.astype(np.float32), cv2.merge([noise, noise, noise]))
        out = cv2.convertScaleAbs(cv2.max(out, 0.0))
        yield _distribute(out, plan), lm, changed


def write_video(path: Path, frames, width: int, height: int, fps: int, crf: int = 23) -> int:
    """Encode RGB frames as H.264 (libx264, yuv420p) MP4, the way DFDC's videos are stored.

    Writes to ``<name>.mp4.partial.mp4`` and renames when complete. Returns the number of frames.
    """
    import av

    path = Path(path)
    count = 0
    with safe_io.atomic_path(path, suffix=".partial" + path.suffix) as tmp, \
            av.open(str(tmp), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        # Reproducible output: one encoder thread, and x264's macroblock-tree rate control off
        # (with it on, the same frames encoded twice in one process gave different bitstreams).
        stream.options = {"crf": str(crf), "preset": "veryfast", "threads": "1", "x264-params": "mbtree=0"}
        for frame in frames:
            # convert to YUV 4:2:0 ourselves: FFmpeg's converter may round differently depending on
            # the memory alignment of the input, which would break "same seed -> same frames"
            yuv = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2YUV_I420)
            vf = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
            for packet in stream.encode(vf):
                container.mux(packet)
            count += 1
        for packet in stream.encode():
            container.mux(packet)
    return count


def fake_method(swap: SwapPlan) -> str:
    """The ``method`` a fake records: one of :data:`METHODS` (difficulty "easy": its donor kind)."""
    return swap.method or ("self-blend" if swap.donor_kind == "self-blend" else "identity-swap")


def face_box(lm: np.ndarray, identity: Identity | None = None) -> list[int]:
    """A face box ``[x0, y0, x1, y1]`` (frame px) round the true landmarks, about what MTCNN finds."""
    unit = _face_size(lm, identity)
    return [int(lm[:, 0].min() - 0.55 * unit), int(lm[:, 1].min() - 0.8 * unit),
            int(lm[:, 0].max() + 0.55 * unit), int(lm[:, 1].max() + 0.65 * unit)]


def _render_to_file(path: Path, plan: ClipPlan, swap: SwapPlan | None, keep_landmarks: bool = False) -> dict:
    landmarks, faces, changed = [], [], []

    def frames():
        for frame, lm, box in _render(plan, swap):
            if keep_landmarks:
                landmarks.append(None if lm is None else np.round(lm, 1).tolist())
            faces.append(None if lm is None else face_box(lm, plan.identity))
            changed.append(None if box is None else [int(v) for v in box])
            yield frame

    start, cpu_start = time.perf_counter(), time.process_time()
    n = write_video(path, frames(), plan.width, plan.height, plan.fps, plan.crf)
    info = {"width": plan.width, "height": plan.height, "fps": plan.fps, "n_frames": n,
            "duration_s": round(n / plan.fps, 4), "has_face": plan.has_face, "identity": plan.identity.index,
            "crf": plan.crf, "seconds_to_make": round(time.perf_counter() - start, 3),
            "cpu_seconds_to_make": round(time.process_time() - cpu_start, 3),
            "photo": plan.identity.photo, "noise_sigma": round(plan.noise_sigma, 3),
            "nuisances": {k: (np.round(v, 3).tolist() if isinstance(v, tuple) else round(v, 3))
                          for k, v in plan.nuisances.items()},
            "face_boxes": faces}
    if swap is not None:
        method = fake_method(swap)
        info.update({"donor_identity": swap.donor.index, "donor_kind": swap.donor_kind,
                     "strength": round(swap.strength, 3), "resolution": round(swap.resolution, 3),
                     "method": method, "difficulty": swap.difficulty,
                     "region": METHOD_REGIONS.get(method, "face"), "donor_photo": swap.donor.photo,
                     "region_boxes": changed})
        if swap.method:
            info.update({"blend": swap.blend, "mask_shape": swap.mask_shape,
                         "blend_ratio": swap.blend_ratio, "sharpness_match": round(swap.sharpness_match, 3),
                         "noise_match": round(swap.noise_match, 3), "colour_match": round(swap.colour_match, 3)})
    if keep_landmarks:
        info["landmarks"] = landmarks
    return info


def make_clip(path, width: int = 640, height: int = 360, seconds: float = 2.0, fake: bool = False,
              seed: int = 0, fps: int = 30, strength: float | None = None, has_face: bool = True,
              n_identities: int = 8, return_landmarks: bool = False, difficulty: str = "easy",
              method: str | None = None) -> dict:
    """Write ONE clip of any size (up to 1920x1080 or 1080x1920) to ``path`` and describe it.

    The clip's scene, identity, camera motion, lighting, noise and compression
    all follow from ``seed``; ``fake=True`` renders the *same* clip with a face
    swapped in, so ``make_clip(a, seed=7)`` and ``make_clip(b, fake=True,
    seed=7)`` are an original and its fake. Width and height must be even
    (H.264 in yuv420p); portrait sizes (height > width) are fine.

    Args:
        path: output ``.mp4`` path (written atomically).
        width, height: frame size in pixels, e.g. 1920, 1080 or 1080, 1920.
        seconds: clip length; frames = round(seconds * fps).
        fake: paste a face-swapped donor face into every frame.
        seed: everything random follows from it (same seed -> same decoded frames).
        fps: frames per second (DFDC: 30).
        strength: 0..1 visibility of the fake's artifacts; None = random.
        has_face: False makes a clip of the backdrop only (no face in view).
        n_identities: size of the identity pool the clip's identity and donor are drawn from.
        return_landmarks: add the true 5-point landmarks of every frame (frame px) to the result.
        difficulty: "easy" (the default here: the first generator, one photo) or "medium" / "hard"
            (every photo, the nuisances, the methods of :data:`METHODS`).
        method: with "medium" / "hard", the manipulation (one of :data:`METHODS`); None = drawn.

    Returns:
        dict with width, height, fps, n_frames, duration_s, has_face, identity, crf,
        seconds_to_make, label ("REAL"/"FAKE"), and for fakes donor_identity,
        donor_kind, strength, resolution, method, difficulty, region (which part of the face
        was changed) and region_boxes (per frame, the box of the changed pixels before the
        distribution nuisances); face_boxes per frame; plus landmarks if asked.

    Example (what the face-detection benchmark does)::

        make_clip("hd.mp4", 1920, 1080, seconds=2, fake=False, seed=1)
        make_clip("phone.mp4", 1080, 1920, seconds=2, fake=True, seed=2)
    """
    _check_size(width, height)
    if difficulty not in DIFFICULTIES:
        raise ValueError(f"Unknown sample difficulty {difficulty!r}; choose one of {', '.join(DIFFICULTIES)}.")
    rng = np.random.default_rng([seed, 7])
    pool = identity_pool(n_identities, seed, difficulty)
    identity = pool[int(rng.integers(n_identities))]
    plan = plan_clip(seed, width, height, seconds, fps, identity, has_face=has_face, difficulty=difficulty)
    swap = plan_swap(seed, identity, pool, strength, method=method, difficulty=difficulty) \
        if (fake and has_face) else None
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    info = _render_to_file(path, plan, swap, keep_landmarks=return_landmarks)
    info["label"] = "FAKE" if swap is not None else "REAL"
    return info


# ----------------------------------------------------------------------------
# A whole sample dataset
# ----------------------------------------------------------------------------

def _video_names(count: int, seed: int) -> list[str]:
    """DFDC-like random names (10 lowercase letters), unique, independent of the label."""
    rng = np.random.default_rng([seed, 4])
    names, seen = [], set()
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    while len(names) < count:
        name = "".join(rng.choice(letters, 10)) + ".mp4"
        if name not in seen:
            seen.add(name)
            names.append(name)
    return names


def plan_sample(settings: dict) -> list[dict]:
    """The list of videos a sample will hold (names, labels, originals, plans), without rendering."""
    seed = int(settings["seed"])
    n_real, n_fake, n_noface = int(settings["n_real"]), int(settings["n_fake"]), int(settings["n_noface"])
    if n_real < 1 and n_fake > 0:
        raise ValueError("Fakes need at least one real clip to be made from.")
    rng = np.random.default_rng([seed, 8])
    difficulty = settings.get("difficulty", "easy")
    n_ident = max(1, min(int(settings["n_identities"]), max(1, n_real)))
    pool = identity_pool(n_ident, seed, difficulty)
    names = _video_names(n_real + n_fake + n_noface, seed)
    order = rng.permutation(len(names))  # names are shuffled so they say nothing about the label
    names = [names[i] for i in order]
    seconds = settings["seconds"]
    n_portrait = int(round(n_real * float(settings["portrait_fraction"])))
    portrait_flags = np.zeros(n_real, bool)
    portrait_flags[rng.permutation(n_real)[:n_portrait]] = True
    w, h, fps = int(settings["width"]), int(settings["height"]), int(settings["fps"])

    def clip_seconds(k):
        if isinstance(seconds, (tuple, list)):
            return float(np.random.default_rng([seed, 9, k]).uniform(*seconds))
        return float(seconds)

    videos = []
    for k in range(n_real):
        identity = pool[k % n_ident]
        cw, ch = (h, w) if portrait_flags[k] else (w, h)
        plan = plan_clip(seed * 100003 + k, cw, ch, clip_seconds(k), fps, identity, difficulty=difficulty)
        videos.append({"name": names.pop(), "label": "REAL", "original": None, "plan": plan, "swap": None,
                       "group": f"identity-{identity.index}"})
    reals = list(videos)
    methods = [None] * n_fake
    if difficulty != "easy":
        # every method in equal shares, dealt round-robin over the fakes sorted by identity: one
        # identity's clips share a split, so each split gets about the same share of every method
        by_identity = sorted(range(n_fake), key=lambda j: (reals[j % n_real]["plan"].identity.index, j))
        start = int(np.random.default_rng([seed, 15]).integers(len(METHODS)))
        for rank, j in enumerate(by_identity):
            methods[j] = METHODS[(start + rank) % len(METHODS)]
    for j in range(n_fake):
        original = reals[j % n_real]
        swap = plan_swap(seed * 100003 + 50000 + j, original["plan"].identity, pool, method=methods[j],
                         difficulty=difficulty)
        videos.append({"name": names.pop(), "label": "FAKE", "original": original["name"], "plan": original["plan"],
                       "swap": swap, "group": original["group"], "method": fake_method(swap),
                       "difficulty": difficulty})
    for k in range(n_noface):
        plan = plan_clip(seed * 100003 + 90000 + k, w, h, clip_seconds(10_000 + k), fps, pool[k % n_ident],
                         has_face=False, difficulty=difficulty)
        videos.append({"name": names.pop(), "label": "REAL", "original": None, "plan": plan, "swap": None,
                       "group": f"noface-{k}"})
    return videos


def generate_sample(out_dir, profile: str = "standard", progress: bool = True, **overrides) -> Path:
    """Generate the built-in sample into ``out_dir`` (DFDC layout) and return ``out_dir``.

    ``overrides`` change the profile's settings: ``n_real``, ``n_fake``,
    ``n_noface`` (REAL clips with no face in view), ``width``, ``height`` (the
    landscape size; a ``portrait_fraction`` of the real clips, and their fakes,
    are rotated to height x width), ``seconds`` (a number or a (min, max)
    range), ``fps``, ``n_identities``, ``seed``, ``difficulty`` (:data:`DIFFICULTIES`) and
    ``fractions`` (train, val, test shares, which the split of :func:`helpers.data_sources.prepare_dataset` uses).

    Writes the videos, ``metadata.json`` (``{"name.mp4": {"label", "original"}}``,
    fakes also ``method`` and ``difficulty``; no splits yet:
    :func:`helpers.data_sources.prepare_dataset` assigns them, as for every
    source, with each video's identity ``group``), ``generation.json`` (settings,
    the photos and their licences, per-video details -- identity group,
    nuisances, method, the box of the changed region per frame -- and timings) and
    ``video_info.json`` (size, fps, frames). The folder is built under a
    temporary name and renamed when complete, so an interrupted run leaves no
    half-made dataset behind.
    """
    settings = sample_settings(profile, **overrides)
    out_dir = Path(out_dir)
    work = out_dir.with_name(out_dir.name + ".partial")
    if work.exists():
        import shutil

        shutil.rmtree(work)  # our own half-finished folder from an interrupted run
    work.mkdir(parents=True)
    videos = plan_sample(settings)
    iterator = videos
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(videos, desc=f"Generating the {profile} sample", unit="video")
    details, start, cpu_start = {}, time.perf_counter(), time.process_time()
    for video in iterator:
        details[video["name"]] = _render_to_file(work / video["name"], video["plan"], video["swap"])
        details[video["name"]].update({"label": video["label"], "original": video["original"],
                                       "group": video["group"]})
    total, cpu_total = time.perf_counter() - start, time.process_time() - cpu_start
    entries = {v["name"]: {"label": v["label"], "original": v["original"]} for v in videos}
    for v in videos:
        if v["label"] == "FAKE":
            entries[v["name"]].update(method=v["method"], difficulty=v["difficulty"])
    metadata.write_metadata(work / "metadata.json", entries)
    video_info = {}
    for name, d in details.items():
        video_info[name] = {"width": d["width"], "height": d["height"], "fps": float(d["fps"]),
                            "n_frames": d["n_frames"], "duration_s": d["duration_s"],
                            "size_bytes": (work / name).stat().st_size}
    (work / "video_info.json").write_text(json.dumps(video_info, indent=1, sort_keys=True))
    generation = {
        "generator_version": GENERATOR_VERSION, "profile": profile,
        "settings": {k: (list(v) if isinstance(v, tuple) else v) for k, v in settings.items()},
        "portrait": PORTRAIT_CREDIT, "n_videos": len(videos), "difficulty": settings["difficulty"],
        "photos": photo_credits(sorted({d["photo"] for d in details.values()})),
        "methods": {m: sum(1 for v in videos if v.get("method") == m)
                    for m in sorted({v["method"] for v in videos if v.get("method")})},
        "seconds_total": round(total, 2), "seconds_per_video": round(total / max(1, len(videos)), 3),
        # CPU time of this process: less sensitive than wall time to other programs on a busy machine
        "cpu_seconds_total": round(cpu_total, 2), "cpu_seconds_per_video": round(cpu_total / max(1, len(videos)), 3),
        "videos": details,
    }
    (work / "generation.json").write_text(json.dumps(generation, indent=1, sort_keys=True))
    if out_dir.exists():
        import shutil

        shutil.rmtree(out_dir)
    work.replace(out_dir)
    return out_dir


def read_generation(dataset_dir) -> dict | None:
    """The ``generation.json`` of a generated sample, or None for other datasets."""
    path = Path(dataset_dir) / "generation.json"
    return json.loads(path.read_text()) if path.exists() else None
