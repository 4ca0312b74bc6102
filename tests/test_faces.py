"""Face detection, crops, tracking, and the resumable dataset extraction."""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers import faces
from helpers.faces import Face, FaceDetector, crop_face, extract_faces, load_manifest, track_faces
from test_video_frames import write_video


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
    scales = faces.pyramid_scales(360, 640, min_face_size=20)
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


# -- a dataset ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def dataset(tmp_path_factory, portrait):
    """Two face clips (one a phone video: landscape pixels + rotation tag), a clip without a face,
    a corrupt file and a file that metadata.json lists but is missing."""
    from helpers import sample_data

    root = tmp_path_factory.mktemp("faces-dataset")
    sample_data.make_clip(root / "real.mp4", 320, 240, seconds=0.4, seed=3)
    sample_data.make_clip(root / "fake.mp4", 320, 240, seconds=0.4, fake=True, seed=3)
    sample_data.make_clip(root / "empty.mp4", 320, 240, seconds=0.4, seed=5, has_face=False)
    import cv2

    upright = cv2.resize(portrait, (192, 224), interpolation=cv2.INTER_AREA)
    stored = np.rot90(upright, k=-1)  # the player turns it 90 deg counter-clockwise back upright
    write_video(root / "phone.mp4", [stored] * 8, rotation=90)
    (root / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 20)
    metadata = {
        "real.mp4": {"label": "REAL", "split": "train", "original": None},
        "fake.mp4": {"label": "FAKE", "split": "train", "original": "real.mp4"},
        "empty.mp4": {"label": "REAL", "split": "val", "original": None},
        "phone.mp4": {"label": "REAL", "split": "test", "original": None},
        "corrupt.mp4": {"label": "FAKE", "split": "test", "original": None},
        "gone.mp4": {"label": "REAL", "split": "test", "original": None},
    }
    (root / "metadata.json").write_text(json.dumps(metadata))
    return root


@pytest.fixture(scope="module")
def manifest(dataset):
    with pytest.warns(UserWarning, match="corrupt.mp4"):
        return extract_faces(dataset, "smoke", frames_per_video=4, device="cpu", progress=False)


def test_manifest_accounts_for_every_video_and_frame(manifest, dataset):
    df = load_manifest(manifest, only_faces=False)
    assert set(faces.MANIFEST_COLUMNS) <= set(df.columns)
    assert set(df["video"]) == {"real.mp4", "fake.mp4", "empty.mp4", "phone.mp4", "corrupt.mp4", "gone.mp4"}
    per_video = df.groupby("video")["status"].agg(lambda s: sorted(set(s)))
    assert per_video["real.mp4"] == per_video["fake.mp4"] == per_video["phone.mp4"] == ["ok"]
    assert per_video["empty.mp4"] == ["no_face"]
    assert per_video["corrupt.mp4"] == ["unreadable"] and per_video["gone.mp4"] == ["missing_file"]
    assert df.groupby("video").size()["real.mp4"] == 4
    reason = df.loc[df["video"] == "corrupt.mp4", "reason"].iloc[0]
    assert "corrupt.mp4" in reason and "could not be read" in reason
    assert df.loc[df["video"] == "fake.mp4", "target"].eq(1).all()
    assert df.loc[df["video"] == "fake.mp4", "original"].eq("real.mp4").all()


def test_crops_exist_with_the_profile_size_and_landmarks_inside(manifest):
    from PIL import Image

    ok = load_manifest(manifest)  # only_faces=True by default
    assert len(ok) == 12 and ok["status"].eq("ok").all()
    for path in ok["crop_path"]:
        assert Path(path).is_absolute()
        with Image.open(path) as crop:
            assert crop.size == (96, 96) and crop.mode == "RGB"
    landmarks = ok[faces.LANDMARK_COLUMNS].to_numpy()
    assert np.all((landmarks > 0) & (landmarks < 96))
    assert (ok["prob"] > 0.9).all()


def test_phone_video_is_turned_upright_before_detection(manifest):
    df = load_manifest(manifest)
    phone = df[df["video"] == "phone.mp4"]
    assert (phone["frame_height"] == 224).all() and (phone["frame_width"] == 192).all()
    assert (phone["rotation"] == 90).all()
    # upright face: eyes above the mouth
    assert (phone["lm_y0"] < phone["lm_y3"]).all()


