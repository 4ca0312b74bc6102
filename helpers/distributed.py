"""Face extraction and scoring of a whole dataset with Ray Data, on this machine or on a cluster.

The course's :func:`helpers.faces.extract_faces` runs on one machine: two
reader threads decode videos while one MTCNN detects faces. The full DFDC
training set (119,000 videos, 470 GB) needs more than one machine. This module
runs the *same* functions as a `Ray Data <https://docs.ray.io/en/latest/data/>`_
pipeline, which streams work through stages spread over every machine of a
Ray cluster (or over the cores of a laptop, with no cluster at all)::

    videos ──► read frames ──► detect faces ──► write crops + manifest part
              (CPU tasks)     (actors: one      (CPU tasks)
                               MTCNN each,
                               GPU if any)

* A **task** is a function call Ray runs wherever a CPU is free; reading a
  video needs no state, so each video's frames are decoded by a task.
* An **actor** is a worker process that keeps its state between calls. Loading
  MTCNN (or a classifier) takes seconds, so a fixed pool of actors each loads
  it once and then processes video after video. On a GPU cluster each actor
  holds a GPU, or a fraction of one (``gpus_per_worker=0.5``: two actors share it).
* Ray Data **streams**: while one video is being detected, the next are being
  decoded, and a full stage makes the one before it wait (back-pressure), so
  memory stays bounded whatever the size of the dataset.

The stages call the course's own code: the read stage runs the reader that
``extract_faces`` uses in its threads, the detection stage runs the same
per-batch detection on those frames, the write stage builds the same manifest
rows and crops. So the merged manifest has exactly the columns and meaning of
``extract_faces``'s, every later notebook can read it, and a video done by one
is skipped by the other (each video's rows are one file in ``parts/``).

:func:`score_videos` then scores every face with a trained checkpoint (an
actor pool holding the model), combines a video's faces with a video rule and
writes ``submission.csv`` in the DFDC competition's format.

Local by default: :func:`start_ray` with no address starts Ray on this machine
with its cores, its temporary files under the course's data folder. With
``address=`` (or the ``RAY_ADDRESS`` environment variable) it connects to a
running cluster instead; the course's environment must be installed on every
node, and ``out_dir`` must be a folder all nodes can write (shared storage).
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import pickle
import platform
import signal
import sys
import tempfile
import time
import uuid
import warnings
from pathlib import Path

import numpy as np

from . import config, safe_io

#: Environment variable that names a Ray cluster to connect to (Ray's own convention).
ADDRESS_VARIABLE = "RAY_ADDRESS"
#: Marks every process of a local Ray started here, so that :func:`stop_ray` can check none is left.
SESSION_VARIABLE = "DEEPFAKE_RAY_SESSION"
#: Object store of a local Ray (MiB): enough for a few 1080p videos' frames in flight; more spills to disk.
DEFAULT_OBJECT_STORE_MB = 2048
#: CPU share a read task asks for. Less than an actor's, so that Ray never fuses the two stages
#: into one process and decoding goes on while the actors detect.
READ_TASK_CPUS = 0.25
#: CPU share a write task asks for (it mostly waits for the disk).
WRITE_TASK_CPUS = 0.1
#: What a video without any face gets in a submission: no evidence either way.
NO_FACE_SCORE = 0.5
SUBMISSION_NAME = "submission.csv"

#: How long a local Ray keeps an idle worker process for the next task (ms). Ray's default, one
#: second, ends the processes between two pipeline runs and even between two batches, and every
#: new one costs about 3 CPU-seconds to start: on a 2-core machine that was most of the CPU a
#: 2-worker run used (measured with per-process CPU times, see notebook 08's section 3).
IDLE_WORKER_KEEP_MS = 600_000
#: Idle worker processes a local Ray keeps at least (Ray's default: as many as it has CPUs; a run
#: here has up to 2 readers per worker, the workers and a writer in flight).
MIN_IDLE_WORKERS = 8
#: Set to "0" to start a local Ray without :data:`RAY_PROCESS_SITE` (see :func:`_process_site_dir`).
FAST_START_VARIABLE = "DEEPFAKE_RAY_FAST_START"
#: Loaded by every Python process of a local Ray (through PYTHONPATH) when fast start is on.
RAY_PROCESS_SITE = '''"""Written by helpers.distributed for the processes of a local Ray; safe to delete.

Every Ray process imports jsonschema, and jsonschema imports rfc3987-syntax when it is
installed (Jupyter installs it): that package compiles a grammar at import, about 2 CPU
seconds per process, which Ray never uses. With it hidden, jsonschema skips the optional
IRI check it serves, and a Ray process starts 4-5 times faster.
"""
import sys

sys.modules.setdefault("rfc3987_syntax", None)
'''

_session: dict = {"started_here": False, "token": None, "address": None}


# ----------------------------------------------------------------------------------------------
# Starting and stopping Ray


def ray_temp_dir() -> Path:
    """Where a local Ray keeps its logs, sockets and session files: ``<data_dir>/ray``.

    Ray puts Unix sockets under this folder, and a socket path may not exceed 107
    characters; for a data folder deep in the file system the temporary folder of
    the system is used instead (with a note).
    """
    folder = config.data_dir() / "ray"
    # <folder>/session_2026-01-01_12-00-00_123456_12345/sockets/plasma_store is about 62 characters more
    if len(str(folder)) > 44:
        fallback = Path(tempfile.gettempdir()) / f"deepfake-ray-{os.getuid() if hasattr(os, 'getuid') else 'user'}"
        print(f"Note: {folder} is too long a path for Ray's sockets; Ray's temporary files go to {fallback}.")
        folder = fallback
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _quiet_ray_data() -> None:
    """Our own progress bar instead of Ray Data's, and no banner at each run."""
    import ray.data

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)  # "progress bars disabled"


