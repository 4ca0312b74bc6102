"""Evenly spaced frames from a video, without decoding more than needed.

A DFDC clip is 10 s at 30 fps: 300 frames of 1920x1080. A detector does not
need all of them; the DFDC winner looked at 32 evenly spaced frames. This
module finds *which* frames to read (:func:`sample_frame_indices`) and reads
them as upright RGB arrays (:func:`read_frames`).

How the frames are read (PyAV, i.e. FFmpeg):

* A compressed video can only be decoded from a *keyframe* onwards. The MP4
  index tells where the keyframes are, so for each wanted frame the reader
  jumps (seeks) to the last keyframe before it when that skips frames, and
  otherwise keeps decoding forward. With one keyframe every few seconds (the
  usual H.264 setting) that is nearly a plain forward decode; with frequent
  keyframes it skips most of the video.
* Between wanted frames, the decoder is told to skip frames that no other
  frame refers to (H.264's non-reference B-frames, about half of the frames
  of a typical clip): about 30% less decoding on the DFDC-like test clips,
  with pixel-identical results. Only wanted frames are converted to RGB.
* Phones store portrait videos as landscape pixels plus a *rotation* tag;
  frames are turned upright here, as a video player would.
* Containers sometimes announce more frames than they hold. Frames past the
  real end are left out, so the returned list can be shorter than asked.
* A file damaged part-way (cut short while copied, or with garbage in the
  middle) keeps the frames decoded before the damage: the reader stops at the
  first packet the decoder refuses and says after which frame
  (:class:`VideoDamagedError`, a :class:`VideoReadError` that carries the
  frame index); :func:`read_frames` returns the good frames with a warning.

``backend="cv2"`` reads with OpenCV instead (``grab()`` every frame,
``retrieve()`` only the wanted ones); ``tools/benchmark_faces.py`` compares
the two on this machine.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

BACKENDS = ("pyav", "cv2")
#: File endings taken for videos, by the folder source (helpers.data_sources) and the demo alike.
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")


class VideoReadError(RuntimeError):
    """A video cannot be opened or decoded; the message names the file and what to do."""


class VideoDamagedError(VideoReadError):
    """The decoder refused a video part-way through, after ``last_good_frame`` had been decoded.

    Raised by :func:`iter_frames_by_index` *after* it has yielded every wanted
    frame up to ``last_good_frame``, so a consumer keeps those. ``detail`` is
    the decoder's complaint.
    """

    def __init__(self, path, last_good_frame: int, detail: str):
        self.path, self.last_good_frame, self.detail = Path(path), int(last_good_frame), str(detail)
        super().__init__(f"{self.path.name} is damaged after frame {self.last_good_frame} ({self.detail}); "
                         f"the frames up to {self.last_good_frame} decode and were kept. If you have the "
                         "original file, copy it again; otherwise the rest of this video cannot be used.")


def _describe(error: Exception | str) -> str:
    return f"{type(error).__name__}: {error}" if isinstance(error, Exception) else str(error)


def _unreadable(path: Path, error: Exception | str) -> VideoReadError:
    if missing_mp4_index(path):
        return VideoReadError(
            f"{Path(path).name} could not be read as a video: it is an MP4 file without its index (the "
            "'moov' box), which is written last, so the file was most likely cut short while being recorded, "
            "downloaded or copied. No frame can be decoded without it; copy or download the file again.")
    return VideoReadError(f"{Path(path).name} could not be read as a video ({_describe(error)}). The file may be "
                          "corrupt or incomplete, or use a codec FFmpeg does not know; re-encode it (e.g. H.264 "
                          "MP4) or remove it from the dataset.")


def _mp4_boxes(path) -> tuple:
    """The top-level boxes of an MP4/MOV file as ``(kind, offset, declared size)``, and the file size.

    Reads only the box headers (16 bytes each); an empty list for a file that
    does not look like MP4.
    """
    import struct

    boxes: list = []
    try:
        size_on_disk = Path(path).stat().st_size
        with open(path, "rb") as file:
            offset = 0
            for _ in range(1000):  # a handful of top-level boxes in any real file
                file.seek(offset)
                header = file.read(16)
                if len(header) < 8:
                    break
                size, kind = struct.unpack(">I4s", header[:8])
                if size == 1 and len(header) == 16:
                    size = struct.unpack(">Q", header[8:16])[0]
                elif size == 0:  # "to the end of the file"
                    size = size_on_disk - offset
                if size < 8 or not (kind.isascii() and kind.isalnum() or kind == b"free"):
                    break
                boxes.append((kind, offset, size))
                offset += size
    except OSError:
        return [], 0
    if not boxes or boxes[0][0] not in (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip"):
        return [], size_on_disk
    return boxes, size_on_disk


def missing_mp4_index(path) -> bool:
    """True for an MP4/MOV file that has a media box ('mdat') but no index box ('moov').

    Such a file was cut before its index was written (the usual end of an
    interrupted copy or recording: the index comes last unless the file was
    made for streaming) and no player can decode it.
    """
    kinds = {kind for kind, _, _ in _mp4_boxes(path)[0]}
    return b"mdat" in kinds and b"moov" not in kinds


def cut_short(path) -> bool:
    """True for an MP4/MOV file whose last box is declared longer than what is left of the file
    (it was cut short: the frames stored past the cut are gone)."""
    boxes, size_on_disk = _mp4_boxes(path)
    return bool(boxes) and boxes[-1][1] + boxes[-1][2] > size_on_disk


@dataclass
class VideoInfo:
    """What the container says about a video (width and height are the upright, displayed size)."""

    path: Path
    n_frames: int              # frames announced by the container (or estimated from duration x fps)
    fps: float
    width: int
    height: int
    rotation: int              # degrees counter-clockwise a player turns the stored pixels (0, 90, 180, 270)
    codec: str
    keyframes: list = field(default_factory=list, repr=False)  # frame indices of keyframes, if indexed

    @property
    def duration_s(self) -> float:
        return self.n_frames / self.fps if self.fps else 0.0

    @property
    def portrait(self) -> bool:
        return self.height > self.width


def sample_frame_indices(n_total: int, n_wanted: int) -> np.ndarray:
    """``n_wanted`` evenly spaced frame indices in ``range(n_total)``, first and last included.

    A video shorter than asked gives all of its frames. The indices are
    strictly increasing integers.

    >>> sample_frame_indices(300, 4).tolist()
    [0, 100, 199, 299]
    >>> sample_frame_indices(3, 8).tolist()
    [0, 1, 2]
    """
    n_total, n_wanted = int(n_total), int(n_wanted)
    if n_wanted < 1:
        raise ValueError(f"n_wanted must be at least 1, got {n_wanted}.")
    if n_total <= 0:
        return np.zeros(0, dtype=np.int64)
    if n_wanted >= n_total:
        return np.arange(n_total, dtype=np.int64)
    if n_wanted == 1:
        return np.array([(n_total - 1) // 2], dtype=np.int64)
    # Spacing is >= 1, so rounding half up keeps the indices distinct.
    return np.floor(np.linspace(0, n_total - 1, n_wanted) + 0.5).astype(np.int64)


def _rotation_of(stream, frame=None) -> int:
    """Counter-clockwise rotation (0/90/180/270) from the display matrix."""
    angle = 0.0
    try:
        if frame is not None:
            angle = float(frame.rotation or 0)
    except (AttributeError, TypeError, ValueError):
        angle = 0.0
    if not angle:
        try:  # older files carry a 'rotate' tag instead (clockwise)
            angle = -float(stream.metadata.get("rotate", 0))
        except (TypeError, ValueError):
            angle = 0.0
    return int(round(angle / 90.0)) % 4 * 90


def upright(frame: np.ndarray, rotation: int) -> np.ndarray:
    """Turn stored pixels as a player would (rotation = degrees counter-clockwise)."""
    k = int(round(rotation / 90.0)) % 4
    return np.ascontiguousarray(np.rot90(frame, k)) if k else frame


def _keyframe_indices(stream, n_frames: int, fps: float) -> list:
    try:
        entries = list(stream.index_entries)
    except (AttributeError, TypeError):
        return []
    if not entries:
        return []
    if len(entries) == n_frames:
        # one entry per frame in decode order; with closed GOPs a keyframe's
        # display index equals the number of frames decoded before it
        return [i for i, e in enumerate(entries) if e.is_keyframe]
    first = entries[0].timestamp
    tb = float(stream.time_base)
    return sorted({int(round((e.timestamp - first) * tb * fps)) for e in entries if e.is_keyframe})


def _open(path):
    import av

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Video not found: {path}")
    try:
        container = av.open(str(path))
    except Exception as error:  # FFmpeg raises many error types for broken files
        raise _unreadable(path, error) from None
    if not container.streams.video:
        container.close()
        raise _unreadable(path, "no video stream in the file")
    return container


def probe_video(path) -> VideoInfo:
    """Read a video's header (and its first frame, for the rotation). VideoReadError if unusable."""
    path = Path(path)
    container = _open(path)
    try:
        stream = container.streams.video[0]
        fps = float(stream.average_rate or stream.guessed_rate or stream.base_rate or 0.0)
        n_frames = int(stream.frames or 0)
        if n_frames <= 0:
            if stream.duration is not None and stream.time_base is not None:
                seconds = float(stream.duration * stream.time_base)
            elif container.duration is not None:
                seconds = container.duration / 1_000_000
            else:
                seconds = 0.0
            n_frames = int(round(seconds * fps)) if fps else 0
        try:
            first = next(container.decode(stream))
        except StopIteration:
            raise _unreadable(path, "no frame could be decoded") from None
        except Exception as error:
            raise _unreadable(path, error) from None
        rotation = _rotation_of(stream, first)
        width, height = first.width, first.height
        if rotation in (90, 270):
            width, height = height, width
        keyframes = _keyframe_indices(stream, n_frames, fps)
        codec = stream.codec_context.name
    finally:
        container.close()
    return VideoInfo(path=path, n_frames=max(n_frames, 1), fps=fps, width=width, height=height,
                     rotation=rotation, codec=codec, keyframes=keyframes)


