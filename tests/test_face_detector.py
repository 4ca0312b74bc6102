"""MTCNN on one picture and on frames: the fast cascade, the second looks, crops, tracking, RGB input."""
import numpy as np
import pytest

from helpers import face_detector
from helpers.face_detector import Face, FaceDetector, crop_face, track_faces


@pytest.fixture(scope="module")
def portrait():
    """Grace Hopper (public domain, ships with Matplotlib): 512 x 600, one face of about 181 x 221 px."""
    import matplotlib.cbook
    from PIL import Image

    with Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)) as image:
        return np.asarray(image.convert("RGB"))


@pytest.fixture(scope="module")
def detector():
    return FaceDetector(device="cpu", crop_size=96)


def iou(a, b) -> float:
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    area = lambda r: (r[2] - r[0]) * (r[3] - r[1])  # noqa: E731
    return inter / (area(a) + area(b) - inter)


# -- one picture -------------------------------------------------------------------------------

def test_finds_the_face_in_one_picture(detector, portrait):
    found = detector.detect(portrait)  # a single image -> its list of faces
    assert len(found) >= 1
    face = found[0]
    assert face.prob > 0.95
    x1, y1, x2, y2 = face.box
    assert 150 < x2 - x1 < 220 and 180 < y2 - y1 < 260
    assert face.crop.shape == (96, 96, 3) and face.crop.dtype == np.uint8
    left_eye, right_eye, nose, mouth_left, mouth_right = face.landmarks
    assert left_eye[0] < right_eye[0] and mouth_left[0] < mouth_right[0]
    assert max(left_eye[1], right_eye[1]) < nose[1] < min(mouth_left[1], mouth_right[1])
    assert np.all((face.landmarks > 0) & (face.landmarks < 96))  # in crop pixels


def test_fast_cascade_agrees_with_facenet_pytorch(portrait):
    fast = FaceDetector(device="cpu", detect_size=None).detect(portrait)
    reference = FaceDetector(device="cpu", detect_size=None, engine="facenet").detect(portrait)
    assert len(fast) == len(reference) >= 1
    assert iou(fast[0].box, reference[0].box) > 0.9
    assert abs(fast[0].prob - reference[0].prob) < 0.05
    assert np.abs(fast[0].landmarks_frame - reference[0].landmarks_frame).max() < 6


def test_gpu_code_path_finds_the_same_face(portrait):
    """On a GPU the pyramid and the candidate crops use torch ops (interpolate, roi_align) instead of
    OpenCV; run that path on the CPU here so it is tested on machines without a GPU."""
    opencv = FaceDetector(device="cpu", detect_size=None).detect(portrait)
    torch_ops = FaceDetector(device="cpu", detect_size=None)
    torch_ops.opencv_resize = False
    found = torch_ops.detect(portrait)
    assert len(found) == len(opencv) >= 1
    assert iou(found[0].box, opencv[0].box) > 0.9 and found[0].prob > 0.95


def test_detects_on_a_small_copy_and_crops_from_the_full_frame(portrait):
    import cv2

    big = cv2.resize(portrait, (512 * 3, 600 * 3), interpolation=cv2.INTER_CUBIC)
    small_first = FaceDetector(device="cpu", detect_size=480).detect(big)[0]
    reference = FaceDetector(device="cpu", detect_size=None).detect(portrait)[0]
    assert iou(small_first.box, [3 * v for v in reference.box]) > 0.8
    assert small_first.crop.shape == (160, 160, 3)


def test_batch_of_mixed_sizes_and_a_frame_without_face(detector, portrait):
    import cv2

    half = cv2.resize(portrait, (256, 300), interpolation=cv2.INTER_AREA)
    blank = np.full((240, 320, 3), 127, np.uint8)
    result = detector.detect([portrait, blank, half, portrait])
    assert [len(r) >= 1 for r in result] == [True, False, True, True]
    assert result[0][0].box == pytest.approx(result[3][0].box)
    from PIL import Image

    assert len(detector.detect(Image.fromarray(portrait))) >= 1  # PIL images work too


