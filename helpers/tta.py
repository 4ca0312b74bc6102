"""Test-time augmentation (TTA) and the degradations that measure robustness (notebook 06).

* :func:`tta_probs` - P(FAKE) averaged over transformed copies of each face
  (flip, small shifts, brightness, JPEG re-encoding: :data:`TTA_TRANSFORMS`,
  :data:`DEFAULT_TTA`);
* :func:`degrade` (:data:`DEGRADATIONS`: JPEG, downscaling, blur) - what
  social-media re-encoding does to a face, to see how the scores hold up;
  ``evaluation.metric_change_ci`` gives the change either brings, with a
  paired bootstrap 95 % interval.

Faces are batches (N, 3, H, W) in [0, 1]; nothing here knows where they come from.
"""
from __future__ import annotations

from typing import Callable, Iterable

import numpy as np

from .explain import restore_modes, save_modes


def _to_uint8_hwc(faces) -> np.ndarray:
    array = faces.detach().cpu().numpy() if hasattr(faces, "detach") else np.asarray(faces)
    return (np.clip(np.transpose(array, (0, 2, 3, 1)), 0, 1) * 255).round().astype(np.uint8)


def _from_uint8_hwc(images: np.ndarray, like):
    import torch

    tensor = torch.from_numpy(np.transpose(images.astype(np.float32) / 255.0, (0, 3, 1, 2)).copy())
    return tensor.to(device=like.device, dtype=like.dtype)


