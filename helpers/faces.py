"""A whole dataset to face crops: sampled frames, MTCNN in batches, one crop per frame, the manifest.

:func:`extract_faces` samples ``frames_per_video`` evenly spaced frames of
every video of a dataset folder, detects faces with
:class:`helpers.face_detector.FaceDetector`, keeps the face that
:func:`helpers.face_detector.track_faces` follows through the video, writes
its crop and records one row per sampled frame in the crop manifest
(:mod:`helpers.crop_manifest`).

Speed comes from keeping both cores busy: background threads
(:class:`FrameStream`) decode the next frames and the next video while the
detector works on a batch of frames (:func:`reading_plan` says how many
readers and threads). Frames are queued a few at a time, so memory does not
grow with the video's size.

The run is resumable: each video's rows are written all or nothing when the
video is done, and a rerun skips finished videos. Different settings get
different folders (:func:`faces_dir`), so runs never mix.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import queue
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import config
from .crop_manifest import LANDMARK_COLUMNS, MANIFEST_NAME, assemble_manifest, crop_folder_name, write_parquet
from .face_detector import LOOKS, FaceDetector, track_faces

# ----------------------------------------------------------------------------------------------
# Settings

#: What each profile extracts. Frame counts: the DFDC winner used 32 frames per video.
PROFILE_DEFAULTS = {
    "smoke": {"frames_per_video": 5, "crop_size": 96},
    "standard": {"frames_per_video": 16, "crop_size": 160},
    "full": {"frames_per_video": 32, "crop_size": 256},
}
#: Settings shared by the profiles; all of them change the crops, so they are part of the cache key.
COMMON_DEFAULTS = {
    "margin": 0.2,             # added on each side of the face box, as a fraction of its size
    "detect_size": 640,        # long side (px) of the copy MTCNN looks at; None = full resolution
    "min_face_size": 20,       # smallest face MTCNN looks for, in pixels of that copy
    "thresholds": (0.6, 0.7, 0.7),  # P-Net, R-Net, O-Net acceptance thresholds (facenet-pytorch's)
    "recover": True,           # a second, cheaper-than-full look at frames without a confident face
    "confident": 0.95,         # a face this probable needs no second look
    "smallest_face": 32,       # smallest face (px of the full frame) the second look searches for
}
#: Settings that change how fast, not what: not part of the cache key.
RUN_DEFAULTS = {"batch_size": None, "device": "auto", "backend": "pyav", "progress": True}



def face_settings(profile: str = "standard", **overrides) -> dict:
    """The extraction settings of ``profile`` with ``overrides`` (``None`` = keep the profile's value)."""
    config.check_profile(profile)
    settings = config.apply_overrides({**PROFILE_DEFAULTS[profile], **COMMON_DEFAULTS, **RUN_DEFAULTS},
                                      overrides, what="face-extraction setting")
    settings["thresholds"] = tuple(float(t) for t in settings["thresholds"])
    if int(settings["frames_per_video"]) < 1 or int(settings["crop_size"]) < 8:
        raise ValueError("frames_per_video must be >= 1 and crop_size >= 8.")
    if not 0 < float(settings["confident"]) <= 1 or float(settings["smallest_face"]) < 6:
        raise ValueError(f"confident must be in (0, 1] (got {settings['confident']!r}) and smallest_face at least "
                         f"6 px (got {settings['smallest_face']!r}).")
    settings["recover"] = bool(settings["recover"])
    settings["profile"] = profile
    return settings


def content_key(settings: dict) -> dict:
    """The settings that change what the crops hold: the cache key of an extraction (also the scale-out's)."""
    keys = ["frames_per_video", "crop_size", *COMMON_DEFAULTS]
    return {k: (list(settings[k]) if isinstance(settings[k], tuple) else settings[k]) for k in keys}


# ----------------------------------------------------------------------------------------------
# A whole dataset -> crops + manifest


def faces_dir(dataset_dir, profile: str = "standard", **overrides) -> Path:
    """Where :func:`extract_faces` keeps this dataset's crops for these settings.

    ``<data_dir>/faces/<dataset folder name>/<profile>``; settings that differ
    from the profile's (e.g. another ``frames_per_video``) get their own folder
    ``<profile>-<hash>``, so runs with different settings never mix.
    """
    settings = face_settings(profile, **overrides)
    key = content_key(settings)
    name = profile
    if key != content_key(face_settings(profile)):
        name += "-" + hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:8]
    return config.data_dir() / "faces" / Path(dataset_dir).resolve().name / name


