"""A whole dataset to crops and a manifest: every frame accounted for, resumable runs, damaged videos."""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers import crop_manifest, faces
from helpers.crop_manifest import load_manifest
from helpers.face_detector import FaceDetector
from helpers.faces import extract_faces
from test_face_detector import portrait, small_face_frame  # noqa: F401  (portrait is a fixture)
from test_video_frames import write_video


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
    assert set(crop_manifest.MANIFEST_COLUMNS) <= set(df.columns)
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
    landmarks = ok[crop_manifest.LANDMARK_COLUMNS].to_numpy()
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

    summary = crop_manifest.video_summary(manifest).set_index("video")
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
    assert crop_manifest.video_summary(df).set_index("video").loc["fake.mp4", "damaged_after_frame"] == last_good


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
    summary = crop_manifest.video_summary(df).set_index("video")
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
    summary = crop_manifest.video_summary(df).set_index("video")
    assert summary.loc["small_face.mp4", "second_looks"] == 6
    assert summary.loc["small_face.mp4", "second_look_seconds"] > 0


def test_a_resumed_run_gives_the_same_results_as_the_first(awkward_manifest, awkward_dataset):
    before = load_manifest(awkward_manifest, only_faces=False)
    (awkward_manifest.parent / "parts" / "small_face.mp4.parquet").unlink()  # interrupted while on this video
    awkward_manifest.unlink()
    pass_two = extract_faces(awkward_dataset, "smoke", frames_per_video=6, device="cpu", progress=False)
    after = load_manifest(pass_two, only_faces=False)
    columns = ["video", "frame_index", "status", "reason", "crop_path", "x1", "y1", "x2", "y2", "prob",
               *crop_manifest.LANDMARK_COLUMNS, "found_by", "second_look", "damaged_after_frame"]
    pd.testing.assert_frame_equal(before[columns], after[columns])