def start_ray(address: str | None = None, num_cpus: int | None = None, num_gpus: int | None = None,
              object_store_mb: int | None = None, attempts: int = 2) -> dict:
    """Start Ray on this machine, or connect to a cluster; returns :func:`cluster_summary`.

    Args:
        address: a running cluster ("ray://host:10001" or "host:6379"); None = the
            ``RAY_ADDRESS`` environment variable, and without it a local Ray.
        num_cpus, num_gpus: what a local Ray may use (None: all the machine has).
        object_store_mb: a local Ray's shared-memory object store (None:
            :data:`DEFAULT_OBJECT_STORE_MB`); objects that do not fit spill to
            ``<data_dir>/ray/spill``.
        attempts: a local start is tried this many times. Ray gives its helper
            processes a fixed 15 s to come up, which a very busy machine can miss.

    Calling it again while Ray runs changes nothing. Stop with :func:`stop_ray`.
    """
    import ray

    if ray.is_initialized():
        return cluster_summary()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage report sent from a classroom
    address = address or os.environ.get(ADDRESS_VARIABLE) or None
    if address:
        # ship this package to the cluster's workers; its dependencies must be installed there
        ray.init(address=address, logging_level=logging.WARNING,
                 runtime_env={"py_modules": [str(Path(__file__).resolve().parent)]})
        _session.update(started_here=False, token=None, address=address)
    else:
        _start_local(num_cpus, num_gpus, object_store_mb, attempts)
    _quiet_ray_data()
    return cluster_summary()


def _process_site_dir() -> Path | None:
    """A folder whose ``sitecustomize.py`` (:data:`RAY_PROCESS_SITE`) the local Ray's processes load.

    Ray starts about eight Python processes and one per worker, each importing
    Ray, which imports jsonschema, which imports rfc3987-syntax if installed:
    measured here, ``import ray`` took 3.4 CPU-s with it and 0.7 without, and on
    a busy machine Ray's helper processes then miss the 15 s Ray gives them.
    None (nothing to do) when that package is absent, when this Python already
    has a ``sitecustomize`` of its own (it would be shadowed), or when
    ``DEEPFAKE_RAY_FAST_START=0``.
    """
    import importlib.util

    if os.environ.get(FAST_START_VARIABLE, "1") == "0" or "sitecustomize" in sys.modules:
        return None
    if importlib.util.find_spec("rfc3987_syntax") is None or importlib.util.find_spec("sitecustomize") is not None:
        return None
    folder = config.data_dir() / "ray" / "process_site"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(RAY_PROCESS_SITE)
    return folder


@contextlib.contextmanager
def _environment(**changes):
    """Environment variables set for the block (None removes one), restored after it."""
    before = {name: os.environ.get(name) for name in changes}
    for name, value in changes.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _start_local(num_cpus, num_gpus, object_store_mb, attempts: int) -> None:
    import ray

    temp_dir = ray_temp_dir()
    spill_dir = config.data_dir() / "ray" / "spill"
    spill_dir.mkdir(parents=True, exist_ok=True)
    site = _process_site_dir()
    python_path = os.environ.get("PYTHONPATH")
    if site is not None:
        python_path = os.pathsep.join([str(site)] + ([python_path] if python_path else []))
    for attempt in range(1, max(1, int(attempts)) + 1):
        token = uuid.uuid4().hex
        # inherited by every process this Ray starts (and by no other); Ray reads RAY_<setting> at start
        keep = {"RAY_idle_worker_killing_time_threshold_ms": str(IDLE_WORKER_KEEP_MS),
                "RAY_num_workers_soft_limit": str(max(MIN_IDLE_WORKERS, int(num_cpus or os.cpu_count() or 1)))}
        keep = {name: os.environ.get(name, value) for name, value in keep.items()}  # yours win
        with _environment(**{SESSION_VARIABLE: token, "PYTHONPATH": python_path, **keep}):
            try:
                ray.init(num_cpus=num_cpus or os.cpu_count(), num_gpus=num_gpus, include_dashboard=False,
                         object_store_memory=int(object_store_mb or DEFAULT_OBJECT_STORE_MB) * 2**20,
                         _temp_dir=str(temp_dir), object_spilling_directory=str(spill_dir),
                         logging_level=logging.WARNING)
                _session.update(started_here=True, token=token, address=None)
                return
            except Exception as error:  # a failed start leaves helper processes behind: stop them
                with contextlib.suppress(Exception):
                    ray.shutdown()
                _terminate(session_processes(token))
                if attempt >= attempts:
                    raise RuntimeError(
                        f"Ray did not start on this machine ({error}). Its helper processes must come up "
                        f"within 15 s, which a very busy machine can miss: close other programs and try "
                        f"again. Ray's logs are in {temp_dir}.") from error
                print(f"Ray did not start (attempt {attempt} of {attempts}: {error}); trying again.")


def cluster_summary() -> dict:
    """What the running Ray offers: mode ("local" or "cluster"), nodes, CPUs, GPUs, address."""
    import ray

    resources = ray.cluster_resources()
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    return {"mode": "local" if _session["started_here"] else "cluster", "address": _session["address"],
            "nodes": len(nodes), "cpus": float(resources.get("CPU", 0)), "gpus": float(resources.get("GPU", 0)),
            "object_store_mb": round(float(resources.get("object_store_memory", 0)) / 2**20)}


def session_processes(token: str | None = None) -> list:
    """Process ids of the local Ray started by :func:`start_ray` (found by the variable they inherit).

    Linux only (it reads ``/proc``); elsewhere an empty list.
    """
    token = token or _session["token"]
    proc = Path("/proc")
    if not token or not proc.is_dir():
        return []
    marker = f"{SESSION_VARIABLE}={token}".encode()
    found = []
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:  # gone meanwhile, or not ours
            continue
    return found


def _terminate(pids: list, grace_s: float = 5.0) -> list:
    """SIGTERM these processes, SIGKILL what still runs after ``grace_s``; returns the pids signalled."""
    signalled = []
    for sig, wait_s in ((signal.SIGTERM, grace_s), (getattr(signal, "SIGKILL", signal.SIGTERM), 1.0)):
        alive = [pid for pid in pids if _alive(pid)]
        for pid in alive:
            with contextlib.suppress(OSError):
                os.kill(pid, sig)
                signalled.append(pid)
        deadline = time.monotonic() + wait_s
        while alive and time.monotonic() < deadline:
            time.sleep(0.1)
            alive = [pid for pid in alive if _alive(pid)]
        pids = alive
    return sorted(set(signalled))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    status = Path(f"/proc/{pid}/status")
    with contextlib.suppress(OSError):
        if "\nState:\tZ" in status.read_text():  # a zombie: finished, waiting to be reaped
            return False
    return True


