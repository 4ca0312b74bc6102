"""The built-in sample: talking-head-like clips and face-swap fakes, made locally.

Nothing is downloaded. The only photograph used is the portrait of Grace Hopper
that ships with Matplotlib (``matplotlib/mpl-data/sample_data/grace_hopper.jpg``,
an official U.S. Navy photograph, public domain). No other package installed
for the course ships a usable, cleanly licensed photo of a face, so the
"identities" of the sample are *variants of one person*: mirrored, with the
face shape warped, the skin colour and white balance changed and the skin
smoothed or sharpened (a crude stand-in for age). A detector trained on the
sample can only learn the swap artifacts, never who is who -- that is the point
of the sample, and also its limit.

How a clip is made (all of it seeded, so the same seed gives the same files):

1. *Scene*: the identity's photo is placed on a blurred extension of its own
   borders (a soft "studio" backdrop).
2. *Camera*: every frame is an affine view of that scene: slow pan, zoom and a
   slight roll (sums of low-frequency sines).
3. *Talking*: a local warp below the mouth opens and closes the jaw.
4. *Light and sensor*: brightness and a light gradient drift slowly, the white
   balance breathes, Gaussian sensor noise is added to every frame.
5. *Compression*: H.264 (libx264, yuv420p) like the DFDC videos.

A fake is made from a real clip (its ``original``) the way face-swap tools
work: a donor face -- another identity, or a colour- and sharpness-altered copy
of the same face as in Self-Blended Images -- is aligned to the target's five
facial landmarks (found once per photo with facenet-pytorch's MTCNN and cached),
rendered at a *reduced resolution* and upscaled (a blur/resampling signature),
colour-matched only partly, pasted with a feathered elliptical mask and given a
small frame-to-frame jitter. Every step's strength varies per video.

Public functions:

    generate_sample(out_dir, profile="standard", **overrides)  a whole dataset folder
    make_clip(path, width, height, seconds, fake, seed)         one clip, any size (e.g. 1920x1080)
    sample_settings(profile, **overrides)                       the generation settings of a profile
    portrait_landmarks()                                        the cached MTCNN landmarks of the photo
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

from . import config
from .explain import apply_transform, similarity_transform

# ----------------------------------------------------------------------------
# Settings per profile
# ----------------------------------------------------------------------------

SAMPLE_PROFILES = {
    # a handful of tiny clips: seconds to make, used by every smoke test
    "smoke": dict(n_real=4, n_fake=4, n_noface=1, width=320, height=240, seconds=1.0, fps=30,
                  portrait_fraction=0.25, n_identities=4, difficulty="easy"),
    # enough for a randomly initialised CNN to learn something measurable on a laptop CPU
    "standard": dict(n_real=50, n_fake=50, n_noface=1, width=640, height=360, seconds=(2.0, 3.0), fps=30,
                     portrait_fraction=0.2, n_identities=16, difficulty="easy"),
    # more and larger clips (DFDC's 1920x1080 halved)
    "full": dict(n_real=150, n_fake=150, n_noface=2, width=960, height=540, seconds=(3.0, 4.0), fps=30,
                 portrait_fraction=0.2, n_identities=32, difficulty="easy"),
}
# How hard the fakes are to tell from the reals; "easy" is the first generator's behaviour.
DIFFICULTIES = ("easy",)
DEFAULT_SEED = 42
GENERATOR_VERSION = 2  # bump when the generator's output changes, so cached samples are remade

PORTRAIT_CREDIT = ("Grace Hopper, official U.S. Navy photograph (public domain), "
                   "shipped with Matplotlib as mpl-data/sample_data/grace_hopper.jpg")


def sample_settings(profile: str = "standard", **overrides) -> dict:
    """The generation settings of ``profile`` with ``overrides`` (``None`` = keep the profile's value)."""
    config.check_profile(profile)
    settings = dict(SAMPLE_PROFILES[profile])
    settings["seed"] = DEFAULT_SEED
    for key, value in overrides.items():
        if key not in settings:
            raise ValueError(f"Unknown sample setting {key!r}; known: {', '.join(sorted(settings))}.")
        if value is not None:
            settings[key] = value
    if settings["difficulty"] not in DIFFICULTIES:
        raise ValueError(f"Unknown sample difficulty {settings['difficulty']!r}; choose one of "
                         f"{', '.join(DIFFICULTIES)}.")
    if isinstance(settings["seconds"], list):
        settings["seconds"] = tuple(settings["seconds"])
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

def portrait_path() -> Path:
    """Path of the public-domain portrait shipped with Matplotlib."""
    import matplotlib.cbook

    return Path(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))