def test_cascade_stages_narrow_down_the_candidates(detector, portrait):
    stages = detector.stages(portrait)
    counts = [len(stages[k]) for k in ("P-Net", "R-Net", "O-Net")]
    assert counts[0] > counts[1] >= counts[2] >= 1


def test_pyramid_scales_cover_min_face_to_whole_image():
    scales = face_detector.pyramid_scales(360, 640, min_face_size=20)
    assert scales[0] == pytest.approx(0.6)
    assert 360 * scales[-1] >= 12 > 360 * scales[-1] * 0.709


def test_crop_at_the_border_is_padded_black():
    frame = np.full((100, 200, 3), 200, np.uint8)
    crop, points, crop_box = crop_face(frame, (0, 0, 40, 50), [[10, 10]] * 5, crop_size=64, margin=0.5)
    assert crop.shape == (64, 64, 3)
    assert crop_box[0] < 0 and crop_box[1] < 0 and crop_box[2] - crop_box[0] == 100
    assert crop[:5, :5].max() == 0 and crop[-5:, -5:].min() == 200
    # the landmark (10, 10) is 10 - crop_box[0] px from the crop's corner, scaled by 64 / 100
    assert points[0] == pytest.approx([(10 - crop_box[0]) * 0.64, (10 - crop_box[1]) * 0.64])


# -- second looks: faces the small copy misses -------------------------------------------------

def small_face_frame(portrait, face_px=32, width=1920, height=1080, centre=(0.3, 0.4), seed=0, noise=12.0):
    """A 1080p frame of sensor-like noise with the portrait's face shrunk to about ``face_px`` px:
    on the 640 px copy the face is about 11 px, below what MTCNN can see there."""
    import cv2

    rng = np.random.default_rng(seed)
    frame = np.clip(rng.normal(110, noise, (height, width, 3)), 0, 255).astype(np.uint8)
    scale = face_px / 221  # the portrait's face box is about 221 px tall
    small = cv2.resize(portrait, (round(512 * scale), round(600 * scale)), interpolation=cv2.INTER_AREA)
    h, w = small.shape[:2]
    x, y = int(centre[0] * width - w / 2), int(centre[1] * height - h / 2)
    frame[y:y + h, x:x + w] = small
    return frame


def test_a_face_only_found_at_full_resolution_is_recovered(portrait):
    frame = small_face_frame(portrait)
    assert FaceDetector(device="cpu", recover=False).detect(frame) == []  # the 640 px copy alone misses it
    reference = FaceDetector(device="cpu", detect_size=None, recover=False).detect(frame)
    assert len(reference) == 1 and reference[0].prob > 0.95
    detector = FaceDetector(device="cpu")
    found = detector.detect(frame)
    assert len(found) == 1 and found[0].found_by == "finer" and found[0].prob > 0.95
    assert iou(found[0].box, reference[0].box) > 0.6
    assert detector.stats["first"]["frames"] == detector.stats["finer"]["frames"] == 1
    assert detector.stats["near_track"]["frames"] == 0
    # the finer look only adds the pyramid levels the copy could not see: 32 px faces and up, below 60 px
    assert detector.finer_scales(1080, 1920) == pytest.approx([12 / 32, 12 / 32 * 0.709])
    assert detector.finer_scales(360, 640) == []  # a frame no larger than the copy: nothing to add