class ReaderLoad:
    """How many reader threads are decoding right now (not waiting for room in a queue, not done)."""

    def __init__(self):
        self._lock = threading.Lock()
        self.busy = 0

    @contextlib.contextmanager
    def counted(self, step: int = 1):
        with self._lock:
            self.busy += step
        try:
            yield
        finally:
            with self._lock:
                self.busy -= step


class FrameStream:
    """One video read in a worker thread and handed over frame by frame.

    The worker probes the video, picks the frames to sample and puts each one
    into a small queue as soon as it is decoded, so face detection (in the
    main thread) starts on the first frames while the rest are still being
    decoded, and the next videos are read meanwhile. The queue is bounded:
    at most ``depth`` decoded frames wait per video, whatever the video's size.
    Messages: ("info", VideoInfo, indices), ("frame", index, array), then
    ("end", seconds spent reading) or (status, reason) when the video cannot be used.
    """

    def __init__(self, path: str, n_frames: int, backend: str, threads: int | None, depth: int,
                 load: ReaderLoad | None = None):
        self.path, self.n_frames, self.backend, self.threads = str(path), int(n_frames), backend, threads
        self.load = load or ReaderLoad()  # shared by the readers of one run
        self.queue: queue.Queue = queue.Queue(maxsize=max(1, int(depth)))
        self.cancelled = threading.Event()
        self.future = None  # the worker's Future, once submitted

    def next_message(self):
        """The next message (waits for it); a reader that died without saying why becomes "unreadable"."""
        while True:
            try:
                return self.queue.get(timeout=0.5)
            except queue.Empty:
                if self.future is not None and self.future.done() and self.queue.empty():
                    error = self.future.exception()
                    return ("unreadable", f"{Path(self.path).name}: reading stopped unexpectedly ({error!r})")

    def _put(self, message) -> bool:
        try:
            self.queue.put_nowait(message)
            return True
        except queue.Full:
            pass
        with self.load.counted(-1):  # not decoding while it waits
            while not self.cancelled.is_set():
                try:
                    self.queue.put(message, timeout=0.1)
                    return True
                except queue.Full:
                    continue
        return False  # the main thread gave up on this video (an error or Ctrl-C there)

    def read(self) -> None:
        """Runs in a worker thread."""
        if self.cancelled.is_set():
            return
        with self.load.counted():
            self._read()

    def _read(self) -> None:
        from . import video_frames

        path, spent, last_sent = Path(self.path), 0.0, None
        tick = time.perf_counter()
        try:
            if not path.is_file():
                self._put(("missing_file", f"{path} does not exist (listed in metadata.json)."))
                return
            info = video_frames.probe_video(path)
            indices = [int(i) for i in video_frames.sample_frame_indices(info.n_frames, self.n_frames)]
            spent += time.perf_counter() - tick
            if not self._put(("info", info, indices)):
                return
            tick = time.perf_counter()
            for index, frame in video_frames.iter_frames_by_index(path, indices, self.backend, self.threads):
                spent += time.perf_counter() - tick  # decoding time only, not time waiting for room in the queue
                if not self._put(("frame", index, frame)):
                    return
                last_sent = index
                tick = time.perf_counter()
            spent += time.perf_counter() - tick
            self._put(("end", spent))
        except video_frames.VideoReadError as error:
            if last_sent is None:
                self._put(("unreadable", str(error)))
                return
            # damaged part-way: the frames handed over so far are good and are kept
            after = getattr(error, "last_good_frame", last_sent)
            spent += time.perf_counter() - tick
            if self._put(("damaged", after, str(error))):
                self._put(("end", spent))
        except Exception as error:  # a decoder failing in an unexpected way: same treatment, named
            if last_sent is None:
                self._put(("unreadable", f"{path.name}: {type(error).__name__}: {error}"))
            elif self._put(("damaged", last_sent, f"{path.name} stopped decoding after frame {last_sent} "
                                                  f"({type(error).__name__}: {error}); the frames before were kept")):
                self._put(("end", spent))