@lru_cache(maxsize=1)
def _portrait_rgb() -> np.ndarray:
    bgr = cv2.imread(str(portrait_path()), cv2.IMREAD_COLOR)
    if bgr is None:
        raise FileNotFoundError(f"Cannot read the sample portrait {portrait_path()}; is Matplotlib installed?")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _landmark_cache_path() -> Path:
    return config.data_dir() / "cache" / "portrait_landmarks.json"


def portrait_landmarks(cache_path: Path | None = None) -> np.ndarray:
    """Five MTCNN landmarks of the portrait (left eye, right eye, nose, mouth left, mouth right), 5x2 px.

    MTCNN runs once per photo; the result is cached as JSON in
    ``data/cache/portrait_landmarks.json`` keyed by the photo's SHA-1.
    """
    cache_path = Path(cache_path or _landmark_cache_path())
    digest = hashlib.sha1(portrait_path().read_bytes()).hexdigest()[:16]
    cache = {}
    if cache_path.exists():
        try:
            cache = json.loads(cache_path.read_text())
        except (OSError, ValueError):
            cache = {}
    if digest not in cache:
        from facenet_pytorch import MTCNN  # heavy import, only the first time

        detector = MTCNN(keep_all=True, device="cpu")
        boxes, probs, points = detector.detect(_portrait_rgb(), landmarks=True)
        if boxes is None or len(boxes) == 0:
            raise RuntimeError("MTCNN found no face in the sample portrait.")
        best = int(np.argmax(np.asarray(probs, dtype=np.float32)))
        cache[digest] = {"photo": portrait_path().name,
                         "box": np.asarray(boxes[best], dtype=np.float32).round(2).tolist(),
                         "prob": float(np.asarray(probs, dtype=np.float32)[best]),
                         "landmarks": np.asarray(points[best], dtype=np.float32).round(2).tolist()}
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_path.with_suffix(".json.partial")
        tmp.write_text(json.dumps(cache, indent=2))
        tmp.replace(cache_path)
    return np.asarray(cache[digest]["landmarks"], dtype=np.float64)


# ----------------------------------------------------------------------------
# Identities: variants of the one photo
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


def make_identity(index: int, seed: int) -> Identity:
    """Identity ``index`` of the pool made from ``seed``; index 0 is the unaltered photo."""
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


def _eye_distance(lm: np.ndarray) -> float:
    return float(np.linalg.norm(lm[1] - lm[0]))


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


@lru_cache(maxsize=64)
def _identity_photo(identity: Identity) -> tuple[np.ndarray, np.ndarray]:
    """The identity's photo (RGB uint8) and its 5 landmarks."""
    img = _portrait_rgb()
    lm = portrait_landmarks().copy()
    if identity.mirror:
        img = np.ascontiguousarray(img[:, ::-1])
        lm[:, 0] = img.shape[1] - 1 - lm[:, 0]
        lm = lm[[1, 0, 2, 4, 3]]
    img, lm = _face_shape_warp(img, lm, identity.widen, identity.lengthen)
    if identity.index:
        img = _recolour(img, identity.hue, identity.saturation, identity.gamma, identity.warmth)
        img = _retexture(img, identity.texture)
    img.setflags(write=False)
    return img, lm


_PAD = 720  # backdrop margin around the photo, in photo pixels


@lru_cache(maxsize=16)
def _scene(identity: Identity) -> tuple[np.ndarray, np.ndarray]:
    """The photo on a soft backdrop made by blurring its own replicated borders; landmarks in scene px."""
    img, lm = _identity_photo(identity)
    h, w = img.shape[:2]
    padded = cv2.copyMakeBorder(img, _PAD, _PAD, _PAD, _PAD, cv2.BORDER_REPLICATE)
    small = cv2.resize(padded, None, fx=1 / 8, fy=1 / 8, interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), 8).astype(np.float32)
    small = 0.6 * small + 0.4 * small.reshape(-1, 3).mean(axis=0)  # a calmer, flatter backdrop
    blurred = cv2.resize(small, (padded.shape[1], padded.shape[0]), interpolation=cv2.INTER_LINEAR)
    blurred = np.clip(blurred * np.array(identity.backdrop_tint, np.float32), 0, 255)
    mask = np.zeros(padded.shape[:2], np.float32)
    margin = 30
    mask[_PAD + margin:_PAD + h - margin, _PAD + margin:_PAD + w] = 1  # the photo's bottom edge is cut by the frame
    mask = cv2.GaussianBlur(mask, (0, 0), 22)[..., None]
    scene = (mask * padded + (1 - mask) * blurred).astype(np.uint8)
    scene.setflags(write=False)
    return scene, lm + _PAD