def test_in_a_video_the_second_look_goes_near_the_known_face(portrait):
    """The first frame is found by the finer look; the next ones by a cheap look around that face."""
    frames = [small_face_frame(portrait, centre=(0.3 + 0.01 * k, 0.4), seed=k) for k in range(4)]
    detector = FaceDetector(device="cpu", recover=False)
    assert [len(f) for f in detector.detect(frames)] == [0, 0, 0, 0]
    detector = FaceDetector(device="cpu")
    track: dict = {}
    found = detector.detect_video(frames[:2], [0, 10], track)
    found += detector.detect_video(frames[2:], [20, 30], track)  # a second batch of the same video
    assert [len(f) for f in found] == [1, 1, 1, 1]
    assert [f[0].found_by for f in found] == ["finer", "near_track", "near_track", "near_track"]
    assert detector.stats["finer"]["frames"] == 1 and detector.stats["near_track"]["frames"] == 3
    assert sorted(track) == [0, 10, 20, 30]
    centres = [f[0].centre[0] for f in found]
    assert np.all(np.diff(centres) > 0)  # it follows the face as it moves right


def test_a_frame_without_face_costs_at_most_one_extra_look(detector):
    rng = np.random.default_rng(0)
    blank = [np.clip(rng.normal(110, 12, (1080, 1920, 3)), 0, 255).astype(np.uint8) for _ in range(3)]
    detector.reset_stats()
    assert detector.detect_video(blank, [0, 1, 2], {}) == [[], [], []]
    assert detector.last_second_looks == ["finer"] * 3
    assert detector.stats["first"]["frames"] == 3
    assert detector.stats["finer"]["frames"] + detector.stats["near_track"]["frames"] == 3
    detector.reset_stats()
    assert detector.detect(blank[:2]) == [[], []]  # unrelated pictures: the same bound
    assert detector.stats["finer"]["frames"] + detector.stats["near_track"]["frames"] == 2


def test_a_confident_face_gets_no_second_look(detector, portrait):
    detector.reset_stats()
    assert detector.detect(portrait)[0].prob > 0.95
    assert detector.stats["finer"]["frames"] == detector.stats["near_track"]["frames"] == 0
    assert detector.last_second_looks == [None]


# -- one person through a video ----------------------------------------------------------------

def _face(x, prob):
    return Face(box=(x, 100, x + 80, 200), prob=prob, landmarks=None, crop=None)


def test_track_follows_one_person_not_the_most_confident_face():
    a = [_face(100, 0.999), _face(104, 0.97), _face(110, 0.96), _face(112, 0.98)]
    b = [_face(500, 0.95), _face(498, 0.995), None, _face(490, 0.90)]
    frames = [[a[0], b[0]], [b[1], a[1]], [a[2]], [], [b[3], a[3]]]
    chosen = track_faces(frames)
    assert chosen[:3] == [a[0], a[1], a[2]] and chosen[3] is None and chosen[4] is a[3]


def test_track_starts_at_the_most_confident_face():
    a = [_face(100, 0.80), _face(102, 0.81)]
    b = [_face(400, 0.75), _face(405, 0.999)]
    assert track_faces([[a[0], b[0]], [a[1], b[1]]]) == [b[0], b[1]]
    assert track_faces([[], []]) == [None, None]



def test_one_rgb_conversion_rounds_and_the_demo_uses_it():
    from helpers import inference

    grey = np.array([[0.999, 0.5], [0.0, 1.0]], dtype=np.float32)  # 254.745 -> 255, 127.5 -> 128 (round half even)
    rgb = face_detector.as_rgb_uint8(grey)
    assert rgb.shape == (2, 2, 3) and rgb.dtype == np.uint8
    assert rgb[0, 0].tolist() == [255, 255, 255] and rgb[1, 1, 0] == 255 and rgb[1, 0, 0] == 0
    np.testing.assert_array_equal(inference.load_image(grey), rgb)
    rgba = np.zeros((3, 4, 4), np.uint8)
    assert face_detector.as_rgb_uint8(rgba).shape == (3, 4, 3)
    with pytest.raises(ValueError):
        face_detector.as_rgb_uint8(np.zeros((3, 4, 5)))
    with pytest.raises(inference.DemoInputError, match="Expected an RGB picture"):
        inference.load_image(np.zeros((3, 4, 5)))