@dataclass
class VideoFaces:
    """What detection made of one video: faces per sampled frame that could be read, or why nothing."""

    status: str                                    # "read", "unreadable" or "missing_file"
    reason: str = ""
    info: object = None                            # video_frames.VideoInfo
    indices: list = field(default_factory=list)    # the frame indices sampled
    faces: dict = field(default_factory=dict)      # frame index -> list of Face, most confident first
    sizes: dict = field(default_factory=dict)      # frame index -> (width, height)
    second_looks: dict = field(default_factory=dict)  # frame index -> "near_track" | "finer" (if any)
    read_seconds: float = float("nan")
    second_look_seconds: float = 0.0
    damaged_after: int | None = None               # last good frame of a video damaged part-way
    damage: str = ""                               # what the decoder said


def detect_stream(stream: FrameStream, detector: FaceDetector) -> VideoFaces:
    """Detect faces in the frames of ``stream`` as they arrive, ``detector.batch_size`` at a time."""
    result = VideoFaces(status="read")
    batch: list = []
    track: dict = {}  # frame index -> a confident face box of this video (the second looks start there)

    def flush():
        if not batch:
            return
        # Cores no reader is decoding on go to detection too: with small videos the readers
        # are mostly done or waiting, with 1080p ones they keep their cores busy.
        threads = max(detector.threads, (os.cpu_count() or 1) - stream.load.busy)
        spent = sum(detector.stats[look]["seconds"] for look in LOOKS[1:])
        found = detector.detect_video([frame for _, frame in batch], [index for index, _ in batch], track,
                                      threads=threads)
        result.second_look_seconds += sum(detector.stats[look]["seconds"] for look in LOOKS[1:]) - spent
        for (index, frame), faces, second in zip(batch, found, detector.last_second_looks):
            result.faces[index] = faces
            result.sizes[index] = (frame.shape[1], frame.shape[0])
            if second:
                result.second_looks[index] = second
        batch.clear()

    while True:
        kind, *payload = stream.next_message()
        if kind == "info":
            result.info, result.indices = payload
        elif kind == "frame":
            batch.append(tuple(payload))
            if len(batch) >= detector.batch_size:
                flush()
        elif kind == "damaged":  # the frames already sent are good; none will follow
            result.damaged_after, result.damage = int(payload[0]), str(payload[1])
        elif kind == "end":
            flush()
            result.read_seconds = float(payload[0])
            return result
        else:  # the video cannot be used at all
            return VideoFaces(status=kind, reason=payload[0])


def _empty_row(video: dict, status: str, reason: str, frame_index: int = -1) -> dict:
    row = {"video": video["name"], "frame_index": int(frame_index), "crop_path": None}
    row.update({k: np.nan for k in ["x1", "y1", "x2", "y2", "prob", *LANDMARK_COLUMNS]})
    row.update({"label": video["label"], "target": int(video["target"]), "split": video["split"],
                "original": video["original"], "status": status, "reason": reason, "found_by": "",
                "second_look": ""})
    return row