def jpeg(faces, quality: int = 75):
    """Re-encode each face as JPEG at ``quality`` (1-100) and decode it again."""
    import cv2

    if not 1 <= int(quality) <= 100:
        raise ValueError("JPEG quality must be in 1..100.")
    images = _to_uint8_hwc(faces)
    out = np.empty_like(images)
    for i, image in enumerate(images):
        ok, encoded = cv2.imencode(".jpg", image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
        if not ok:
            raise RuntimeError("OpenCV could not encode a JPEG.")
        out[i] = cv2.imdecode(encoded, cv2.IMREAD_COLOR)[..., ::-1]
    return _from_uint8_hwc(out, faces)


def downscale(faces, factor: float = 0.5):
    """Shrink each face by ``factor`` (area averaging) and scale it back up (bilinear)."""
    import torch.nn.functional as F

    if not 0 < factor <= 1:
        raise ValueError("The down-scaling factor must be in (0, 1].")
    if factor == 1:
        return faces.clone()
    height, width = faces.shape[-2:]
    small = F.interpolate(faces, size=(max(1, round(height * factor)), max(1, round(width * factor))),
                          mode="area")
    return F.interpolate(small, size=(height, width), mode="bilinear", align_corners=False).clamp(0, 1)


def blur(faces, sigma: float = 1.0):
    """Gaussian blur with standard deviation ``sigma`` pixels (0 = unchanged)."""
    import cv2

    if sigma < 0:
        raise ValueError("sigma must be >= 0.")
    if sigma == 0:
        return faces.clone()
    images = _to_uint8_hwc(faces)
    out = np.stack([cv2.GaussianBlur(image, (0, 0), sigmaX=float(sigma)) for image in images])
    return _from_uint8_hwc(out, faces)


def shift(faces, dx: float = 0.04, dy: float = 0.04):
    """Translate by a fraction of the face size; the uncovered border repeats the edge pixels."""
    import torch.nn.functional as F

    height, width = faces.shape[-2:]
    px, py = int(round(dx * width)), int(round(dy * height))
    padded = F.pad(faces, (abs(px), abs(px), abs(py), abs(py)), mode="replicate")
    top, left = abs(py) - py, abs(px) - px
    return padded[..., top:top + height, left:left + width]


def zoom(faces, keep: float = 0.9):
    """Central crop keeping ``keep`` of each side, resized back to the original size."""
    import torch.nn.functional as F

    height, width = faces.shape[-2:]
    h, w = max(1, round(height * keep)), max(1, round(width * keep))
    top, left = (height - h) // 2, (width - w) // 2
    crop = faces[..., top:top + h, left:left + w]
    return F.interpolate(crop, size=(height, width), mode="bilinear", align_corners=False).clamp(0, 1)


def brightness(faces, factor: float = 1.1):
    """Multiply intensities by ``factor`` and clip to [0, 1]."""
    return (faces * factor).clamp(0, 1)


#: The named test-time transforms; each maps a batch (N, 3, H, W) in [0, 1] to another.
TTA_TRANSFORMS: dict[str, Callable] = {
    "identity": lambda x: x,
    "hflip": lambda x: x.flip(-1),
    "shift_down_right": lambda x: shift(x, 0.04, 0.04),
    "shift_up_left": lambda x: shift(x, -0.04, -0.04),
    "zoom_in": lambda x: zoom(x, 0.9),
    "brighter": lambda x: brightness(x, 1.1),
    "darker": lambda x: brightness(x, 0.9),
    "jpeg_q75": lambda x: jpeg(x, 75),
}
#: What notebook 06 averages over by default (the original face always included).
DEFAULT_TTA = ("identity", "hflip", "shift_down_right", "shift_up_left", "brighter", "jpeg_q75")

#: Degradations for the robustness study: kind -> (function, levels, the clean level).
DEGRADATIONS = {
    "jpeg_quality": (jpeg, (95, 75, 50, 30, 10), None),
    "downscale": (downscale, (0.75, 0.5, 0.33, 0.25), 1.0),
    "blur_sigma": (blur, (0.5, 1.0, 2.0, 3.0), 0.0),
}


def degrade(faces, kind: str, level):
    """Apply one robustness degradation (``jpeg_quality``, ``downscale`` or ``blur_sigma``)."""
    if kind not in DEGRADATIONS:
        raise ValueError(f"Unknown degradation {kind!r}; choose from {sorted(DEGRADATIONS)}.")
    return DEGRADATIONS[kind][0](faces, level)


def _resolve_transforms(transforms) -> list[tuple[str, Callable]]:
    if transforms is None:
        transforms = DEFAULT_TTA
    if isinstance(transforms, str) or callable(transforms):
        transforms = [transforms]
    resolved = []
    for item in transforms:
        if isinstance(item, str):
            if item not in TTA_TRANSFORMS:
                raise ValueError(f"Unknown TTA transform {item!r}; known: {', '.join(TTA_TRANSFORMS)}.")
            resolved.append((item, TTA_TRANSFORMS[item]))
        elif callable(item):
            resolved.append((getattr(item, "__name__", "custom"), item))
        else:
            raise TypeError(f"A TTA transform must be a name or a callable, got {item!r}.")
    if not resolved:
        raise ValueError("TTA needs at least one transform (use ['identity'] for a plain prediction).")
    return resolved


def _batches(faces, batch_size: int) -> Iterable:
    """Yield float tensors (B, 3, H, W) from a tensor, an array or a DataLoader of (x, y)."""
    import torch

    if isinstance(faces, (torch.Tensor, np.ndarray)):
        tensor = torch.as_tensor(faces, dtype=torch.float32)
        if tensor.ndim == 3:
            tensor = tensor.unsqueeze(0)
        for start in range(0, len(tensor), batch_size):
            yield tensor[start:start + batch_size]
    else:
        for batch in faces:
            yield batch[0] if isinstance(batch, (list, tuple)) else batch


def tta_probs(model, faces, device="cpu", transforms=None, batch_size: int = 32,
              return_all: bool = False):
    """P(FAKE) per face, averaged over test-time transforms.

    ``faces``: a tensor / array (N, 3, H, W) in [0, 1], or a DataLoader yielding
    ``(faces, targets)`` (e.g. over ``FaceCropDataset``). ``transforms``: names
    from :data:`TTA_TRANSFORMS` and/or callables on a batch; default
    :data:`DEFAULT_TTA`. Probabilities (not logits) are averaged. With
    ``transforms=["identity"]`` this is the plain prediction. With
    ``return_all=True`` also returns the (T, N) per-transform probabilities.
    """
    import torch

    resolved = _resolve_transforms(transforms)
    modes = save_modes(model)
    model.eval()
    per_transform: list[list[np.ndarray]] = [[] for _ in resolved]
    try:
        with torch.no_grad():
            for batch in _batches(faces, batch_size):
                batch = batch.to(device=device, dtype=torch.float32)
                for k, (_, transform) in enumerate(resolved):
                    logits = model(transform(batch)).reshape(len(batch), -1)[:, 0]
                    per_transform[k].append(torch.sigmoid(logits.float()).cpu().numpy())
    finally:
        restore_modes(modes)
    all_probs = np.stack([np.concatenate(p) if p else np.zeros(0, np.float32) for p in per_transform])
    mean = all_probs.mean(axis=0)
    return (mean, all_probs) if return_all else mean
