"""Extraction and scoring on Ray Data: same manifest as extract_faces, resumable, a valid submission, clean exit.

One local Ray serves the whole module (starting one takes seconds); the last
test stops it and checks with ``ps`` that none of its processes is left.
"""
import json
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers import crop_manifest, distributed, faces

OPTIONS = dict(frames_per_video=4, device="cpu", progress=False)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """Two face clips, a clip without a face, a corrupt file and a listed file that is missing."""
    from helpers import sample_data

    root = tmp_path_factory.mktemp("ray-dataset")
    sample_data.make_clip(root / "real.mp4", 320, 240, seconds=0.4, seed=3)
    sample_data.make_clip(root / "fake.mp4", 320, 240, seconds=0.4, fake=True, seed=3)
    sample_data.make_clip(root / "empty.mp4", 320, 240, seconds=0.4, seed=5, has_face=False)
    (root / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 20)
    (root / "metadata.json").write_text(json.dumps({
        "real.mp4": {"label": "REAL", "split": "train"},
        "fake.mp4": {"label": "FAKE", "split": "train", "original": "real.mp4"},
        "empty.mp4": {"label": "REAL", "split": "val"},
        "corrupt.mp4": {"label": "FAKE", "split": "test"},
        "gone.mp4": {"label": "REAL", "split": "test"},
    }))
    return root


@pytest.fixture(scope="module")
def reference(dataset):
    with pytest.warns(UserWarning, match="corrupt.mp4"):
        return faces.extract_faces(dataset, "smoke", **OPTIONS)


@pytest.fixture(scope="module")
def ray_cluster():
    info = distributed.start_ray(num_cpus=2)
    yield info
    distributed.stop_ray()


@pytest.fixture(scope="module")
def ray_manifest(ray_cluster, dataset, reference, tmp_path_factory):
    timings = {}
    with pytest.warns(UserWarning, match="corrupt.mp4"):
        manifest = distributed.extract_faces_distributed(dataset, "smoke", out_dir=tmp_path_factory.mktemp("ray-faces"),
                                                         workers=1, timings=timings, **OPTIONS)
    return manifest, timings


# -- without Ray ---------------------------------------------------------------------------------

def test_plan_leaves_room_for_the_read_and_write_tasks():
    two_cpus = {"cpus": 2, "gpus": 0}
    for workers in (1, 2, 3):
        plan = distributed.plan_workers(workers, "auto", resources=two_cpus)
        used = workers * plan["num_cpus"] + plan["readers"] * distributed.READ_TASK_CPUS + distributed.WRITE_TASK_CPUS
        assert plan["device"] == "cpu" and used <= 2 + 1e-9
        assert plan["num_cpus"] != distributed.READ_TASK_CPUS  # else Ray fuses reading into the actors
    assert distributed.plan_workers(None, "auto", resources=two_cpus)["workers"] == 2
    on_gpus = distributed.plan_workers(None, "auto", gpus_per_worker=0.5, resources={"cpus": 16, "gpus": 2})
    assert on_gpus["device"] == "cuda" and on_gpus["workers"] == 4 and on_gpus["num_gpus"] == 0.5
    cpus_only = distributed.plan_workers(None, "auto", gpus_per_worker=0, resources={"cpus": 16, "gpus": 2})
    assert cpus_only["device"] == "cpu" and cpus_only["workers"] == 16
    with pytest.raises(RuntimeError, match="no GPU"):
        distributed.plan_workers(None, "cuda", resources=two_cpus)


def test_idle_bound_is_detection_bound_for_one_worker_and_core_bound_for_more():
    run = {"detect_cpu_s_per_video": 1.0, "cpu_s_per_video": 1.25}
    assert distributed.idle_bound(run, 1, cores=2) == pytest.approx(1.0)  # one detector, one video at a time
    assert distributed.idle_bound(run, 2, cores=2) == pytest.approx(1.6)  # both cores, decoding included
    assert distributed.idle_bound(run, 3, cores=2) == pytest.approx(1.6)