def video_rows(video: dict, outcome: VideoFaces, out_dir: Path) -> list:
    """Manifest rows of one video (one per sampled frame); writes the crops of the tracked face.

    The last step of :func:`extract_faces` for each video, public so that the
    scale-out pipeline (``helpers.distributed``) writes exactly the same crops and rows.
    """
    import cv2

    if outcome.status != "read":
        return [_empty_row(video, outcome.status, outcome.reason)]
    info = outcome.info
    indices = [i for i in outcome.indices if i in outcome.faces]
    chosen = dict(zip(indices, track_faces([outcome.faces[i] for i in indices])))
    crop_folder = out_dir / "crops" / crop_folder_name(video["name"])
    rows = []
    for index in outcome.indices:
        if index not in outcome.faces:
            if outcome.damaged_after is not None and index > outcome.damaged_after:
                rows.append(_empty_row(video, "damaged", outcome.damage, index))
            else:
                rows.append(_empty_row(video, "missing_frame",
                                       f"frame {index} of the {info.n_frames} announced could not be "
                                       "decoded (the video ends early)", index))
            continue
        face = chosen[index]
        if face is None:
            row = _empty_row(video, "no_face", "MTCNN found no face in this frame", index)
        else:
            crop_folder.mkdir(parents=True, exist_ok=True)
            relative = Path("crops") / crop_folder_name(video["name"]) / f"{index:05d}.png"
            cv2.imwrite(str(out_dir / relative), cv2.cvtColor(face.crop, cv2.COLOR_RGB2BGR))
            row = _empty_row(video, "ok", "", index)
            row.update({"crop_path": relative.as_posix(), "prob": face.prob, "found_by": face.found_by,
                        **dict(zip(["x1", "y1", "x2", "y2"], face.box)),
                        **dict(zip(LANDMARK_COLUMNS, np.asarray(face.landmarks, float).reshape(-1)))})
        row["second_look"] = outcome.second_looks.get(index, "")
        row["n_faces"] = len(outcome.faces[index])
        row["frame_width"], row["frame_height"] = outcome.sizes[index]
        rows.append(row)
    for row in rows:
        row["time_s"] = row["frame_index"] / info.fps if (info.fps and row["frame_index"] >= 0) else np.nan
        row["video_frames"] = info.n_frames
        row["rotation"] = info.rotation
        row["damaged_after_frame"] = np.nan if outcome.damaged_after is None else float(outcome.damaged_after)
        row["second_look_seconds"] = outcome.second_look_seconds
    return rows