def stop_ray(wait_s: float = 20.0) -> dict:
    """Shut Ray down (or disconnect from a cluster); a local Ray's processes are waited for.

    Returns ``{"left_running": [...], "terminated": [...]}``: processes of the local
    Ray that had not exited ``wait_s`` after the shutdown are terminated, and named.
    """
    import ray

    token, local = _session["token"], _session["started_here"]
    if ray.is_initialized():
        ray.shutdown()
    _session.update(started_here=False, token=None, address=None)
    if not local:
        return {"left_running": [], "terminated": []}
    deadline = time.monotonic() + wait_s
    left = session_processes(token)
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = [pid for pid in left if _alive(pid)]
    terminated = _terminate(left) if left else []
    return {"left_running": left, "terminated": terminated}


@contextlib.contextmanager
def ray_running(address: str | None = None, **options):
    """``with ray_running(): ...``: Ray for the block; stopped after it only if it was started here."""
    import ray

    already = ray.is_initialized()
    start_ray(address, **options)
    try:
        yield cluster_summary()
    finally:
        if not already:
            stop_ray()


# ----------------------------------------------------------------------------------------------
# Which videos


def list_videos(folder) -> list:
    """The videos of a folder as records (name, path, label, target, split, original).

    A folder with ``metadata.json`` (made by :func:`helpers.data_sources.prepare_dataset`,
    or a DFDC part) is read with :func:`helpers.data_sources.load_dataset`. Any other
    folder is searched for videos; a video under a ``real/`` or ``fake/`` folder gets
    that label, any other (the DFDC test set) ``label=None`` and ``target=-1``.
    """
    from . import data_sources, video_frames

    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder of videos.")
    if (folder / "metadata.json").exists():
        table = data_sources.load_dataset(folder, probe=False)
        return [{"name": r["name"], "path": r["path"], "label": r["label"], "target": int(r["target"]),
                 "split": r["split"], "original": r["original"]} for r in table.to_dict("records")]
    records = []
    for path in sorted(p for p in folder.rglob("*") if p.suffix.lower() in video_frames.VIDEO_EXTENSIONS
                       and p.is_file()):
        parts = {part.lower() for part in path.relative_to(folder).parts[:-1]}
        label = "FAKE" if "fake" in parts else "REAL" if "real" in parts else None
        records.append({"name": path.relative_to(folder).as_posix(), "path": str(path.resolve()), "label": label,
                        "target": {"FAKE": 1, "REAL": 0}.get(label, -1), "split": "test", "original": None})
    if not records:
        raise FileNotFoundError(f"No videos ({', '.join(video_frames.VIDEO_EXTENSIONS)}) in {folder}.")
    return records


def _part_path(out_dir: Path, name: str) -> Path:
    from . import crop_manifest

    return out_dir / "parts" / f"{crop_manifest.crop_folder_name(name)}.parquet"


def _part_is_current(out_dir: Path, video: dict) -> bool:
    """True when this video's manifest part exists and was made from this very file (same path and size).

    The test ``extract_faces`` applies before skipping a video, so both skip the same ones.
    """
    import pandas as pd

    part = _part_path(out_dir, video["name"])
    if not part.exists():
        return False
    path = Path(video["path"])
    size = path.stat().st_size if path.exists() else -1
    try:
        recorded = pd.read_parquet(part, columns=["video_path", "video_bytes"]).iloc[0]
    except Exception:  # damaged or from an older version: do the video again
        return False
    return recorded["video_path"] == str(video["path"]) and int(recorded["video_bytes"]) == int(size)


# ----------------------------------------------------------------------------------------------
# The three stages of the extraction


class ReaderReplay:
    """What a video's reader sent, played back to the course's detection loop.

    ``faces`` reads a video in a thread that hands over messages ("info", then
    one "frame" at a time, then "end" or why it stopped); here a Ray task made
    them and the detection actor replays them, so it runs the same code.
    """

    def __init__(self, messages: list):
        from helpers import faces

        self.messages = list(messages)
        self.load = faces.ReaderLoad()
        self.load.busy = os.cpu_count() or 1  # no reader shares this process: the detector's own threads

    def next_message(self):
        if not self.messages:  # cannot happen with the course's reader, which always ends with a verdict
            return ("unreadable", "the read stage sent no verdict for this video")
        return self.messages.pop(0)


def read_video_stage(row: dict, frames_per_video: int, backend: str = "pyav", decode_threads: int = 2) -> dict:
    """Stage 1 (a Ray task per video): probe the video, decode its sampled frames.

    Runs the reader ``extract_faces`` runs in its threads; a corrupt or missing
    file becomes a message saying so, not an error. The frames travel to the
    detection stage through Ray's object store.
    """
    from . import faces

    video = json.loads(row["video"])
    start, cpu = time.perf_counter(), time.process_time()
    # room for every message, so the reader never waits for a consumer
    stream = faces.FrameStream(video["path"], frames_per_video, backend, decode_threads,
                                depth=int(frames_per_video) + 8)
    stream.read()
    messages = []
    while not stream.queue.empty():
        messages.append(stream.queue.get_nowait())
    payload = pickle.dumps(messages, protocol=pickle.HIGHEST_PROTOCOL)
    return {"video": row["video"], "messages": payload, "read_seconds": time.perf_counter() - start,
            "read_cpu_s": time.process_time() - cpu}