def test_summary_and_stored_location(manifest, dataset):
    from helpers import config

    summary = faces.video_summary(manifest).set_index("video")
    assert summary.loc["real.mp4", "detection_rate"] == 1.0
    assert summary.loc["empty.mp4", "detection_rate"] == 0.0 and summary.loc["empty.mp4", "status"] == "no_face"
    assert summary.loc["corrupt.mp4", "status"] == "unreadable"
    assert Path(manifest).parent.parent == config.data_dir() / "faces" / dataset.name
    assert Path(manifest).parent.name.startswith("smoke-")  # not the profile's defaults: own folder


def test_rerun_does_only_what_is_missing(manifest, dataset, monkeypatch):
    before = load_manifest(manifest, only_faces=False)
    calls = []
    real_read = faces.FrameStream.read

    def counting_read(stream):
        calls.append(Path(stream.path).name)
        return real_read(stream)

    monkeypatch.setattr(faces.FrameStream, "read", counting_read)
    options = dict(frames_per_video=4, device="cpu", progress=False)
    assert extract_faces(dataset, "smoke", **options) == manifest
    assert calls == []  # everything cached

    # as if the run had been interrupted while working on fake.mp4
    (manifest.parent / "parts" / "fake.mp4.parquet").unlink()
    manifest.unlink()
    extract_faces(dataset, "smoke", **options)
    assert calls == ["fake.mp4"]
    after = load_manifest(manifest, only_faces=False)
    columns = ["video", "frame_index", "status", "crop_path", "x1", "y1", "prob"]
    pd.testing.assert_frame_equal(before[columns], after[columns])


def test_settings_have_their_own_folder_and_typos_are_caught(dataset):
    assert faces.faces_dir(dataset, "smoke") != faces.faces_dir(dataset, "smoke", frames_per_video=7)
    assert faces.faces_dir(dataset, "smoke") == faces.faces_dir(dataset, "smoke", batch_size=3, device="cpu")
    assert faces.faces_dir(dataset, "standard").name == "standard"
    with pytest.raises(ValueError, match="frames_per_vidoe"):
        faces.face_settings("smoke", frames_per_vidoe=3)


def test_missing_manifest_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="extract_faces"):
        load_manifest(tmp_path / "manifest.parquet")


# -- reading while detecting -------------------------------------------------------------------

def test_reading_plan_reads_two_videos_on_a_cpu_and_more_beside_a_gpu():
    assert faces.reading_plan("cpu", cores=2) == {"readers": 2, "threads": 2}
    assert faces.reading_plan("cpu", cores=1)["threads"] == 1
    plan = faces.reading_plan("cuda", cores=16)
    assert plan["readers"] == 4 and plan["threads"] == 4
    assert faces.reading_plan("cuda", cores=1)["threads"] == 1


def test_frame_queue_is_bounded_and_a_cancelled_reader_stops(dataset):  # and counts as not busy
    import threading

    stream = faces.FrameStream(dataset / "real.mp4", 8, "pyav", 1, depth=2)
    worker = threading.Thread(target=stream.read)
    worker.start()
    kind, info, indices = stream.next_message()
    assert kind == "info" and len(indices) == 8
    worker.join(timeout=1.0)
    assert worker.is_alive() and stream.queue.qsize() == 2  # waits for room instead of decoding on
    assert stream.load.busy == 0  # a reader waiting for room leaves its core to detection
    stream.cancelled.set()
    worker.join(timeout=5.0)
    assert not worker.is_alive()


def test_decoder_failing_after_some_frames_keeps_the_frames_before(dataset, monkeypatch):
    from helpers import video_frames

    real_iter = video_frames.iter_frames_by_index

    def failing_on_fake(path, indices, *args):
        for k, item in enumerate(real_iter(path, indices, *args)):
            if Path(path).name == "fake.mp4" and k == 2:
                raise video_frames.VideoReadError("fake.mp4 could not be read as a video (cut short)")
            yield item

    monkeypatch.setattr(video_frames, "iter_frames_by_index", failing_on_fake)
    with pytest.warns(UserWarning, match="cut short"):
        manifest = extract_faces(dataset, "smoke", frames_per_video=5, device="cpu", progress=False)
    df = load_manifest(manifest, only_faces=False)
    fake = df[df["video"] == "fake.mp4"].sort_values("frame_index")
    assert fake["status"].tolist() == ["ok", "ok", "damaged", "damaged", "damaged"]
    last_good = fake["frame_index"].iloc[1]
    assert fake["damaged_after_frame"].eq(last_good).all() and fake["reason"].iloc[2].find("cut short") >= 0
    assert (df.loc[df["video"] == "real.mp4", "status"] == "ok").sum() == 5
    assert faces.video_summary(df).set_index("video").loc["fake.mp4", "damaged_after_frame"] == last_good