def _iter_pyav(path: Path, wanted: list, seek: bool = True, skip: bool = True, threads: int | None = None):
    """Yield ``(index, upright RGB array)`` for each wanted index (sorted list) that exists, in order,
    each as soon as it is decoded.

    ``seek``: jump to the last keyframe before a wanted frame when that skips
    frames. ``skip``: do not decode frames that nothing refers to (H.264
    non-reference B-frames) unless they are wanted; the decoder is told so
    packet by packet. Both need timestamps, which tell each packet's frame index.
    ``threads``: decoder threads (None = FFmpeg's choice, all cores).
    When a timestamp falls between indices (variable frame rate), a wanted
    index gets the first frame at or after it.
    """
    container = _open(path)
    position = -1  # index of the last frame the decoder output
    try:
        stream = container.streams.video[0]
        if threads is None or threads > 1:
            stream.thread_type = "AUTO"  # decode on several cores
        if threads:
            stream.codec_context.thread_count = int(threads)
        decoder = stream.codec_context
        fps = float(stream.average_rate or stream.guessed_rate or 0.0)
        tb = float(stream.time_base) if stream.time_base is not None else 0.0
        start = stream.start_time or 0
        timed = fps > 0 and tb > 0
        keyframes = _keyframe_indices(stream, int(stream.frames or 0), fps) if (seek and timed) else []
        wanted_set = set(wanted)
        pending = list(wanted)  # still to find, ascending
        rotation = None
        counted = -1            # frames output so far - 1 (index when there are no timestamps)

        def index_of(pts):
            return int(round((pts - start) * tb * fps))

        def seek_target():
            """The keyframe to jump to for the next wanted frame, or None when decoding on is as good."""
            key = max((k for k in keyframes if k <= pending[0]), default=None)
            return key if (key is not None and key > position + 2 and key not in sought) else None

        sought: set = set()     # keyframes already jumped to (never twice: no loops on odd files)
        packets = container.demux(stream)
        while pending:
            key = seek_target()
            if key is not None:
                sought.add(key)
                container.seek(start + int(round(key / fps / tb)), stream=stream, backward=True)
                packets = container.demux(stream)
            ended = True
            for packet in packets:
                if skip and timed and packet.pts is not None:
                    decoder.skip_frame = "DEFAULT" if index_of(packet.pts) in wanted_set else "NONREF"
                for frame in decoder.decode(packet):
                    counted += 1
                    position = index_of(frame.pts) if (timed and frame.pts is not None) else counted
                    if not pending or position < pending[0]:
                        continue
                    if rotation is None:
                        rotation = _rotation_of(stream, frame)
                    image = upright(frame.to_ndarray(format="rgb24"), rotation)
                    while pending and pending[0] <= position:
                        yield pending.pop(0), image
                if not pending or seek_target() is not None:
                    ended = False  # done, or the next wanted frame is better reached by seeking
                    break
            if ended:
                if pending and position >= 0 and cut_short(path):
                    raise VideoDamagedError(path, position, "the file ends in the middle of its video data: "
                                            "it was cut short")
                break  # the video ended: the indices still pending do not exist
    except VideoReadError:
        raise
    except Exception as error:
        if position >= 0:  # frames were decoded before the decoder gave up: they stay valid
            raise VideoDamagedError(path, position, _describe(error)) from None
        raise _unreadable(path, error) from None
    finally:
        container.close()


