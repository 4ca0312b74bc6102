"""Frame sampling and reading: which frames, the right frames, upright, and clear errors."""
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from helpers import video_frames
from helpers.video_frames import VideoReadError, probe_video, read_frames, sample_frame_indices

LEVEL_STEP = 8  # frame i is painted with grey level i * LEVEL_STEP, so a decoded frame says which it is


def write_video(path, frames, fps=30, rotation=None, gop=None, faststart=False) -> Path:
    """Encode RGB uint8 frames as H.264 MP4 with PyAV (optionally with a display rotation tag;
    ``faststart``: the index first, as files made for streaming have it)."""
    import av

    path = Path(path)
    height, width = frames[0].shape[:2]
    with av.open(str(path), mode="w", options={"movflags": "+faststart"} if faststart else {}) as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        # "veryfast" uses B-frames, as most H.264 videos do (ultrafast would not)
        stream.options = {"crf": "12", "preset": "veryfast", "threads": "1"}
        if gop:
            stream.codec_context.gop_size = gop
        if rotation is not None:
            stream.set_display_rotation(rotation)
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def numbered_frames(n, width=96, height=64):
    """Frames whose grey level encodes their index; a white square marks the top-left corner."""
    frames = []
    for i in range(n):
        frame = np.full((height, width, 3), i * LEVEL_STEP, np.uint8)
        frame[:16, :16] = 255
        frames.append(frame)
    return frames