def test_reader_dying_without_a_reason_is_reported_not_waited_for(dataset, monkeypatch):
    from helpers import video_frames

    class Crash(BaseException):
        pass

    def crashing(path, *args, **kwargs):
        raise Crash("decoder thread died")

    monkeypatch.setattr(video_frames, "probe_video", crashing)
    with pytest.warns(UserWarning, match="reading stopped unexpectedly"):
        manifest = extract_faces(dataset, "smoke", frames_per_video=6, device="cpu", progress=False)
    df = load_manifest(manifest, only_faces=False)
    present = df[df["video"] != "gone.mp4"]
    assert present["status"].eq("unreadable").all() and present["reason"].str.contains("decoder thread died").all()


def test_interrupted_run_keeps_finished_videos_and_resumes(dataset, monkeypatch):
    import shutil

    options = dict(frames_per_video=3, device="cpu", progress=False)
    shutil.rmtree(faces.faces_dir(dataset, "smoke", **options), ignore_errors=True)  # a kept test workspace
    calls = []
    real_detect = FaceDetector.detect_video

    def failing_third_time(self, frames, *args, **options):
        calls.append(len(frames))
        if len(calls) == 3:
            raise RuntimeError("interrupted")
        return real_detect(self, frames, *args, **options)

    monkeypatch.setattr(FaceDetector, "detect_video", failing_third_time)
    with pytest.raises(RuntimeError, match="interrupted"):  # and no hang: the readers are told to stop
        extract_faces(dataset, "smoke", **options)
    from helpers.data_sources import load_dataset

    order = load_dataset(dataset, probe=False)["name"].tolist()
    readable = [name for name in order if name in ("real.mp4", "fake.mp4", "empty.mp4", "phone.mp4")]
    finished = order[:order.index(readable[2])]  # everything before the video whose detection failed
    parts = faces.faces_dir(dataset, "smoke", **options) / "parts"
    assert sorted(p.name for p in parts.glob("*.parquet")) == sorted(f"{name}.parquet" for name in finished)

    monkeypatch.setattr(FaceDetector, "detect_video", real_detect)
    reads = []
    real_read = faces.FrameStream.read
    monkeypatch.setattr(faces.FrameStream, "read", lambda stream: (reads.append(Path(stream.path).name),
                                                                    real_read(stream))[1])
    manifest = extract_faces(dataset, "smoke", **options)
    assert sorted(reads) == sorted(set(order) - set(finished))
    df = load_manifest(manifest, only_faces=False)
    assert df.groupby("video").size()[["real.mp4", "fake.mp4", "empty.mp4", "phone.mp4"]].eq(3).all()


def test_crop_rows_keep_faces_and_name_missing_columns():
    table = pd.DataFrame({"video": ["a", "a", "b"], "crop_path": ["x.png", None, "y.png"],
                          "status": ["ok", "no_face", "unreadable"], "target": [0, 0, 1]})
    assert faces.crop_rows(table, ["video", "target"])["crop_path"].tolist() == ["x.png"]
    assert len(faces.crop_rows(table.drop(columns=["status"]))) == 2
    with pytest.raises(ValueError, match=r"\['split'\].*extract_faces"):
        faces.crop_rows(table, ["video", "split"])


# -- small faces and damaged files in a dataset ------------------------------------------------