def _read_pyav(path: Path, wanted: list, seek: bool = True, skip: bool = True, threads: int | None = None) -> dict:
    """Frame index -> upright RGB array for each wanted index that exists (see :func:`_iter_pyav`)."""
    return dict(_iter_pyav(path, wanted, seek=seek, skip=skip, threads=threads))


def _iter_cv2(path: Path, wanted: list):
    import cv2

    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise _unreadable(path, "OpenCV could not open it")
    any_found = False
    try:
        targets = set(wanted)
        last = max(wanted)
        index = 0
        while index <= last:
            if not capture.grab():
                break
            if index in targets:
                ok, bgr = capture.retrieve()
                if ok:
                    any_found = True
                    yield index, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)  # OpenCV turns frames upright itself
            index += 1
    finally:
        capture.release()
    if not any_found and wanted:
        raise _unreadable(path, "OpenCV decoded no frame")


def iter_frames_by_index(path, indices, backend: str = "pyav", threads: int | None = None):
    """Yield ``(index, upright RGB uint8 array (H, W, 3))`` in increasing index order, each frame
    as soon as it is decoded (a consumer can work on the first frames while later ones decode).

    Indices the video does not really have are left out. ``threads``: decoder
    threads for the PyAV backend (None = all cores; 1 when other threads keep
    the other cores busy, e.g. face detection or a second video being read).
    Raises :class:`VideoReadError` when the file cannot be decoded at all,
    :class:`VideoDamagedError` after the last good frame when it is damaged
    part-way, and FileNotFoundError when it does not exist.
    """
    path = Path(path)
    if backend not in BACKENDS:
        raise ValueError(f"Unknown backend {backend!r}; choose one of {BACKENDS}.")
    wanted = sorted({int(i) for i in indices})
    if any(i < 0 for i in wanted):
        raise ValueError("Frame indices must be >= 0.")
    if not wanted:
        return
    if not path.is_file():
        raise FileNotFoundError(f"Video not found: {path}")
    yield from (_iter_pyav(path, wanted, threads=threads) if backend == "pyav" else _iter_cv2(path, wanted))