def reading_plan(device_type: str, cores: int | None = None) -> dict:
    """How many videos are read at once and with how many decoder threads each.

    On a CPU, two videos are decoded at a time while the detector works; with
    two decoder threads each, the last video of a run still uses both cores
    once the other reader has nothing left to do. On the 2-core test machine
    ``make benchmark`` measured about 1.5 s per 1080p video this way, against
    about 2.7 s when one thread read a whole video before detection started. On a GPU the CPU only
    decodes, so more videos are read at once and the cores are shared among them.
    """
    cores = max(1, int(cores or os.cpu_count() or 1))
    if device_type == "cpu":
        return {"readers": 2, "threads": min(2, cores)}
    readers = min(4, max(2, cores // 4))
    return {"readers": readers, "threads": max(1, cores // readers)}


def extract_faces(dataset_dir, profile: str = "standard", **overrides) -> Path:
    """Sample frames of every video of a dataset, crop the face of each, write crops and a manifest.

    Args:
        dataset_dir: a folder made by :func:`helpers.data_sources.prepare_dataset`.
        profile: "smoke" | "standard" | "full" (frames per video and crop size, see
            :data:`PROFILE_DEFAULTS`).
        **overrides: ``frames_per_video``, ``crop_size``, ``margin``, ``detect_size``,
            ``min_face_size``, ``thresholds``, ``recover``, ``confident``, ``smallest_face``
            (the second looks, see :class:`FaceDetector`); ``batch_size``, ``device``, ``backend``
            ("pyav" | "cv2"), ``progress`` (None = the default).

    Returns:
        Path of ``manifest.parquet`` (read it with :func:`load_manifest`), in
        :func:`faces_dir`. Cached: videos already done are skipped, so an
        interrupted run continues where it stopped. A video that cannot be read
        gets one row with status "unreadable" and the reason; the others go on.
        A video damaged part-way keeps the frames decoded before the damage;
        its later sampled frames get status "damaged" (``reason`` and
        ``damaged_after_frame`` say after which frame). ``found_by`` tells which
        look found a crop's face, ``second_look`` which second look a frame got.
    """
    import concurrent.futures

    import pandas as pd

    from .data_sources import load_dataset

    dataset_dir = Path(dataset_dir)
    settings = face_settings(profile, **overrides)
    out_dir = faces_dir(dataset_dir, profile, **overrides)
    parts_dir = out_dir / "parts"
    parts_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "settings.json").write_text(json.dumps({"profile": profile, **content_key(settings),
                                                       "dataset": str(dataset_dir.resolve())}, indent=2))
    videos = load_dataset(dataset_dir, probe=False).to_dict("records")
    names = [v["name"] for v in videos]

    def done(video) -> bool:
        part = parts_dir / f"{crop_folder_name(video['name'])}.parquet"
        if not part.exists():
            return False
        size = Path(video["path"]).stat().st_size if Path(video["path"]).exists() else -1
        try:
            recorded = pd.read_parquet(part, columns=["video_path", "video_bytes", "second_look"]).iloc[0]
        except Exception:  # an old (made before second looks) or damaged part: redo the video
            return False
        # the same file, unchanged (another dataset folder of the same name must not reuse these crops)
        return recorded["video_path"] == str(video["path"]) and int(recorded["video_bytes"]) == int(size)

    todo = [v for v in videos if not done(v)]
    manifest = out_dir / MANIFEST_NAME
    if not todo and manifest.exists():
        existing = pd.read_parquet(manifest, columns=["video"])["video"]
        if list(dict.fromkeys(existing)) == names:
            return manifest
    if todo:
        detector = FaceDetector(device=settings["device"], crop_size=settings["crop_size"],
                                margin=settings["margin"], detect_size=settings["detect_size"],
                                min_face_size=settings["min_face_size"], thresholds=settings["thresholds"],
                                batch_size=settings["batch_size"], recover=settings["recover"],
                                confident=settings["confident"], smallest_face=settings["smallest_face"])
        bar = None
        if settings["progress"]:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(todo), desc=f"Faces ({profile}, {detector.device.type})", unit="video")
        n_frames, backend = int(settings["frames_per_video"]), settings["backend"]
        plan = reading_plan(detector.device.type)
        depth = max(2 * detector.batch_size, 16)  # decoded frames allowed to wait, per video being read
        load = ReaderLoad()
        streams = [FrameStream(v["path"], n_frames, backend, plan["threads"], depth, load) for v in todo]
        with concurrent.futures.ThreadPoolExecutor(max_workers=plan["readers"],
                                                   thread_name_prefix="video-reader") as readers:
            try:
                for stream in streams[:plan["readers"]]:
                    stream.future = readers.submit(stream.read)
                tick = time.perf_counter()
                for k, (video, stream) in enumerate(zip(todo, streams)):
                    if k + plan["readers"] < len(streams):  # keep the readers busy with the next videos
                        ahead = streams[k + plan["readers"]]
                        ahead.future = readers.submit(ahead.read)
                    outcome = detect_stream(stream, detector)
                    rows = video_rows(video, outcome, out_dir)
                    now = time.perf_counter()
                    size = Path(video["path"]).stat().st_size if Path(video["path"]).exists() else -1
                    for row in rows:
                        row["video_seconds"] = now - tick  # wall-clock time this video added to the run
                        row["read_seconds"] = outcome.read_seconds
                        row["video_path"] = str(video["path"])
                        row["video_bytes"] = size
                    tick = now
                    write_parquet(pd.DataFrame(rows), parts_dir / f"{crop_folder_name(video['name'])}.parquet")
                    if outcome.status != "read":
                        warnings.warn(f"{video['name']}: {outcome.reason}", stacklevel=2)
                    elif outcome.damaged_after is not None:
                        warnings.warn(f"{video['name']}: {outcome.damage}", stacklevel=2)
                    if bar is not None:
                        bar.update(1)
            finally:  # on an error or Ctrl-C here, readers still at work stop at their next frame
                for stream in streams:
                    stream.cancelled.set()
        if bar is not None:
            bar.close()
    df = assemble_manifest(out_dir, names)
    write_parquet(df, manifest)
    frames = df[df["status"].isin(["ok", "no_face"])]
    bad = df.loc[df["status"].isin(["unreadable", "missing_file"]), "video"].nunique()
    damaged = df.loc[df["status"] == "damaged", "video"].nunique()
    print(f"{len(names)} videos -> {int((df['status'] == 'ok').sum())} face crops from {len(frames)} frames read"
          f" ({(frames['status'] == 'ok').mean() if len(frames) else 0:.1%} with a face); "
          f"{bad} video(s) could not be read" + (f", {damaged} damaged part-way (the frames before the damage "
                                                 "were kept)" if damaged else "") + f". Manifest: {manifest}")
    return manifest
