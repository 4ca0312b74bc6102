"""Plain geometry of faces: the five landmarks, the alignment template and similarity transforms.

Three stages need it, so it lives below all of them:

* the built-in sample (:mod:`helpers.sample_data`) pastes a donor face onto a
  scene with :func:`similarity_transform` and moves landmarks with
  :func:`apply_transform`;
* face detection (:mod:`helpers.face_detector`) and the crop manifest
  (:mod:`helpers.crop_manifest`) name MTCNN's five landmarks (:data:`LANDMARK_NAMES`);
* explanation (:mod:`helpers.explain`) warps each Grad-CAM map onto one
  canonical face with :func:`align_to_template` and measures the eyes, nose
  and mouth with :func:`region_masks`.

Nothing here imports a model, a data source or a detector: only NumPy (and
OpenCV for the warp).
"""
from __future__ import annotations

import numpy as np

#: Canonical positions of MTCNN's five landmarks (left eye, right eye, nose,
#: mouth left, mouth right) as fractions of a square face, "left" meaning the
#: image's left. These are the widely used ArcFace 112x112 template / 112.
TEMPLATE_5PTS = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                          [41.5493, 92.3655], [70.7299, 92.2041]], dtype=np.float64) / 112.0
LANDMARK_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")


def similarity_transform(source, target) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation; no reflection).

    Returns the 2x3 matrix ``M`` with ``target ~= source @ M[:, :2].T + M[:, 2]``
    (Umeyama's closed form). ``source`` and ``target`` are (K, 2), K >= 2.
    """
    src = np.asarray(source, dtype=np.float64)
    dst = np.asarray(target, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or len(src) < 2:
        raise ValueError("similarity_transform needs two (K, 2) point sets, K >= 2, of the same shape.")
    if not (np.isfinite(src).all() and np.isfinite(dst).all()):
        raise ValueError("Landmarks contain NaN/inf (no face found?).")
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    src_var = (src_c ** 2).sum() / len(src)
    if src_var < 1e-12:
        raise ValueError("The source landmarks all coincide; no transform is defined.")
    covariance = dst_c.T @ src_c / len(src)
    u, singular, vt = np.linalg.svd(covariance)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[-1] = -1.0
    rotation = u @ np.diag(d) @ vt
    scale = (singular * d).sum() / src_var
    matrix = np.zeros((2, 3))
    matrix[:, :2] = scale * rotation
    matrix[:, 2] = dst_mean - matrix[:, :2] @ src_mean
    return matrix


def apply_transform(matrix, points) -> np.ndarray:
    """Map (K, 2) points with a 2x3 affine matrix."""
    points = np.asarray(points, dtype=np.float64)
    return points @ np.asarray(matrix)[:, :2].T + np.asarray(matrix)[:, 2]


def align_to_template(image, landmarks, size: int = 112, template=None):
    """Warp a face (or a Grad-CAM map) so its 5 landmarks land on the template.

    ``image``: (H, W) or (H, W, C); ``landmarks``: (5, 2) in that image's
    pixels. Returns ``(aligned, valid)``: the warped image (size x size) and a
    float mask that is 1 where the output came from inside the input image.
    """
    import cv2

    template = TEMPLATE_5PTS if template is None else np.asarray(template, dtype=np.float64)
    matrix = similarity_transform(np.asarray(landmarks, dtype=np.float64).reshape(-1, 2), template * size)
    array = np.asarray(image)
    source = array.astype(np.float32) if array.dtype != np.uint8 else array
    aligned = cv2.warpAffine(source, matrix, (size, size), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    ones = np.ones(array.shape[:2], np.float32)
    valid = cv2.warpAffine(ones, matrix, (size, size), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return aligned, (valid > 0.5).astype(np.float32)


def region_masks(size: int = 112, template=None) -> dict[str, np.ndarray]:
    """Boolean masks (size x size) of the eyes, nose and mouth around the template landmarks.

    Eyes: two discs of radius 0.35 x the inter-ocular distance; nose: a disc of
    0.3 x; mouth: an ellipse around the mouth corners (half-width = half the
    corner distance + 0.2 x, half-height 0.25 x). Regions do not overlap (eyes
    first, then mouth, then nose); "other" is the rest of the canvas.
    """
    pts = (TEMPLATE_5PTS if template is None else np.asarray(template)) * size
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    iod = np.linalg.norm(pts[1] - pts[0])

    def disc(center, radius):
        return (xx - center[0]) ** 2 + (yy - center[1]) ** 2 <= radius ** 2

    eyes = disc(pts[0], 0.35 * iod) | disc(pts[1], 0.35 * iod)
    mouth_center = (pts[3] + pts[4]) / 2
    half_width = np.linalg.norm(pts[4] - pts[3]) / 2 + 0.2 * iod
    mouth = ((xx - mouth_center[0]) / half_width) ** 2 + ((yy - mouth_center[1]) / (0.25 * iod)) ** 2 <= 1
    mouth &= ~eyes
    nose = disc(pts[2], 0.3 * iod) & ~eyes & ~mouth
    other = ~(eyes | mouth | nose)
    return {"eyes": eyes, "nose": nose, "mouth": mouth, "other": other}