def read_frames_by_index(path, indices, backend: str = "pyav", threads: int | None = None,
                         damage: str = "keep") -> dict:
    """Frame index -> upright RGB uint8 array (H, W, 3), for each index the video really has
    (all of :func:`iter_frames_by_index` at once).

    ``damage``: what to do with a video damaged part-way. "keep" (default)
    returns the frames decoded before the damage and warns (a UserWarning that
    says after which frame); "raise" raises :class:`VideoDamagedError`.
    """
    if damage not in ("keep", "raise"):
        raise ValueError(f"damage must be 'keep' or 'raise', got {damage!r}.")
    found: dict = {}
    try:
        for index, frame in iter_frames_by_index(path, indices, backend=backend, threads=threads):
            found[index] = frame
    except VideoDamagedError as error:
        if damage == "raise":
            raise
        import warnings

        warnings.warn(str(error), stacklevel=2)
    return found


def read_frames(path, indices, backend: str = "pyav", damage: str = "keep") -> list:
    """Upright RGB uint8 frames (H, W, 3) at ``indices``, in the order given.

    Indices past the video's real end, or past the point where a damaged video
    stops decoding, are left out (the list is then shorter; the missing ones
    are the last), with a warning for the damage (``damage="raise"`` raises
    :class:`VideoDamagedError` instead). Raises :class:`VideoReadError` when
    the file cannot be decoded at all and FileNotFoundError when it does not exist.
    """
    found = read_frames_by_index(path, indices, backend=backend, damage=damage)
    return [found[int(i)] for i in indices if int(i) in found]


@dataclass
class SampledFrames:
    info: VideoInfo
    indices: list       # the indices asked for
    frames: dict        # index -> RGB array, for those that could be decoded
    damage: VideoDamagedError | None = None  # set when the video stopped decoding part-way

    @property
    def missing(self) -> list:
        return [i for i in self.indices if i not in self.frames]

    @property
    def damaged_after(self) -> int | None:
        """The last frame decoded before the damage, or None for an undamaged video."""
        return None if self.damage is None else self.damage.last_good_frame


def sample_frames(path, n_wanted: int, backend: str = "pyav", threads: int | None = None) -> SampledFrames:
    """Probe a video, pick ``n_wanted`` evenly spaced frames and read them (a damaged video keeps
    the frames before the damage; ``damage`` says where it is)."""
    info = probe_video(path)
    indices = [int(i) for i in sample_frame_indices(info.n_frames, n_wanted)]
    frames, damage = {}, None
    try:
        for index, frame in iter_frames_by_index(path, indices, backend, threads):
            frames[index] = frame
    except VideoDamagedError as error:
        damage = error
    return SampledFrames(info=info, indices=indices, frames=frames, damage=damage)
