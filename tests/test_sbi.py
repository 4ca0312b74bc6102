"""Self-Blended Images: the blend stays in its mask, the mask in the face box, the label is FAKE, seeds repeat."""
import cv2
import numpy as np
import pandas as pd
import pytest
import torch

from helpers import crop_manifest, face_detector, sbi

CROP = 96
# Five landmarks of a face centred in a 96 px crop (left eye, right eye, nose, mouth left, mouth right).
LANDMARKS = np.array([[36, 40], [60, 40], [48, 52], [39, 64], [57, 64]], np.float32)
# The face box of a 60 px face cropped with the course's 0.2 margin: 96 * (1 / 1.4) wide, centred.
BOX = (48 - 34.3, 48 - 34.3, 48 + 34.3, 48 + 34.3)


def textured_face(seed=0, size=CROP):
    """A crop with texture everywhere, so any change of a pixel shows."""
    rng = np.random.default_rng(seed)
    base = cv2.resize(rng.integers(40, 215, (12, 12, 3)).astype(np.uint8), (size, size), interpolation=cv2.INTER_CUBIC)
    return np.clip(base.astype(int) + rng.integers(-10, 10, base.shape), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("seed", range(6))
def test_the_blend_changes_only_pixels_inside_the_mask(seed):
    face = textured_face(seed)
    fake = sbi.self_blend(face, LANDMARKS, BOX, seed=seed)
    outside = fake.mask == 0
    assert outside.any() and (~outside).any()
    assert np.array_equal(fake.image[outside], face[outside])
    changed = np.abs(fake.image.astype(int) - face.astype(int)).max(axis=2) > 0
    assert changed.any(), "the pseudo-fake must differ from the real face"
    assert not (changed & outside).any()


@pytest.mark.parametrize("seed", range(6))
def test_the_mask_lies_inside_the_face_box_and_covers_the_landmarks(seed):
    fake = sbi.self_blend(textured_face(seed), LANDMARKS, BOX, seed=seed)
    ys, xs = np.nonzero(fake.mask)
    x1, y1, x2, y2 = BOX
    assert xs.min() >= np.floor(x1) and xs.max() < np.ceil(x2)
    assert ys.min() >= np.floor(y1) and ys.max() < np.ceil(y2)
    assert 0 <= fake.mask.min() and fake.mask.max() <= fake.ratio + 1e-6
    nose = LANDMARKS[2].astype(int)
    assert fake.mask[nose[1], nose[0]] > 0.5 * fake.ratio  # the centre of the face is blended
    assert fake.ratio in sbi.BLEND_RATIOS and fake.label == sbi.FAKE == 1


def test_a_box_smaller_than_the_ellipse_cuts_the_mask():
    small_box = (40, 40, 56, 56)
    fake = sbi.self_blend(textured_face(), LANDMARKS, small_box, seed=3)
    ys, xs = np.nonzero(fake.mask)
    assert xs.min() >= 40 and xs.max() < 56 and ys.min() >= 40 and ys.max() < 56


def test_the_same_seed_gives_the_same_pseudo_fake_and_another_seed_another():
    face = textured_face()
    a, b = sbi.self_blend(face, LANDMARKS, BOX, seed=7), sbi.self_blend(face, LANDMARKS, BOX, seed=7)
    c = sbi.self_blend(face, LANDMARKS, BOX, seed=8)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.mask, b.mask) and a.changes == b.changes
    assert not np.array_equal(a.image, c.image)


def test_face_box_in_crop_inverts_the_crop_geometry():
    frame = np.zeros((240, 320, 3), np.uint8)
    box, points = (100.0, 50.0, 160.0, 130.0), np.array([[120, 80], [140, 80], [130, 95], [122, 110], [138, 110]])
    _, crop_points, (left, top, right, _) = face_detector.crop_face(frame, box, points, CROP, margin=0.2)
    row = dict(zip(["x1", "y1", "x2", "y2"], box))
    x1, y1, x2, y2 = sbi.face_box_in_crop(row, CROP, margin=0.2)
    scale = CROP / (right - left)
    assert x1 == pytest.approx((box[0] - left) * scale, abs=1.0) and y2 == pytest.approx((box[3] - top) * scale, abs=1.0)
    assert (crop_points[:, 0] > x1).all() and (crop_points[:, 0] < x2).all()


def manifest(tmp_path, n_real=3, n_fake=2):
    rows = []
    for k in range(n_real + n_fake):
        path = tmp_path / f"face_{k}.png"
        cv2.imwrite(str(path), cv2.cvtColor(textured_face(k), cv2.COLOR_RGB2BGR))
        target = int(k >= n_real)
        rows.append({"video": f"v{k}.mp4", "frame_index": 0, "crop_path": str(path), "x1": 100.0, "y1": 50.0,
                     "x2": 160.0, "y2": 110.0, "prob": 0.99, "target": target, "label": "FAKE" if target else "REAL",
                     "split": "train", "status": "ok",
                     **dict(zip(crop_manifest.LANDMARK_COLUMNS, LANDMARKS.reshape(-1).tolist()))})
    return pd.DataFrame(rows)


def test_the_dataset_yields_reals_and_their_pseudo_fakes_labelled_fake(tmp_path):
    table = manifest(tmp_path)
    data = sbi.SelfBlendedDataset(table, image_size=64, seed=1)
    assert len(data) == 6  # three reals (the two fakes of the manifest are ignored) and three pseudo-fakes
    labels = [float(data[i][1]) for i in range(len(data))]
    assert labels == [0, 0, 0, 1, 1, 1]
    real, pseudo = data[0][0], data[3][0]
    assert real.shape == pseudo.shape == (3, 64, 64) and 0 <= float(pseudo.min()) and float(pseudo.max()) <= 1
    assert not torch.equal(real, pseudo)


def test_the_dataset_is_seeded_and_draws_new_fakes_each_epoch(tmp_path):
    table = manifest(tmp_path)
    first, second = sbi.SelfBlendedDataset(table, 64, seed=1), sbi.SelfBlendedDataset(table, 64, seed=1)
    epoch1 = first[4][0]
    assert torch.equal(epoch1, second[4][0])  # same seed, same draw
    assert not torch.equal(epoch1, first[4][0])  # the next epoch's pseudo-fake of that face is new
    assert torch.equal(first[1][0], first[1][0])  # reals never change


def test_a_manifest_without_reals_gets_a_clear_message(tmp_path):
    table = manifest(tmp_path, n_real=0, n_fake=2)
    with pytest.raises(ValueError, match="real faces"):
        sbi.SelfBlendedDataset(table, 64)


def test_a_fixed_dataset_and_loaders(tmp_path):
    table = manifest(tmp_path)
    fixed = sbi.SelfBlendedDataset(table, 64, seed=1, fresh_each_epoch=False)
    assert torch.equal(fixed[4][0], fixed[4][0])
    evaluation = sbi.make_sbi_loader(table, 64, batch_size=4, seed=1, train=False)
    labels = torch.cat([y for _, y in evaluation]).tolist()
    assert labels == [0, 0, 0, 1, 1, 1]
    training = sbi.make_sbi_loader(table, 64, batch_size=4, seed=1)
    assert sum(len(y) for _, y in training) == 4  # shuffled, the incomplete last batch dropped