class FaceDetectionStage:
    """Stage 2 (a pool of Ray actors): one MTCNN per actor, loaded once, then video after video.

    Ray Data calls it with a batch of rows (here one video each): the pickled
    messages of the read stage in, the pickled detections out.
    """

    def __init__(self, detector_options: dict, device: str = "cpu", threads: int = 1):
        from helpers import face_detector  # (absolute imports: notebook 08 ships its own copy of this class)

        self.detector = face_detector.FaceDetector(device=device, threads=threads, **detector_options)
        self.worker = f"{platform.node()}:{os.getpid()}"
        self.start_cpu_s = time.process_time()  # what starting this process and loading MTCNN cost

    def __call__(self, batch: dict) -> dict:
        from helpers import faces

        outcomes, seconds, cpu = [], [], []
        for messages in batch["messages"]:
            start, cpu_start = time.perf_counter(), time.process_time()
            replay = ReaderReplay(pickle.loads(messages))
            outcome = faces.detect_stream(replay, self.detector)
            outcomes.append(pickle.dumps(outcome, protocol=pickle.HIGHEST_PROTOCOL))
            seconds.append(time.perf_counter() - start)
            cpu.append(time.process_time() - cpu_start)
        n = len(outcomes)
        rest = {k: v for k, v in batch.items() if k != "messages"}  # the frames stop here
        return {**rest, "outcome": np.array(outcomes, dtype=object),
                "detect_seconds": np.array(seconds), "detect_cpu_s": np.array(cpu),
                "worker": np.array([self.worker] * n), "worker_start_cpu_s": np.array([self.start_cpu_s] * n)}


def write_video_stage(row: dict, out_dir: str) -> dict:
    """Stage 3 (a Ray task per video): the video's crops and its manifest part, as ``extract_faces`` writes them."""
    import pandas as pd

    from . import crop_manifest, faces

    start, cpu = time.perf_counter(), time.process_time()
    video, outcome, out = json.loads(row["video"]), pickle.loads(row["outcome"]), Path(out_dir)
    rows = faces.video_rows(video, outcome, out)
    size = Path(video["path"]).stat().st_size if Path(video["path"]).exists() else -1
    work = float(row["read_seconds"]) + float(row["detect_seconds"]) + time.perf_counter() - start
    for r in rows:
        r["video_seconds"] = work  # here: seconds of work spent on this video (videos run side by side)
        r["read_seconds"] = float(row["read_seconds"])
        r["video_path"] = str(video["path"])
        r["video_bytes"] = size
        r["worker"] = str(row["worker"])
    part = _part_path(out, video["name"])
    part.parent.mkdir(parents=True, exist_ok=True)
    crop_manifest.write_parquet(pd.DataFrame(rows), part)
    note = outcome.reason or getattr(outcome, "damage", "") or ""  # why nothing, or where it broke off
    return {"video": video["name"], "status": outcome.status, "reason": note,
            "faces": sum(r["status"] == "ok" for r in rows), "frames": len(rows), "seconds": work,
            "finished_at": time.time(), "worker": str(row["worker"]), "read_cpu_s": float(row["read_cpu_s"]),
            "detect_cpu_s": float(row["detect_cpu_s"]), "write_cpu_s": time.process_time() - cpu,
            "worker_start_cpu_s": float(row["worker_start_cpu_s"])}


# ----------------------------------------------------------------------------------------------
# Planning the workers