def test_a_view_lists_the_same_videos_or_an_even_spread_of_them(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPFAKE_DATA_DIR", str(tmp_path / "data"))
    folder = tmp_path / "clips"
    folder.mkdir()
    names = [f"v{i:02d}.mp4" for i in range(10)]
    for name in names:
        (folder / name).write_bytes(b"x")
    (folder / "metadata.json").write_text(json.dumps({n: {"label": "REAL", "split": "train"} for n in names}))
    from helpers import data_sources

    def listed(view):
        return sorted(data_sources.load_dataset(view, probe=False)["name"])

    everything = distributed.fresh_view(folder, "all")
    assert listed(everything) == names and everything.parent == tmp_path / "data" / "scale_out" / "views"
    assert listed(distributed.fresh_view(folder, "some", limit=4)) == ["v00.mp4", "v03.mp4", "v06.mp4", "v09.mp4"]
    assert listed(distributed.fresh_view(folder, "more", limit=50)) == names
    assert json.loads((folder / "metadata.json").read_text()).keys() == set(names)  # the original is untouched


def test_busy_seconds_grow_while_this_process_computes():
    before, cpu = distributed.machine_busy_seconds(), time.process_time()
    total = 0
    while time.process_time() - cpu < 0.5:  # half a CPU-second of work
        total += sum(range(1000))
    busy = distributed.machine_busy_seconds() - before
    assert 0.4 <= busy  # the work above, plus whatever else ran meanwhile


def test_videos_of_a_folder_without_metadata(tmp_path):
    for relative in ("real/a.mp4", "fake/b.mp4", "c.mp4", "notes.txt"):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_bytes(b"x")
    videos = {v["name"]: v for v in distributed.list_videos(tmp_path)}
    assert sorted(videos) == ["c.mp4", "fake/b.mp4", "real/a.mp4"]
    assert (videos["real/a.mp4"]["label"], videos["fake/b.mp4"]["target"]) == ("REAL", 1)
    assert videos["c.mp4"]["label"] is None and videos["c.mp4"]["target"] == -1  # e.g. the DFDC test set
    (tmp_path / "nothing").mkdir()
    with pytest.raises(FileNotFoundError, match="No videos"):
        distributed.list_videos(tmp_path / "nothing")


def test_the_three_stages_in_one_process_make_extract_faces_rows(dataset, reference, tmp_path):
    """The stage functions without Ray: read -> detect -> write gives the rows extract_faces wrote."""
    video = next(v for v in distributed.list_videos(dataset) if v["name"] == "real.mp4")
    read = distributed.read_video_stage({"video": json.dumps(video)}, frames_per_video=4)
    detector = distributed.FaceDetectionStage(distributed._detector_options(faces.face_settings("smoke", **OPTIONS)))
    detected = detector({k: np.array([v], dtype=object) for k, v in read.items()})
    row = {k: v[0] for k, v in detected.items()}
    result = distributed.write_video_stage(row, str(tmp_path))
    assert result["status"] == "read" and result["faces"] == result["frames"] == 4
    mine = pd.read_parquet(tmp_path / "parts" / "real.mp4.parquet")
    theirs = crop_manifest.load_manifest(reference, only_faces=False).query("video == 'real.mp4'")
    assert mine["frame_index"].tolist() == theirs["frame_index"].tolist()
    np.testing.assert_allclose(mine[["x1", "y1", "x2", "y2"]], theirs[["x1", "y1", "x2", "y2"]], atol=1e-3)
    assert all((tmp_path / p).is_file() for p in mine["crop_path"])


def test_a_video_breaking_off_part_way_gets_the_rows_extract_faces_gives_it(dataset, tmp_path, monkeypatch):
    """Whatever extract_faces makes of a decoder that fails after two frames, the stages make the same."""
    from helpers import video_frames

    real_iter = video_frames.iter_frames_by_index

    def breaking_off(path, indices, *args, **kwargs):
        for k, item in enumerate(real_iter(path, indices, *args, **kwargs)):
            if Path(path).name == "fake.mp4" and k == 2:
                raise video_frames.VideoReadError("fake.mp4 could not be read as a video (cut short)")
            yield item

    monkeypatch.setattr(video_frames, "iter_frames_by_index", breaking_off)
    options = {**OPTIONS, "frames_per_video": 6}  # crops of their own (another folder)
    with pytest.warns(UserWarning):
        theirs = crop_manifest.load_manifest(faces.extract_faces(dataset, "smoke", **options), only_faces=False)
    video = next(v for v in distributed.list_videos(dataset) if v["name"] == "fake.mp4")
    read = distributed.read_video_stage({"video": json.dumps(video)}, frames_per_video=6)
    detector = distributed.FaceDetectionStage(distributed._detector_options(faces.face_settings("smoke", **options)))
    detected = detector({k: np.array([v], dtype=object) for k, v in read.items()})
    distributed.write_video_stage({k: v[0] for k, v in detected.items()}, str(tmp_path))
    mine = pd.read_parquet(tmp_path / "parts" / "fake.mp4.parquet")
    theirs = theirs[theirs["video"] == "fake.mp4"]
    assert mine[["frame_index", "status"]].values.tolist() == theirs[["frame_index", "status"]].values.tolist()
    assert mine["reason"].tolist() == theirs["reason"].tolist()


def make_dry_run(tmp_path, target, **variables) -> list:
    """The Python command ``make <target> VAR=value ...`` would run, as argv (``-n``: nothing runs or installs)."""
    import shlex
    import shutil

    if shutil.which("make") is None:
        pytest.skip("GNU make is not installed")
    venv = tmp_path / "venv"
    command = ["make", "--no-print-directory", "-n", "-o", f"{venv}/.installed", target, f"VENV={venv}",
               *(f"{k}={v}" for k, v in variables.items())]
    done = subprocess.run(command, cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.replace("\\\n", " ").splitlines() if line.startswith(f"{venv}/bin/python")]
    assert len(lines) == 1, done.stdout
    return shlex.split(lines[0])[3:]  # after "python -m helpers.distributed"


def test_make_targets_pass_their_variables(tmp_path):
    videos = tmp_path / "my videos (DFDC) it's"
    videos.mkdir()
    args = distributed.parse_args(make_dry_run(tmp_path, "extract-cluster", DATA_PATH=str(videos),
                                               RAY_ADDRESS="head:6379", WORKERS="3", PROFILE="full", DEVICE="cpu"))
    assert (args.command, args.data_path, args.address, args.workers) == ("extract", str(videos), "head:6379", 3)
    assert (args.profile, args.device) == ("full", "cpu")
    args = distributed.parse_args(make_dry_run(tmp_path, "score", DATA_PATH=str(videos), CHECKPOINT="m.pth",
                                               RULE="mean", OUT=str(tmp_path / "out")))
    assert (args.command, args.checkpoint, args.rule, args.out) == ("score", "m.pth", "mean", str(tmp_path / "out"))
    assert args.address is None and args.workers is None and args.profile == "standard"
    with pytest.raises(SystemExit):
        distributed.parse_args(["score", str(tmp_path / "nowhere")])


# -- on a local Ray ------------------------------------------------------------------------------

def test_ray_manifest_equals_extract_faces(ray_manifest, reference):
    manifest, timings = ray_manifest
    assert timings["todo"] == timings["done"] == 5
    ours = crop_manifest.load_manifest(manifest, only_faces=False)
    assert list(ours.columns[:len(crop_manifest.MANIFEST_COLUMNS)]) == crop_manifest.MANIFEST_COLUMNS
    same = distributed.compare_manifests(reference, manifest)
    assert same["same_videos"] and same["same_frames"] and same["same_statuses"]
    assert same["faces"] == 8 and same["max_box_diff_px"] <= 1e-3
    theirs = crop_manifest.load_manifest(reference, only_faces=False)
    landmarks = crop_manifest.LANDMARK_COLUMNS
    key = ["video", "frame_index"]
    both = ours.merge(theirs, on=key, suffixes=("", "_ref")).query("status == 'ok'")
    np.testing.assert_allclose(both[landmarks].to_numpy(float), both[[f"{c}_ref" for c in landmarks]].to_numpy(float),
                               atol=1e-3)
    assert all(Path(p).is_file() for p in both["crop_path"])


def test_a_corrupt_video_gets_its_status_row_and_the_rest_goes_on(ray_manifest):
    df = crop_manifest.load_manifest(ray_manifest[0], only_faces=False)
    per_video = df.groupby("video")["status"].agg(lambda s: sorted(set(s)))
    assert per_video["corrupt.mp4"] == ["unreadable"] and per_video["gone.mp4"] == ["missing_file"]
    assert "could not be read" in df.loc[df["video"] == "corrupt.mp4", "reason"].iloc[0]
    assert per_video["real.mp4"] == per_video["fake.mp4"] == ["ok"] and per_video["empty.mp4"] == ["no_face"]


def test_rerun_skips_what_is_done(ray_manifest, dataset, monkeypatch):
    manifest, _ = ray_manifest
    before = pd.read_parquet(manifest)
    timings = {}
    assert distributed.extract_faces_distributed(dataset, "smoke", out_dir=manifest.parent, timings=timings,
                                                 **OPTIONS) == manifest
    assert timings["todo"] == 0 and timings["workers"] == 0  # no pipeline started
    # as if a run had stopped before fake.mp4 was written: only that video goes to the pipeline
    part = manifest.parent / "parts" / "fake.mp4.parquet"
    written = part.read_bytes()
    part.unlink()
    handed = []

    def pipeline(todo, settings, out, plan, stage, timings):  # stands in for the Ray run, which is tested above
        handed.extend(v["name"] for v in todo)
        part.write_bytes(written)

    monkeypatch.setattr(distributed, "_run_extraction", pipeline)
    distributed.extract_faces_distributed(dataset, "smoke", out_dir=manifest.parent, **OPTIONS)
    assert handed == ["fake.mp4"]
    columns = ["video", "frame_index", "status", "crop_path", "x1", "y1", "prob"]
    pd.testing.assert_frame_equal(before[columns], pd.read_parquet(manifest)[columns])


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """An untrained small CNN: the scoring pipeline treats every registered architecture alike (notebook 08
    scores with InceptionResnetV1), and this one is built, saved and loaded by each actor in a fraction of the time."""
    from helpers import model_registry
    from helpers.reproducibility import seed_everything

    seed_everything(0)
    model = model_registry.build_model("custom_cnn", pretrained=False, image_size=64, device="cpu")
    return model_registry.save_compare_checkpoint(model, "custom_cnn", 64, epoch=0, video_rule="mean",
                                                  path=tmp_path_factory.mktemp("model") / "untrained.pth")


def test_scoring_writes_a_valid_submission(ray_cluster, ray_manifest, dataset, checkpoint, tmp_path):
    from helpers import inference

    manifest, _ = ray_manifest
    timings = {}
    result = distributed.score_videos(dataset, checkpoint, "smoke", out_dir=tmp_path, faces_dir=manifest.parent,
                                      workers=1, batch_size=3, timings=timings, **OPTIONS)
    submission = pd.read_csv(result["submission"])
    assert list(submission.columns) == ["filename", "label"]
    assert sorted(submission["filename"]) == sorted(["real.mp4", "fake.mp4", "empty.mp4", "corrupt.mp4", "gone.mp4"])
    assert submission["label"].between(0, 1).all() and result["rule"] == "mean"
    no_face = submission.set_index("filename").loc[["empty.mp4", "corrupt.mp4", "gone.mp4"], "label"]
    assert (no_face == distributed.NO_FACE_SCORE).all()

    per_face = pd.read_parquet(result["face_scores"])
    assert len(per_face) == timings["faces_scored"] == 8 and per_face["prob_fake"].between(0, 1).all()
    predictor = inference.load_predictor(checkpoint, device="cpu")
    import cv2

    crops = [cv2.cvtColor(cv2.imread(p), cv2.COLOR_BGR2RGB) for p in per_face["crop_path"]]
    np.testing.assert_allclose(per_face["prob_fake"], predictor.score_faces(crops), atol=1e-5)
    videos = pd.read_csv(result["video_scores"]).set_index("video")
    expected = per_face.groupby("video")["prob_fake"].mean()  # the checkpoint's rule, "mean"
    np.testing.assert_allclose(videos.loc[expected.index, "prob_fake"], expected, atol=1e-9)

    again = {}
    distributed.score_videos(dataset, checkpoint, "smoke", out_dir=tmp_path, faces_dir=manifest.parent,
                             workers=1, timings=again, **OPTIONS)
    assert again["faces_scored"] == 0 and again["faces_reused"] == 8  # nothing scored twice
    assert pd.read_csv(result["submission"]).equals(submission)


def test_shutdown_leaves_no_ray_process(ray_cluster):
    token = distributed._session["token"]
    temp_dir = str(distributed.ray_temp_dir())
    assert token and distributed.session_processes(token), "the local Ray's processes carry the session marker"
    stopped = distributed.stop_ray()
    # On a loaded machine a process may take longer than the wait to exit; stop_ray then ends it and says so.
    assert set(stopped["terminated"]) <= set(stopped["left_running"])
    assert distributed.session_processes(token) == []
    listing = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True, check=True).stdout
    ours = [line for line in listing.splitlines() if temp_dir in line or token in line]
    assert ours == [], "Ray processes left running:\n" + "\n".join(ours)
