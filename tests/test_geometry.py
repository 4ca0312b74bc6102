"""Unit tests for helpers/geometry.py: similarity transforms, the landmark template, alignment."""
from __future__ import annotations

import numpy as np
import pytest

from helpers import geometry


def test_five_landmarks_have_names_and_template_positions():
    assert geometry.LANDMARK_NAMES == ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")
    assert geometry.TEMPLATE_5PTS.shape == (len(geometry.LANDMARK_NAMES), 2)
    left_eye, right_eye = geometry.TEMPLATE_5PTS[:2]
    assert left_eye[0] < right_eye[0], "left means the image's left"


def _rotation(angle):
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s], [s, c]])


def test_similarity_transform_recovers_a_known_transform():
    template = geometry.TEMPLATE_5PTS * 100
    true = np.zeros((2, 3))
    true[:, :2] = 1.7 * _rotation(0.3)
    true[:, 2] = [12.0, -5.0]
    moved = geometry.apply_transform(true, template)
    estimate = geometry.similarity_transform(moved, template)
    np.testing.assert_allclose(geometry.apply_transform(estimate, moved), template, atol=1e-9)
    np.testing.assert_allclose(geometry.apply_transform(geometry.similarity_transform(template, moved), template),
                               moved, atol=1e-9)


def test_similarity_transform_has_no_reflection_and_rejects_bad_points():
    points = geometry.TEMPLATE_5PTS * 50
    mirrored = points * [-1, 1]
    matrix = geometry.similarity_transform(points, mirrored)
    assert np.linalg.det(matrix[:, :2]) > 0
    with pytest.raises(ValueError):
        geometry.similarity_transform(np.full((5, 2), np.nan), points)
    with pytest.raises(ValueError):
        geometry.similarity_transform(np.ones((5, 2)), points)


def test_align_to_template_puts_landmarks_on_the_template():
    import cv2

    size = 112
    crop = np.zeros((160, 160), np.float32)
    # landmarks of a face rotated by 10 degrees, scaled and shifted inside a 160 px crop
    landmarks = geometry.TEMPLATE_5PTS * 120 @ _rotation(np.deg2rad(10)).T + [25, 10]
    for x, y in landmarks:
        cv2.circle(crop, (int(round(x)), int(round(y))), 3, 1.0, -1)
    aligned, valid = geometry.align_to_template(crop, landmarks, size=size)
    assert aligned.shape == (size, size) and valid.shape == (size, size)
    for x, y in geometry.TEMPLATE_5PTS * size:
        assert aligned[int(y), int(x)] > 0.5, "each landmark's dot must land on its template position"
    assert aligned.sum() < 0.1 * size * size
    assert set(np.unique(valid)) <= {0.0, 1.0} and valid.mean() > 0.5


def test_region_masks_are_disjoint_and_cover_the_canvas():
    masks = geometry.region_masks(112)
    stacked = np.stack(list(masks.values())).astype(int)
    assert (stacked.sum(axis=0) == 1).all()
    for x, y in geometry.TEMPLATE_5PTS[:2] * 112:
        assert masks["eyes"][int(y), int(x)]
    assert masks["nose"][int(geometry.TEMPLATE_5PTS[2, 1] * 112), int(geometry.TEMPLATE_5PTS[2, 0] * 112)]