def plan_workers(workers: int | None = None, device: str = "auto", gpus_per_worker: float | None = None,
                 threads_per_worker: int | None = None, resources: dict | None = None) -> dict:
    """How many detection (or scoring) actors, on which device, with which share of the cluster.

    With GPUs (and ``device`` "auto" or "cuda") each actor holds ``gpus_per_worker``
    of a GPU (default 1; 0.5 puts two actors on each GPU). On CPUs only, ``workers``
    defaults to one actor per core; each asks for a little less than its share of
    the CPUs, so that read and write tasks always find room (with a full share, two
    1-CPU actors on a 2-CPU machine would leave the read stage waiting forever), and
    runs PyTorch on ``threads_per_worker`` threads (default: its share of the cores).
    """
    resources = resources or cluster_summary()
    cpus, gpus = max(1.0, float(resources.get("cpus", 1))), float(resources.get("gpus", 0))
    device = (device or "auto").lower()
    if device.startswith("cuda") and gpus <= 0:
        raise RuntimeError("device='cuda' was asked for, but the Ray cluster has no GPU. Use device='auto'.")
    if gpus > 0 and device in ("auto", "cuda") and gpus_per_worker != 0:
        share = float(gpus_per_worker or 1.0)
        count = int(workers or max(1, int(gpus / share)))
        return {"workers": count, "device": "cuda", "num_gpus": share, "num_cpus": 1.0, "threads": 1,
                "readers": 2 * count, "decode_threads": 2}
    count = int(workers or max(1, int(cpus)))
    readers = count + 1  # one video decoded ahead per actor, and one more
    room = cpus - readers * READ_TASK_CPUS - WRITE_TASK_CPUS
    return {"workers": count, "device": "cpu", "num_gpus": 0.0, "num_cpus": round(max(0.1, min(1.0, room / count)), 3),
            "threads": int(threads_per_worker or max(1, int(cpus // count))), "readers": readers,
            "decode_threads": min(2, int(cpus))}


def _detector_options(settings: dict) -> dict:
    """The face settings FaceDetector takes (whatever the faces module adds later is passed on too)."""
    import inspect

    from . import face_detector

    accepted = set(inspect.signature(face_detector.FaceDetector).parameters) - {"device", "threads"}
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in settings.items() if k in accepted}


# ----------------------------------------------------------------------------------------------
# The extraction pipeline


def extract_faces_distributed(dataset_dir, profile: str = "standard", *, out_dir=None, workers: int | None = None,
                              gpus_per_worker: float | None = None, threads_per_worker: int | None = None,
                              address: str | None = None, detection_stage=None, timings: dict | None = None,
                              **overrides) -> Path:
    """:func:`helpers.faces.extract_faces` as a Ray Data pipeline; returns the manifest's path.

    Args:
        dataset_dir: a folder of videos (see :func:`list_videos`).
        profile, overrides: the face settings, exactly as for ``extract_faces``
            (``frames_per_video``, ``crop_size``, ..., ``backend``, ``progress``).
        out_dir: where crops and manifest go; None = ``faces.faces_dir(...)``, the folder
            ``extract_faces`` uses, so either one continues what the other did.
        workers: detection actors (None: one per GPU, or one per CPU core).
        gpus_per_worker: the GPU share of each actor on a GPU cluster (0 = use CPUs only).
        threads_per_worker: PyTorch threads of each CPU actor (None: its share of the cores).
        address: a Ray cluster; None = the running Ray, ``RAY_ADDRESS``, or a local Ray
            (started for this call and stopped after it).
        detection_stage: the actor class (None: :class:`FaceDetectionStage`).
        timings: a dict filled with what the run measured (seconds, videos, workers ...).

    Videos whose part is already written are skipped; a corrupt video gets its
    status row and the others go on. If detection itself fails on a video, the
    other videos are finished and written, then the error is raised (run again
    to retry the failed ones).
    """
    import pandas as pd

    from . import crop_manifest, faces

    dataset_dir = Path(dataset_dir)
    settings = faces.face_settings(profile, **overrides)
    out = Path(out_dir) if out_dir is not None else faces.faces_dir(dataset_dir, profile, **overrides)
    (out / "parts").mkdir(parents=True, exist_ok=True)
    content = faces.content_key(settings)
    (out / "settings.json").write_text(json.dumps({"profile": profile, **content,
                                                   "dataset": str(dataset_dir.resolve())}, indent=2))
    videos = list_videos(dataset_dir)
    names = [v["name"] for v in videos]
    todo = [v for v in videos if not _part_is_current(out, v)]
    timings = timings if timings is not None else {}
    timings.update(videos=len(videos), todo=len(todo), seconds=0.0, workers=0)
    manifest = out / crop_manifest.MANIFEST_NAME
    if todo:
        with ray_running(address):
            plan = plan_workers(workers, settings["device"], gpus_per_worker, threads_per_worker)
            _run_extraction(todo, settings, out, plan, detection_stage, timings)
    elif manifest.exists() and list(dict.fromkeys(pd.read_parquet(manifest, columns=["video"])["video"])) == names:
        return manifest
    df = crop_manifest.assemble_manifest(out, names)
    crop_manifest.write_parquet(df, manifest)
    frames = df[df["status"].isin(["ok", "no_face"])]
    bad = df.loc[df["status"].isin(["unreadable", "missing_file"]), "video"].nunique()
    print(f"{len(names)} videos -> {int((df['status'] == 'ok').sum())} face crops from {len(frames)} frames read "
          f"({(frames['status'] == 'ok').mean() if len(frames) else 0:.1%} with a face); {bad} video(s) could not "
          f"be read. Manifest: {manifest}")
    return manifest


def _run_extraction(todo, settings, out: Path, plan: dict, detection_stage, timings: dict) -> None:
    import ray.data

    timings.update(workers=plan["workers"], device=plan["device"], plan=plan)
    context = ray.data.DataContext.get_current()
    context.max_errored_blocks = len(todo)  # one failing video must not stop the others
    items = [{"video": json.dumps(v, default=str)} for v in todo]
    pipeline = (
        ray.data.from_items(items, override_num_blocks=min(len(items), 1000))
        .map(read_video_stage, fn_kwargs={"frames_per_video": int(settings["frames_per_video"]),
                                          "backend": settings["backend"], "decode_threads": plan["decode_threads"]},
             num_cpus=READ_TASK_CPUS, compute=ray.data.TaskPoolStrategy(size=min(plan["readers"], len(items))))
        .map_batches(detection_stage or FaceDetectionStage, batch_size=1,
                     fn_constructor_kwargs={"detector_options": _detector_options(settings),
                                            "device": plan["device"], "threads": plan["threads"]},
                     compute=ray.data.ActorPoolStrategy(size=plan["workers"]),
                     num_cpus=plan["num_cpus"], num_gpus=plan["num_gpus"] or None)
        .map(write_video_stage, fn_kwargs={"out_dir": str(out)}, num_cpus=WRITE_TASK_CPUS)
    )
    bar = None
    if settings["progress"]:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(todo), unit="video",
                   desc=f"Faces on Ray ({plan['workers']} x {plan['device']})")
    done, start, started_at = [], time.perf_counter(), time.time()
    try:
        for result in pipeline.iter_rows():
            done.append(result)
            if result["reason"]:
                warnings.warn(f"{result['video']}: {result['reason']}", stacklevel=3)
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    timings.update(_timing_summary(done, time.perf_counter() - start, started_at))
    failed = sorted({v["name"] for v in todo} - {r["video"] for r in done})
    if failed:
        raise RuntimeError(f"Face detection failed on {len(failed)} video(s) ({', '.join(failed[:5])}"
                           f"{' ...' if len(failed) > 5 else ''}); the other {len(done)} were written. Run "
                           "again to retry the failed ones; Ray's error is printed above.")


def _timing_summary(done: list, seconds: float, started_at: float) -> dict:
    """Wall time; the steady rate (videos finished once every worker had finished one, per second
    since then); and CPU seconds: spent on the videos, and spent starting the workers."""
    finished = sorted(r["finished_at"] for r in done)
    first_latency = finished[0] - started_at if finished else float("nan")
    ready = max((min(r["finished_at"] for r in done if r["worker"] == w) for w in {r["worker"] for r in done}),
                default=float("nan"))  # every worker is up and has finished a video
    after = [t for t in finished if t > ready]
    if len(after) < 2:  # too few videos for that: from the first video on
        ready, after = (finished[0], finished[1:]) if len(finished) > 1 else (float("nan"), [])
    steady = len(after) / (after[-1] - ready) if after and after[-1] > ready else float("nan")
    starts = {r["worker"]: r["worker_start_cpu_s"] for r in done}
    return {"seconds": seconds, "done": len(done), "first_video_s": first_latency, "steady_videos_per_s": steady,
            "work_seconds": float(sum(r["seconds"] for r in done)), "per_worker": _count_by(done, "worker"),
            "cpu_seconds": float(sum(r[k] for r in done for k in ("read_cpu_s", "detect_cpu_s", "write_cpu_s"))),
            "detect_cpu_seconds": float(sum(r["detect_cpu_s"] for r in done)),
            "worker_start_cpu_seconds": float(sum(starts.values()))}


def _count_by(rows: list, key: str) -> dict:
    counts: dict = {}
    for r in rows:
        counts[r[key]] = counts.get(r[key], 0) + 1
    return counts


# ----------------------------------------------------------------------------------------------
# Scoring: a checkpoint judges every video


class FaceScoringStage:
    """A pool of Ray actors, each holding the trained classifier: face crops in, P(fake) out."""

    def __init__(self, checkpoint: str, device: str = "cpu", threads: int = 1):
        import torch

        from . import inference

        if device == "cpu":
            torch.set_num_threads(max(1, int(threads)))
        self.predictor = inference.load_predictor(checkpoint, device=device)

    def __call__(self, batch: dict) -> dict:
        from helpers import crop_manifest

        crops = [crop_manifest.read_crop(path) for path in batch["crop_path"]]
        batch = batch.copy()
        batch["prob_fake"] = self.predictor.score_faces(crops)
        return batch


def _checkpoint_id(path: Path) -> str:
    stat = path.stat()
    return f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"


def scores_dir(data_path, profile: str, checkpoint: Path) -> Path:
    """Default output folder of :func:`score_videos`: ``<data_dir>/scores/<folder>/<profile>-<checkpoint>``."""
    return config.data_dir() / "scores" / Path(data_path).resolve().name / f"{profile}-{Path(checkpoint).stem}"


def score_videos(data_path, checkpoint=None, profile: str = "standard", *, rule: str | None = None, out_dir=None,
                 workers: int | None = None, gpus_per_worker: float | None = None, address: str | None = None,
                 batch_size: int = 32, faces_dir=None, timings: dict | None = None, **face_overrides) -> dict:
    """Score every video of a folder with a trained checkpoint; write per-face, per-video and submission files.

    Faces come from :func:`extract_faces_distributed` (skipped where the manifest
    already has them), then an actor pool holding the model scores each face
    crop (``Predictor.score_faces``, as the demo does), and a video's faces are
    combined with ``rule`` (None: the checkpoint's, see ``evaluation.AGGREGATORS``).
    A video in which no face was found scores :data:`NO_FACE_SCORE`.

    Writes into ``out_dir`` (None: :func:`scores_dir`):
    ``face_scores.parquet`` (video, frame_index, crop_path, detection prob, prob_fake),
    ``video_scores.csv`` (video, label, n_faces, prob_fake, predicted, status) and
    ``submission.csv`` (``filename,label`` with label = P(FAKE), one row per video).
    Returns a dict of those paths, the rule and the counts. Faces scored before with
    the same checkpoint file are not scored again.
    """
    from . import crop_manifest, evaluation, inference, models_torch

    checkpoint = Path(checkpoint) if checkpoint else models_torch.default_checkpoint()
    if checkpoint is None:
        raise inference.NoCheckpointError(inference.no_checkpoint_message())
    probe = inference.load_predictor(checkpoint, device="cpu")  # fails early, with a message, on a bad file
    rule = rule or probe.rule
    if rule not in evaluation.AGGREGATORS:
        raise ValueError(f"Unknown video rule {rule!r}; choose from {sorted(evaluation.AGGREGATORS)}.")
    threshold = probe.threshold
    del probe
    out = Path(out_dir) if out_dir is not None else scores_dir(data_path, profile, checkpoint)
    out.mkdir(parents=True, exist_ok=True)
    timings = timings if timings is not None else {}
    with ray_running(address):
        extraction: dict = {}
        manifest = extract_faces_distributed(data_path, profile, out_dir=faces_dir, workers=workers,
                                             gpus_per_worker=gpus_per_worker, timings=extraction, **face_overrides)
        table = crop_manifest.load_manifest(manifest, only_faces=False)
        found = crop_manifest.crop_rows(table, ["video", "frame_index", "prob"])
        found = found[["video", "frame_index", "crop_path", "prob"]].rename(columns={"prob": "detection_prob"})
        scored = _score_faces(found, checkpoint, out, workers, gpus_per_worker, batch_size, timings)
    videos = _video_table(table, scored, rule, threshold, evaluation)
    submission = out / SUBMISSION_NAME
    videos[["video", "prob_fake"]].rename(columns={"video": "filename", "prob_fake": "label"}) \
        .sort_values("filename").to_csv(submission, index=False)
    videos.to_csv(out / "video_scores.csv", index=False)
    timings.update(extraction=extraction)
    print(f"Scored {len(scored)} faces of {len(videos)} videos (rule {rule!r}); {int((videos['n_faces'] == 0).sum())} "
          f"video(s) without a face got {NO_FACE_SCORE}. Submission: {submission}")
    return {"submission": submission, "video_scores": out / "video_scores.csv",
            "face_scores": out / "face_scores.parquet", "manifest": manifest, "rule": rule, "threshold": threshold,
            "checkpoint": str(checkpoint), "n_videos": len(videos), "n_faces": len(scored)}


def _score_faces(found, checkpoint: Path, out: Path, workers, gpus_per_worker, batch_size: int, timings: dict):
    """Per-face P(fake): reuse the scores of ``face_scores.parquet`` made with this checkpoint, score the rest."""
    import pandas as pd
    import ray.data

    path, key = out / "face_scores.parquet", _checkpoint_id(checkpoint)
    empty = pd.DataFrame(columns=[*found.columns, "prob_fake", "checkpoint"])
    before = pd.read_parquet(path) if path.exists() else empty
    before = before[before["checkpoint"] == key]
    keys = ["video", "frame_index", "crop_path"]
    todo = found.merge(before[keys], on=keys, how="left", indicator=True)
    todo = todo[todo["_merge"] == "left_only"].drop(columns="_merge")
    start = time.perf_counter()
    new = []
    if len(todo):
        plan = plan_workers(workers, "auto", gpus_per_worker)
        pipeline = ray.data.from_pandas(todo.reset_index(drop=True)).map_batches(
            FaceScoringStage, batch_size=int(batch_size), batch_format="pandas",
            fn_constructor_kwargs={"checkpoint": str(checkpoint), "device": plan["device"], "threads": plan["threads"]},
            compute=ray.data.ActorPoolStrategy(size=plan["workers"]), num_cpus=plan["num_cpus"],
            num_gpus=plan["num_gpus"] or None)
        from tqdm.auto import tqdm

        with tqdm(total=len(todo), unit="face", desc=f"Scoring on Ray ({plan['workers']} x {plan['device']})") as bar:
            for batch in pipeline.iter_batches(batch_format="pandas", batch_size=None):
                new.append(batch)
                bar.update(len(batch))
        timings.update(scoring_workers=plan["workers"])
    timings.update(scoring_seconds=time.perf_counter() - start, faces_scored=len(todo), faces_reused=len(before))
    scored = pd.concat([before, *[b.assign(checkpoint=key) for b in new]], ignore_index=True) if new else before
    scored = scored.merge(found[keys], on=keys)  # only faces the manifest still has
    scored = scored.sort_values(["video", "frame_index"]).reset_index(drop=True)
    with safe_io.atomic_path(path) as tmp:
        scored.to_parquet(tmp, index=False)
    return scored


def _video_table(table, scored, rule: str, threshold: float, evaluation):
    """One row per video of the manifest: its score by ``rule``, or NO_FACE_SCORE without faces."""
    import pandas as pd

    from .inference import label_of

    videos = table.groupby("video", sort=True).agg(label=("label", "first"), status=("status", "first"))
    videos["status"] = np.where(videos.index.isin(scored["video"]), "ok",
                                np.where(videos["status"].isin(["unreadable", "missing_file"]), videos["status"],
                                         "no_face"))
    if len(scored):
        per_video = evaluation.video_scores(scored, rule=rule).set_index("video")[["n_faces", "prob_fake"]]
    else:
        per_video = pd.DataFrame(columns=["n_faces", "prob_fake"])
    videos = videos.join(per_video, how="left")
    videos["n_faces"] = videos["n_faces"].fillna(0).astype(int)
    videos["prob_fake"] = videos["prob_fake"].astype(float).fillna(NO_FACE_SCORE).clip(0.0, 1.0)
    videos["predicted"] = [label_of(p, threshold) for p in videos["prob_fake"]]
    videos["rule"] = rule
    return videos.reset_index()


# ----------------------------------------------------------------------------------------------
# Measuring


def fresh_view(dataset_dir, tag: str, limit: int | None = None) -> Path:
    """A second dataset folder listing the same videos (by absolute path) under another name.

    ``extract_faces`` keys its crops by the dataset folder's name, so it starts
    from scratch on a view: the way to time it without touching the course's crops.
    ``limit``: list only that many videos, spread evenly over the name-sorted list
    (a smaller set to time; None: all of them).
    """
    from . import data_sources, metadata

    name = Path(dataset_dir).resolve().name
    view = config.data_dir() / "scale_out" / "views" / (f"{name}-{tag}" if limit is None else f"{name}-{limit}-{tag}")
    table = data_sources.load_dataset(dataset_dir, probe=False).sort_values("name").reset_index(drop=True)
    if limit is not None and 0 < limit < len(table):
        table = table.iloc[np.unique(np.linspace(0, len(table) - 1, int(limit)).round().astype(int))]
    entries = {r["name"]: {"label": r["label"], "split": r["split"], "original": r["original"], "file": r["path"]}
               for r in table.to_dict("records")}
    metadata.write_metadata(view / "metadata.json", entries)
    return view


def machine_busy_seconds() -> float:
    """CPU seconds all cores of this machine have spent busy since boot (Linux ``/proc/stat``; NaN elsewhere).

    The difference over a run, divided by its wall time, is how many cores were
    busy: with the CPU spent on the videos beside it, what the rest cost (Ray's
    own processes, the driver, starting workers, other programs).
    """
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except (OSError, IndexError):
        return float("nan")
    ticks = [int(v) for v in fields]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + waiting for input/output
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def measure_throughput(dataset_dir, profile: str = "standard", worker_counts=(1, 2), reference: bool = True,
                       threads_per_worker: int | None = 1, videos: int | None = None, **overrides) -> list:
    """Time the Ray extraction from scratch with each number of workers (and ``extract_faces``, the reference).

    Each run writes into its own scratch folder under ``<data_dir>/scale_out``
    (emptied first), on ``videos`` of the dataset's videos (spread over it, see
    :func:`fresh_view`; None: all). Ray must be running (:func:`start_ray`). Each worker runs
    PyTorch on ``threads_per_worker`` threads (1: a worker is one core's worth
    of detection, the unit a cluster adds; None: the cores are shared out).
    Returns one dict per run: engine, workers, videos, seconds (wall, including
    starting the actors), first_video_s, steady_videos_per_s (once every worker
    is up), videos_per_s, and CPU seconds per video (``cpu_s_per_video``: all
    processes' CPU time spent on the videos, which other programs on the machine
    hardly change; for ``extract_faces`` including its detector's start), the
    detection's part of it (``detect_cpu_s_per_video``) and ``start_cpu_s`` (the
    Ray workers' start-up: Python, PyTorch, MTCNN), and ``busy_cores`` / ``video_cores``:
    how many of the machine's cores were busy during the run, and how many of them
    on the videos (:func:`machine_busy_seconds`). :func:`idle_bound` turns the CPU
    costs into the rates an idle machine could reach.
    """
    import shutil

    from . import crop_manifest, faces

    overrides.setdefault("progress", False)
    if videos is not None:
        dataset_dir = fresh_view(dataset_dir, "timed", limit=videos)
    runs = []
    if reference:
        view = fresh_view(dataset_dir, "reference")
        shutil.rmtree(faces.faces_dir(view, profile, **overrides), ignore_errors=True)
        start, cpu, busy = time.perf_counter(), time.process_time(), machine_busy_seconds()
        manifest = faces.extract_faces(view, profile, **overrides)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        summary = crop_manifest.video_summary(manifest)
        added = summary["seconds"].to_numpy(dtype=float)
        runs.append({"engine": "extract_faces", "workers": 1, "videos": len(summary), "seconds": seconds,
                     "first_video_s": float(added[0]) if len(added) else float("nan"),
                     "steady_videos_per_s": (len(added) - 1) / added[1:].sum() if len(added) > 1 else float("nan"),
                     "videos_per_s": len(summary) / seconds, "cpu_s_per_video": cpu / max(1, len(summary)),
                     "detect_cpu_s_per_video": float("nan"), "start_cpu_s": float("nan"), "manifest": str(manifest),
                     "busy_cores": (machine_busy_seconds() - busy) / seconds, "video_cores": cpu / seconds})
    for count in worker_counts:
        out = config.data_dir() / "scale_out" / "throughput" / Path(dataset_dir).resolve().name / f"{profile}-{count}w"
        shutil.rmtree(out, ignore_errors=True)
        timings: dict = {}
        busy = machine_busy_seconds()
        manifest = extract_faces_distributed(dataset_dir, profile, out_dir=out, workers=count, timings=timings,
                                             threads_per_worker=threads_per_worker, **overrides)
        busy = machine_busy_seconds() - busy
        runs.append({"engine": "ray", "workers": count, "videos": timings["done"], "seconds": timings["seconds"],
                     "first_video_s": timings["first_video_s"], "steady_videos_per_s": timings["steady_videos_per_s"],
                     "videos_per_s": timings["done"] / timings["seconds"], "manifest": str(manifest),
                     "cpu_s_per_video": timings["cpu_seconds"] / max(1, timings["done"]),
                     "detect_cpu_s_per_video": timings["detect_cpu_seconds"] / max(1, timings["done"]),
                     "start_cpu_s": timings["worker_start_cpu_seconds"], "per_worker": timings["per_worker"],
                     "busy_cores": busy / timings["seconds"],
                     "video_cores": (timings["cpu_seconds"] + timings["worker_start_cpu_seconds"]) / timings["seconds"]})
    return runs


def idle_bound(run: dict, workers: int, cores: float) -> float:
    """Videos per second that ``workers`` single-threaded workers could reach on ``cores`` idle cores,
    given one run's CPU costs per video: each worker detects one video at a time (at most
    1 / detection CPU), and all stages together share the cores (at most cores / total CPU)."""
    detect, total = float(run["detect_cpu_s_per_video"]), float(run["cpu_s_per_video"])
    return min(workers / detect, float(cores) / total)


def compare_manifests(reference, other) -> dict:
    """How two manifests of the same videos differ: videos, frames and statuses equal? largest box difference (px)."""
    from . import crop_manifest

    a = crop_manifest.load_manifest(reference, only_faces=False).sort_values(["video", "frame_index"]).reset_index(drop=True)
    b = crop_manifest.load_manifest(other, only_faces=False).sort_values(["video", "frame_index"]).reset_index(drop=True)
    same_rows = a[["video", "frame_index"]].equals(b[["video", "frame_index"]])
    boxes = ["x1", "y1", "x2", "y2"]
    box_diff = float(np.nanmax(np.abs(a[boxes].to_numpy(float) - b[boxes].to_numpy(float)))) \
        if same_rows and a["status"].eq("ok").any() else float("nan")
    return {"same_videos": set(a["video"]) == set(b["video"]), "same_frames": same_rows,
            "same_statuses": same_rows and a["status"].equals(b["status"]), "max_box_diff_px": box_diff,
            "rows": len(a), "faces": int(a["status"].eq("ok").sum())}


# ----------------------------------------------------------------------------------------------
# Command line: make extract-cluster / make score


def parse_args(argv=None):
    """The command line of ``python -m helpers.distributed`` (what ``make extract-cluster`` / ``make score`` run)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m helpers.distributed",
                                     description="Face extraction and scoring of a folder of videos on Ray.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("extract", "score"):
        p = sub.add_parser(name)
        p.add_argument("data_path", help="folder of videos (with metadata.json, real/ + fake/, or just videos)")
        p.add_argument("--profile", default="standard", choices=config.PROFILES)
        p.add_argument("--address", default=None, help="Ray cluster address (default: $RAY_ADDRESS, else local)")
        p.add_argument("--workers", type=int, default=None, help="actors (default: one per GPU or CPU core)")
        p.add_argument("--gpus-per-worker", type=float, default=None, help="GPU share of each actor (0 = CPUs)")
        p.add_argument("--device", default=None, choices=["auto", "cpu", "cuda"], help="where the actors run")
        p.add_argument("--frames-per-video", type=int, default=None)
        p.add_argument("--faces-dir", default=None, help="where crops and manifest go (default: the course's)")
        if name == "score":
            p.add_argument("--checkpoint", default=None, help="a .pth file (default: notebook 04's best)")
            p.add_argument("--rule", default=None, choices=["mean", "confident"],
                           help="frame scores -> video score (default: the checkpoint's)")
            p.add_argument("--out", default=None, help="output folder (default: <data_dir>/scores/...)")
    args = parser.parse_args(argv)
    if not Path(args.data_path).expanduser().is_dir():
        parser.error(f"DATA_PATH {args.data_path!r} is not a folder: give the folder that holds the videos.")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    overrides = {"frames_per_video": args.frames_per_video, "device": args.device}
    with ray_running(args.address) as cluster:
        print(f"Ray: {cluster['mode']}, {cluster['nodes']} node(s), {cluster['cpus']:g} CPUs, {cluster['gpus']:g} GPUs")
        if args.command == "extract":
            timings: dict = {}
            extract_faces_distributed(args.data_path, args.profile, out_dir=args.faces_dir, workers=args.workers,
                                      gpus_per_worker=args.gpus_per_worker, timings=timings, **overrides)
            if timings.get("todo"):
                print(f"{timings['done']} videos in {timings['seconds']:.1f} s with {timings['workers']} worker(s).")
        else:
            result = score_videos(args.data_path, args.checkpoint, args.profile, rule=args.rule, out_dir=args.out,
                                  workers=args.workers, gpus_per_worker=args.gpus_per_worker,
                                  faces_dir=args.faces_dir, **overrides)
            print(f"submission.csv: {result['submission']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