def index_of(frame) -> int:
    h, w = frame.shape[:2]
    return int(round(float(np.median(frame[h // 2:, w // 2:])) / LEVEL_STEP))


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("videos")
    return {
        "plain": write_video(root / "plain.mp4", numbered_frames(30)),
        "keyframes": write_video(root / "keyframes.mp4", numbered_frames(30), gop=5),
        "portrait": write_video(root / "portrait.mp4", numbered_frames(12, width=64, height=112)),
        # stored landscape, shown portrait: what phones write
        "rotated": write_video(root / "rotated.mp4", numbered_frames(6), rotation=90),
    }


# -- which frames ------------------------------------------------------------------------------

def test_exact_count_evenly_spaced_first_and_last_included():
    indices = sample_frame_indices(300, 32)
    assert len(indices) == 32 and indices[0] == 0 and indices[-1] == 299
    assert np.all(np.diff(indices) > 0)
    gaps = np.diff(indices)
    assert gaps.max() - gaps.min() <= 1  # as even as integers allow


@pytest.mark.parametrize("n_total,n_wanted", [(10, 10), (11, 10), (17, 16), (31, 16), (301, 32), (1000, 7)])
def test_indices_distinct_and_in_range(n_total, n_wanted):
    indices = sample_frame_indices(n_total, n_wanted)
    assert len(indices) == n_wanted == len(set(indices.tolist()))
    assert indices.min() == 0 and indices.max() == n_total - 1


def test_short_video_gives_all_its_frames():
    assert sample_frame_indices(5, 16).tolist() == [0, 1, 2, 3, 4]
    assert sample_frame_indices(0, 16).tolist() == []


def test_one_frame_is_the_middle_one_and_zero_is_an_error():
    assert sample_frame_indices(101, 1).tolist() == [50]
    with pytest.raises(ValueError):
        sample_frame_indices(100, 0)


# -- the right frames --------------------------------------------------------------------------

@pytest.mark.parametrize("backend", video_frames.BACKENDS)
@pytest.mark.parametrize("video", ["plain", "keyframes"])
def test_reads_exactly_the_frames_asked_for(videos, video, backend):
    wanted = [0, 3, 4, 17, 29]
    frames = read_frames(videos[video], wanted, backend=backend)
    assert [index_of(f) for f in frames] == wanted
    assert all(f.dtype == np.uint8 and f.shape == (64, 96, 3) for f in frames)


def test_order_of_indices_is_kept(videos):
    frames = read_frames(videos["keyframes"], [20, 2, 11])
    assert [index_of(f) for f in frames] == [20, 2, 11]


def test_seeking_with_frequent_keyframes_gives_the_same_pixels_as_decoding_everything(videos):
    path = videos["keyframes"]
    assert len(probe_video(path).keyframes) >= 5
    wanted = sample_frame_indices(30, 4).tolist()
    seeking = video_frames._read_pyav(path, wanted, seek=True)
    forward = video_frames._read_pyav(path, wanted, seek=False)
    for i in wanted:
        assert np.array_equal(seeking[i], forward[i])


def test_skipping_frames_nothing_refers_to_gives_the_same_pixels(videos):
    import av

    path = videos["plain"]
    with av.open(str(path)) as container:
        kinds = {int(frame.pict_type) for frame in container.decode(video=0)}
    assert 3 in kinds  # FFmpeg's AV_PICTURE_TYPE_B: without B-frames there is nothing to skip
    wanted = [1, 2, 7, 13, 22, 28]
    skipping = video_frames._read_pyav(path, wanted, seek=False, skip=True)
    everything = video_frames._read_pyav(path, wanted, seek=False, skip=False)
    assert sorted(skipping) == wanted
    for i in wanted:
        assert np.array_equal(skipping[i], everything[i]) and index_of(skipping[i]) == i


def test_indices_past_the_end_are_left_out(videos):
    frames = read_frames(videos["plain"], [0, 29, 30, 500])
    assert [index_of(f) for f in frames] == [0, 29]


def test_probe_reports_size_rate_and_frame_count(videos):
    info = probe_video(videos["plain"])
    assert (info.n_frames, info.width, info.height, info.rotation) == (30, 96, 64, 0)
    assert info.fps == pytest.approx(30)
    assert info.duration_s == pytest.approx(1.0)


# -- upright -----------------------------------------------------------------------------------

def test_portrait_video_keeps_its_shape(videos):
    info = probe_video(videos["portrait"])
    assert info.portrait and (info.width, info.height) == (64, 112)
    frames = read_frames(videos["portrait"], sample_frame_indices(info.n_frames, 4))
    assert [f.shape for f in frames] == [(112, 64, 3)] * 4


@pytest.mark.parametrize("backend", video_frames.BACKENDS)
def test_rotation_tag_turns_frames_upright(videos, backend):
    info = probe_video(videos["rotated"])
    assert info.rotation == 90 and info.portrait and (info.width, info.height) == (64, 96)
    frame = read_frames(videos["rotated"], [2], backend=backend)[0]
    assert frame.shape == (96, 64, 3)
    # the white corner was top-left in the stored pixels; a 90 deg counter-clockwise turn puts it bottom-left
    assert frame[-8:, :8].mean() > 200 and frame[:8, :8].mean() < 100
    assert index_of(frame) == 2


def test_both_backends_agree_on_rotated_video(videos):
    a = read_frames(videos["rotated"], [1, 4], backend="pyav")
    b = read_frames(videos["rotated"], [1, 4], backend="cv2")
    for x, y in zip(a, b):
        assert x.shape == y.shape and np.abs(x.astype(int) - y).mean() < 2


# -- errors ------------------------------------------------------------------------------------

@pytest.mark.parametrize("content", [b"", b"this is not a video" * 100])
def test_corrupt_file_gives_a_clear_error(tmp_path, content):
    path = tmp_path / "broken.mp4"
    path.write_bytes(content)
    with pytest.raises(VideoReadError, match="broken.mp4.*could not be read"):
        read_frames(path, [0, 1])
    with pytest.raises(VideoReadError, match="broken.mp4"):
        probe_video(path)


def test_truncated_video_gives_a_clear_error(tmp_path, videos):
    path = tmp_path / "cut.mp4"
    path.write_bytes(videos["plain"].read_bytes()[:2000])
    with pytest.raises(VideoReadError, match="cut.mp4"):
        video_frames.sample_frames(path, 4)


def test_missing_file_and_bad_backend(tmp_path, videos):
    with pytest.raises(FileNotFoundError):
        read_frames(tmp_path / "nope.mp4", [0])
    with pytest.raises(ValueError, match="backend"):
        read_frames(videos["plain"], [0], backend="magic")


def test_frames_come_one_by_one_in_index_order_and_reading_can_stop_early(videos):
    frames = video_frames.iter_frames_by_index(videos["plain"], [25, 3, 14])
    first = next(frames)
    assert first[0] == 3 and index_of(first[1]) == 3
    assert [(i, index_of(f)) for i, f in frames] == [(14, 14), (25, 25)]
    early = video_frames.iter_frames_by_index(videos["keyframes"], [0, 10, 20])
    next(early)
    early.close()  # closes the file; nothing else is decoded


# -- damaged files -----------------------------------------------------------------------------

def noisy_numbered_frames(n, width=160, height=120):
    """Numbered frames (grey level = index, bottom half) with noise on top: large packets, so that
    the middle of the file is the middle of the video."""
    rng = np.random.default_rng(0)
    frames = numbered_frames(n, width, height)
    for frame in frames:
        frame[: height // 2] = rng.integers(0, 256, (height // 2, width, 3), dtype=np.uint8)
    return frames


@pytest.fixture(scope="module")
def damaged(tmp_path_factory):
    root = tmp_path_factory.mktemp("damaged")
    whole = write_video(root / "whole.mp4", noisy_numbered_frames(30), faststart=True)
    data = whole.read_bytes()
    (root / "cut.mp4").write_bytes(data[: len(data) // 2])
    garbage = bytearray(data)
    middle, size = len(data) // 2, len(data) // 10
    garbage[middle:middle + size] = np.random.default_rng(1).integers(0, 256, size, dtype=np.uint8).tobytes()
    (root / "garbage.mp4").write_bytes(bytes(garbage))
    index_last = write_video(root / "index_last.mp4", noisy_numbered_frames(30))  # the usual layout
    (root / "index_last_cut.mp4").write_bytes(index_last.read_bytes()[: index_last.stat().st_size // 2])
    return root


@pytest.mark.parametrize("name", ["cut.mp4", "garbage.mp4"])
def test_a_damaged_video_keeps_the_frames_before_the_damage(damaged, name):
    wanted = list(range(0, 30, 3))
    kept = []
    with pytest.raises(video_frames.VideoDamagedError) as raised:
        for index, frame in video_frames.iter_frames_by_index(damaged / name, wanted):
            assert index_of(frame) == index  # the right frame, decoded cleanly
            kept.append(index)
    error = raised.value
    assert 3 <= len(kept) < len(wanted)  # about half the video decodes
    assert kept == wanted[:len(kept)] and kept[-1] <= error.last_good_frame < kept[-1] + 3
    assert name in str(error) and f"damaged after frame {error.last_good_frame}" in str(error)
    # read_frames keeps them and warns; damage="raise" raises
    with pytest.warns(UserWarning, match=f"damaged after frame {error.last_good_frame}"):
        frames = read_frames(damaged / name, wanted)
    assert [index_of(f) for f in frames] == kept
    with pytest.raises(video_frames.VideoDamagedError):
        read_frames(damaged / name, wanted, damage="raise")
    sampled = video_frames.sample_frames(damaged / name, 10)
    assert sampled.damaged_after == error.last_good_frame and len(sampled.frames) >= 3
    assert sorted(sampled.frames) == [i for i in sampled.indices if i <= error.last_good_frame]


def test_a_file_cut_before_its_index_says_so(damaged):
    assert video_frames.missing_mp4_index(damaged / "index_last_cut.mp4")
    assert not video_frames.missing_mp4_index(damaged / "index_last.mp4")
    assert video_frames.cut_short(damaged / "cut.mp4") and not video_frames.cut_short(damaged / "whole.mp4")
    with pytest.raises(VideoReadError, match="index_last_cut.mp4.*without its index.*copy or download"):
        probe_video(damaged / "index_last_cut.mp4")
    assert len(read_frames(damaged / "whole.mp4", range(30))) == 30  # the undamaged file: every frame