def identity_preview(n_identities: int = 8, seed: int = DEFAULT_SEED, size: int = 128) -> list[np.ndarray]:
    """Face crops (RGB, ``size`` px) of the first ``n_identities`` identities: see how alike they are."""
    crops = []
    for k in range(n_identities):
        img, lm = _identity_photo(make_identity(k, seed))
        centre, half = lm.mean(axis=0), 1.6 * _eye_distance(lm)
        x0, y0 = int(centre[0] - half), int(centre[1] - 1.1 * half)
        x1, y1 = int(centre[0] + half), int(centre[1] + 0.9 * half)
        crops.append(cv2.resize(img[max(0, y0):y1, max(0, x0):x1], (size, size), interpolation=cv2.INTER_AREA))
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


def plan_clip(seed: int, width: int, height: int, seconds: float, fps: int, identity: Identity,
              has_face: bool = True) -> ClipPlan:
    """Draw every random choice of one clip from its own seed."""
    rng = np.random.default_rng([seed, 2])
    portrait = height > width
    n_frames = max(2, int(round(seconds * fps)))
    return ClipPlan(
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


def plan_swap(seed: int, target: Identity, donor_pool: list[Identity], strength: float | None = None) -> SwapPlan:
    """Draw a fake's choices: donor, strength of each artifact. ``strength`` in [0, 1] or random."""
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
    eye = _eye_distance(scene_lm)
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


def _swap_face(frame: np.ndarray, lm: np.ndarray, swap: SwapPlan, rng: np.random.Generator) -> None:
    """Paste the donor face onto ``frame`` (in place) over the face with landmarks ``lm``."""
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
        return
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


def _talk(frame: np.ndarray, lm: np.ndarray, amount: float) -> np.ndarray:
    """Open the jaw by ``amount`` eye distances: a local downward warp below the mouth."""
    if amount <= 1e-3:
        return frame
    h, w = frame.shape[:2]
    eye = _eye_distance(lm)
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
    scene, scene_lm = _scene(plan.identity)
    noise_rng = np.random.default_rng([plan.seed, 5])
    jitter_rng = np.random.default_rng([swap.seed, 6]) if swap is not None else None
    ta, tf, tp = plan.talk
    for i in range(plan.n_frames):
        t = i / plan.fps
        cam = _camera(plan, t, scene_lm)
        frame = cv2.warpAffine(scene, cam, (plan.width, plan.height), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REPLICATE)
        lm = apply_transform(cam, scene_lm) if plan.has_face else None
        if lm is not None:
            if swap is not None:
                _swap_face(frame, lm, swap, jitter_rng)
            frame = _talk(frame, lm, ta * max(0.0, math.sin(tf * 2 * np.pi * t + tp)) ** 2)
        yield _light_and_noise(frame, plan, t, int(noise_rng.integers(2**31 - 1))), lm


def write_video(path: Path, frames, width: int, height: int, fps: int, crf: int = 23) -> int:
    """Encode RGB frames as H.264 (libx264, yuv420p) MP4, the way DFDC's videos are stored.

    Writes to ``<name>.partial.mp4`` and renames when complete. Returns the number of frames.
    """
    import av

    path = Path(path)
    tmp = path.with_name(path.stem + ".partial" + path.suffix)
    count = 0
    with av.open(str(tmp), mode="w", format="mp4") as container:
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
    tmp.replace(path)
    return count


def _render_to_file(path: Path, plan: ClipPlan, swap: SwapPlan | None, keep_landmarks: bool = False) -> dict:
    landmarks = []

    def frames():
        for frame, lm in render_frames(plan, swap):
            if keep_landmarks:
                landmarks.append(None if lm is None else np.round(lm, 1).tolist())
            yield frame

    start, cpu_start = time.perf_counter(), time.process_time()
    n = write_video(path, frames(), plan.width, plan.height, plan.fps, plan.crf)
    info = {"width": plan.width, "height": plan.height, "fps": plan.fps, "n_frames": n,
            "duration_s": round(n / plan.fps, 4), "has_face": plan.has_face, "identity": plan.identity.index,
            "crf": plan.crf, "seconds_to_make": round(time.perf_counter() - start, 3),
            "cpu_seconds_to_make": round(time.process_time() - cpu_start, 3)}
    if swap is not None:
        info.update({"donor_identity": swap.donor.index, "donor_kind": swap.donor_kind,
                     "strength": round(swap.strength, 3), "resolution": round(swap.resolution, 3)})
    if keep_landmarks:
        info["landmarks"] = landmarks
    return info


def make_clip(path, width: int = 640, height: int = 360, seconds: float = 2.0, fake: bool = False,
              seed: int = 0, fps: int = 30, strength: float | None = None, has_face: bool = True,
              n_identities: int = 8, return_landmarks: bool = False) -> dict:
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

    Returns:
        dict with width, height, fps, n_frames, duration_s, has_face, identity, crf,
        seconds_to_make, label ("REAL"/"FAKE"), and for fakes donor_identity,
        donor_kind, strength, resolution; plus landmarks if asked.

    Example (what the face-detection benchmark does)::

        make_clip("hd.mp4", 1920, 1080, seconds=2, fake=False, seed=1)
        make_clip("phone.mp4", 1080, 1920, seconds=2, fake=True, seed=2)
    """
    _check_size(width, height)
    rng = np.random.default_rng([seed, 7])
    pool = [make_identity(k, seed) for k in range(n_identities)]
    identity = pool[int(rng.integers(n_identities))]
    plan = plan_clip(seed, width, height, seconds, fps, identity, has_face=has_face)
    swap = plan_swap(seed, identity, pool, strength) if (fake and has_face) else None
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
    n_ident = max(1, min(int(settings["n_identities"]), max(1, n_real)))
    pool = [make_identity(k, seed) for k in range(n_ident)]
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
        plan = plan_clip(seed * 100003 + k, cw, ch, clip_seconds(k), fps, identity)
        videos.append({"name": names.pop(), "label": "REAL", "original": None, "plan": plan, "swap": None,
                       "group": f"identity-{identity.index}"})
    reals = list(videos)
    for j in range(n_fake):
        original = reals[j % n_real]
        swap = plan_swap(seed * 100003 + 50000 + j, original["plan"].identity, pool)
        videos.append({"name": names.pop(), "label": "FAKE", "original": original["name"], "plan": original["plan"],
                       "swap": swap, "group": original["group"]})
    for k in range(n_noface):
        plan = plan_clip(seed * 100003 + 90000 + k, w, h, clip_seconds(10_000 + k), fps, pool[k % n_ident],
                         has_face=False)
        videos.append({"name": names.pop(), "label": "REAL", "original": None, "plan": plan, "swap": None,
                       "group": f"noface-{k}"})
    return videos


def generate_sample(out_dir, profile: str = "standard", progress: bool = True, **overrides) -> Path:
    """Generate the built-in sample into ``out_dir`` (DFDC layout) and return ``out_dir``.

    ``overrides`` change the profile's settings: ``n_real``, ``n_fake``,
    ``n_noface`` (REAL clips with no face in view), ``width``, ``height`` (the
    landscape size; a ``portrait_fraction`` of the real clips, and their fakes,
    are rotated to height x width), ``seconds`` (a number or a (min, max)
    range), ``fps``, ``n_identities``, ``seed``.

    Writes the videos, ``metadata.json`` (``{"name.mp4": {"label", "split",
    "original"}}``; splits from :func:`helpers.data_sources.assign_splits`,
    one identity's clips and every fake with its original in the same split),
    ``generation.json`` (settings, per-video details and timings) and
    ``video_info.json`` (size, fps, frames). The folder is built under a
    temporary name and renamed when complete, so an interrupted run leaves no
    half-made dataset behind.
    """
    from .data_sources import assign_splits, write_metadata  # the data layer owns the metadata format

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
    splits = assign_splits(entries, seed=settings["seed"], groups={v["name"]: v["group"] for v in videos})
    for name in entries:
        entries[name]["split"] = splits[name]
    write_metadata(work / "metadata.json", entries)
    video_info = {}
    for name, d in details.items():
        video_info[name] = {"width": d["width"], "height": d["height"], "fps": float(d["fps"]),
                            "n_frames": d["n_frames"], "duration_s": d["duration_s"],
                            "size_bytes": (work / name).stat().st_size}
    (work / "video_info.json").write_text(json.dumps(video_info, indent=1, sort_keys=True))
    generation = {
        "generator_version": GENERATOR_VERSION, "profile": profile,
        "settings": {k: (list(v) if isinstance(v, tuple) else v) for k, v in settings.items()},
        "portrait": PORTRAIT_CREDIT, "n_videos": len(videos),
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