@pytest.fixture(scope="module")
def awkward_dataset(tmp_path_factory, portrait):
    """A 1080p clip whose face the 640 px copy cannot see, and a face clip cut in half and one with
    garbage in the middle (both written index-first, as streaming files are)."""
    import cv2

    root = tmp_path_factory.mktemp("awkward-dataset")
    small = [small_face_frame(portrait, centre=(0.3 + 0.02 * k, 0.45), seed=k, noise=3.0) for k in range(6)]
    write_video(root / "small_face.mp4", small)
    rng = np.random.default_rng(0)
    face = cv2.resize(portrait, (128, 150), interpolation=cv2.INTER_AREA)
    clip = []
    for _ in range(30):
        frame = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)  # noise: large packets
        frame[45:195, 96:224] = face
        clip.append(frame)
    data = write_video(root / "whole.mp4", clip, faststart=True).read_bytes()
    (root / "whole.mp4").unlink()
    (root / "cut.mp4").write_bytes(data[: len(data) // 2])
    garbage = bytearray(data)
    garbage[len(data) // 2: len(data) // 2 + len(data) // 10] = rng.integers(0, 256, len(data) // 10,
                                                                              dtype=np.uint8).tobytes()
    (root / "garbage.mp4").write_bytes(bytes(garbage))
    metadata = {name: {"label": "REAL", "split": "test", "original": None}
                for name in ("small_face.mp4", "cut.mp4", "garbage.mp4")}
    (root / "metadata.json").write_text(json.dumps(metadata))
    return root


@pytest.fixture(scope="module")
def awkward_manifest(awkward_dataset):
    import shutil

    options = dict(frames_per_video=6, device="cpu", progress=False)
    shutil.rmtree(faces.faces_dir(awkward_dataset, "smoke", **options), ignore_errors=True)
    with pytest.warns(UserWarning, match="damaged after frame"):
        return extract_faces(awkward_dataset, "smoke", **options)


@pytest.mark.parametrize("name", ["cut.mp4", "garbage.mp4"])
def test_a_damaged_video_gives_crops_for_its_good_frames(awkward_manifest, name):
    df = load_manifest(awkward_manifest, only_faces=False)
    video = df[df["video"] == name].sort_values("frame_index")
    assert len(video) == 6  # every sampled frame has its row
    ok, damaged = video[video["status"] == "ok"], video[video["status"] == "damaged"]
    assert len(ok) >= 2 and len(damaged) >= 1 and len(ok) + len(damaged) == 6
    last_good = int(video["damaged_after_frame"].iloc[0])
    assert ok["frame_index"].max() <= last_good < damaged["frame_index"].min()
    assert damaged["reason"].str.contains(f"{name} is damaged after frame {last_good}").all()
    assert all(Path(p).is_file() for p in ok["crop_path"])
    summary = faces.video_summary(df).set_index("video")
    assert summary.loc[name, "damaged_after_frame"] == last_good and summary.loc[name, "status"] == "ok"
    assert "damaged after frame" in summary.loc[name, "reason"]


def test_small_faces_are_recovered_and_the_manifest_says_how(awkward_manifest):
    df = load_manifest(awkward_manifest, only_faces=False)
    small = df[df["video"] == "small_face.mp4"].sort_values("frame_index")
    assert small["status"].eq("ok").all()
    assert small["found_by"].iloc[0] == "finer"  # the first frame: nothing known yet, the finer look
    assert set(small["found_by"].iloc[1:]) <= {"near_track", "finer"}
    assert (small["found_by"] == "near_track").sum() >= 3  # then the cheap look near the known face
    assert small["second_look"].eq(small["found_by"]).all()
    summary = faces.video_summary(df).set_index("video")
    assert summary.loc["small_face.mp4", "second_looks"] == 6
    assert summary.loc["small_face.mp4", "second_look_seconds"] > 0


def test_a_resumed_run_gives_the_same_results_as_the_first(awkward_manifest, awkward_dataset):
    before = load_manifest(awkward_manifest, only_faces=False)
    (awkward_manifest.parent / "parts" / "small_face.mp4.parquet").unlink()  # interrupted while on this video
    awkward_manifest.unlink()
    pass_two = extract_faces(awkward_dataset, "smoke", frames_per_video=6, device="cpu", progress=False)
    after = load_manifest(pass_two, only_faces=False)
    columns = ["video", "frame_index", "status", "reason", "crop_path", "x1", "y1", "x2", "y2", "prob",
               *faces.LANDMARK_COLUMNS, "found_by", "second_look", "damaged_after_frame"]
    pd.testing.assert_frame_equal(before[columns], after[columns])


def test_one_rgb_conversion_rounds_and_the_demo_uses_it():
    from helpers import inference

    grey = np.array([[0.999, 0.5], [0.0, 1.0]], dtype=np.float32)  # 254.745 -> 255, 127.5 -> 128 (round half even)
    rgb = faces.as_rgb_uint8(grey)
    assert rgb.shape == (2, 2, 3) and rgb.dtype == np.uint8
    assert rgb[0, 0].tolist() == [255, 255, 255] and rgb[1, 1, 0] == 255 and rgb[1, 0, 0] == 0
    np.testing.assert_array_equal(inference.load_image(grey), rgb)
    rgba = np.zeros((3, 4, 4), np.uint8)
    assert faces.as_rgb_uint8(rgba).shape == (3, 4, 3)
    with pytest.raises(ValueError):
        faces.as_rgb_uint8(np.zeros((3, 4, 5)))
    with pytest.raises(inference.DemoInputError, match="Expected an RGB picture"):
        inference.load_image(np.zeros((3, 4, 5)))
