"""Hostile and careless inputs, one place: each is refused with a clear message, or works.

Every case checks three things: the exception is the one the stage promises
(DatasetError, KaggleSetupError, CheckpointError, DemoInputError...), its message
names the file at fault and says what to do, and the folder the input came from
is byte-for-byte unchanged afterwards. Named pipes (FIFOs) are watched by a
helper that would unblock a reader: a test fails if anything opened one.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from helpers import data_sources as ds
from helpers import inference, kaggle_data, model_registry, models_torch, safe_io
from helpers.sample_data import portrait_path, write_video

# ---------------------------------------------------------------------------------------- helpers


def snapshot(folder: Path) -> dict:
    """What is in a folder: each entry's kind and, for files, size and SHA-1 (pipes are not opened)."""
    state = {}
    for path in sorted(Path(folder).rglob("*")):
        info = os.lstat(path)
        key = path.relative_to(folder).as_posix()
        if stat.S_ISREG(info.st_mode):
            digest = hashlib.sha1()
            with open(path, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
            state[key] = ("file", info.st_size, digest.hexdigest(), info.st_mtime_ns)
        else:
            state[key] = (stat.S_IFMT(info.st_mode), info.st_mtime_ns)
    return state


def assert_clear(error: BaseException, *names: str, todo: tuple = ()) -> str:
    """The message names every one of ``names`` and holds one of the ``todo`` phrases (what to do)."""
    message = str(error)
    for name in names:
        assert name in message, (name, message)
    if todo:
        assert any(phrase.lower() in message.lower() for phrase in todo), (todo, message)
    assert "Traceback" not in message
    return message


def tiny_video(path: Path, width: int = 96, height: int = 64, n: int = 4, value: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = [np.full((height, width, 3), (value * 37 + 20 * i) % 256, np.uint8) for i in range(n)]
    write_video(path, frames, width, height, fps=10)
    return path


class WatchedFifo:
    """A named pipe, plus a thread that unblocks (and records) any reader that opens it."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        os.mkfifo(self.path)
        self.reader_seen = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self):
        while not self._stop.is_set():
            try:  # succeeds only while someone holds the pipe open for reading
                descriptor = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:
                time.sleep(0.05)
                continue
            self.reader_seen = True
            os.close(descriptor)  # the reader sees end-of-file and goes on
            time.sleep(0.05)

    def close(self):
        self._stop.set()
        self._thread.join(timeout=5)


@contextlib.contextmanager
def watched_fifo(path: Path):
    fifo = WatchedFifo(path)
    try:
        yield fifo
    finally:
        fifo.close()
    assert not fifo.reader_seen, f"{path} was opened for reading: that would hang without a writer"


@pytest.fixture()
def data_dir(tmp_path, monkeypatch):
    root = tmp_path / "data"
    monkeypatch.setenv("DEEPFAKE_DATA_DIR", str(root))
    return root


def dfdc_folder(root: Path, metadata: bytes | None = None) -> Path:
    """Two real and two fake tiny videos; ``metadata`` replaces the metadata.json bytes."""
    for i, name in enumerate(("r1.mp4", "f1.mp4", "r2.mp4", "f2.mp4")):
        tiny_video(root / name, value=i)
    if metadata is None:
        metadata = json.dumps({"r1.mp4": {"label": "REAL"}, "f1.mp4": {"label": "FAKE", "original": "r1.mp4"},
                               "r2.mp4": {"label": "REAL"}, "f2.mp4": {"label": "FAKE", "original": "r2.mp4"}}
                              ).encode()
    (root / "metadata.json").write_bytes(metadata)
    return root


def prepare_must_fail(folder: Path, error_type=ds.DatasetError, **options) -> str:
    before = snapshot(folder)
    with pytest.raises(error_type) as caught:
        ds.prepare_dataset("folder", "full", path=folder, **options)
    assert snapshot(folder) == before
    return str(caught.value)


METADATA_TODO = ("fix it", "replace it", "keep one entry")

# ---------------------------------------------------------------------------------------- metadata.json


def test_metadata_json_that_is_a_folder(tmp_path, data_dir):
    folder = dfdc_folder(tmp_path / "mine")
    (folder / "metadata.json").unlink()
    (folder / "metadata.json").mkdir()
    message = prepare_must_fail(folder)
    assert_clear(message, str(folder / "metadata.json"), "is a folder", todo=METADATA_TODO)


def test_metadata_json_that_is_a_named_pipe_does_not_hang(tmp_path, data_dir):
    folder = dfdc_folder(tmp_path / "mine")
    (folder / "metadata.json").unlink()
    with watched_fifo(folder / "metadata.json"):
        started = time.monotonic()
        message = prepare_must_fail(folder)
        assert time.monotonic() - started < 60
    assert_clear(message, "metadata.json", "named pipe", todo=("Replace it with an ordinary file",))


def test_metadata_json_nested_100000_levels(tmp_path, data_dir):
    folder = dfdc_folder(tmp_path / "mine", metadata=b"[" * 100_000 + b"]" * 100_000)
    message = prepare_must_fail(folder, skip_bad=True)
    assert_clear(message, "metadata.json", "nested too deeply", todo=METADATA_TODO)


def test_metadata_json_with_a_byte_order_mark_is_read(tmp_path, data_dir):
    plain = json.dumps({"r1.mp4": {"label": "REAL"}, "f1.mp4": {"label": "FAKE", "original": "r1.mp4"},
                        "r2.mp4": {"label": "REAL"}, "f2.mp4": {"label": "FAKE", "original": "r2.mp4"}})
    folder = dfdc_folder(tmp_path / "mine", metadata=b"\xef\xbb\xbf" + plain.encode())  # as Notepad saves it
    before = snapshot(folder)
    df = ds.load_dataset(ds.prepare_dataset("folder", "full", path=folder))
    assert sorted(df["name"]) == ["f1.mp4", "f2.mp4", "r1.mp4", "r2.mp4"]
    assert snapshot(folder) == before


def test_metadata_json_empty(tmp_path, data_dir):
    message = prepare_must_fail(dfdc_folder(tmp_path / "mine", metadata=b""), skip_bad=True)
    assert_clear(message, "metadata.json", "is empty", todo=METADATA_TODO)


def test_metadata_json_too_large(tmp_path, data_dir):
    folder = dfdc_folder(tmp_path / "mine")
    with open(folder / "metadata.json", "r+b") as handle:  # sparse: no disk space used
        handle.truncate(safe_io.MAX_JSON_BYTES + 1)
    message = prepare_must_fail(folder, skip_bad=True)
    assert_clear(message, "metadata.json", "at most 64.0 MB is read", todo=METADATA_TODO)


def test_metadata_json_not_utf8(tmp_path, data_dir):
    folder = dfdc_folder(tmp_path / "mine", metadata='{"caf\xe9.mp4": {"label": "REAL"}}'.encode("latin-1"))
    message = prepare_must_fail(folder, skip_bad=True)
    assert_clear(message, "metadata.json", "not UTF-8", todo=("save it as UTF-8",))


def test_metadata_json_invalid_says_where(tmp_path, data_dir):
    folder = dfdc_folder(tmp_path / "mine", metadata=b'{"r1.mp4": {"label": "REAL"},\n "f1.mp4": }')
    message = prepare_must_fail(folder, skip_bad=True)
    assert_clear(message, "metadata.json", "not valid JSON", "line 2", todo=METADATA_TODO)


def test_metadata_json_listing_a_video_twice(tmp_path, data_dir):
    folder = dfdc_folder(tmp_path / "mine", metadata=b'{"r1.mp4": {"label": "REAL"}, "f1.mp4": {"label": "FAKE"},'
                                                      b' "r1.mp4": {"label": "FAKE"}}')
    message = prepare_must_fail(folder, skip_bad=True)
    assert_clear(message, "metadata.json", "'r1.mp4'", "more than once", todo=METADATA_TODO)


def test_labelled_video_that_is_a_named_pipe(tmp_path, data_dir):
    folder = dfdc_folder(tmp_path / "mine")
    (folder / "f2.mp4").unlink()
    with watched_fifo(folder / "f2.mp4"):
        message = prepare_must_fail(folder)
        assert_clear(message, "f2.mp4", "not a regular file", todo=("skip_bad=True", "Fix them"))
        df = ds.load_dataset(ds.prepare_dataset("folder", "full", path=folder, skip_bad=True), probe=False)
    assert sorted(df["name"]) == ["f1.mp4", "r1.mp4", "r2.mp4"]


def test_damaged_dataset_record_says_what_to_delete(tmp_path, data_dir):
    folder = dfdc_folder(tmp_path / "mine")
    dataset = ds.prepare_dataset("folder", "full", path=folder)
    before = snapshot(folder)
    (dataset / "source.json").write_text("{\"video_root\": ")
    with pytest.raises(ds.DatasetError) as caught:
        ds.load_dataset(dataset)
    assert_clear(caught.value, str(dataset / "source.json"), todo=(f"Delete the folder {dataset}",))
    assert snapshot(folder) == before


# ---------------------------------------------------------------------------------------- real/ + fake/ folders


def test_derived_names_never_collide(tmp_path, data_dir):
    folder = tmp_path / "clips"
    tiny_video(folder / "real" / "clip.mp4", value=1)
    tiny_video(folder / "real" / "sub" / "clip.mp4", value=2)
    tiny_video(folder / "real" / "real__sub__clip.mp4", value=3)   # the name the second would get
    tiny_video(folder / "real" / "CLIP.mp4", value=4)              # the same name in another letter case
    tiny_video(folder / "fake" / "clip.mp4", value=5)
    tiny_video(folder / "fake" / "swap.mp4", value=6)
    before = snapshot(folder)
    df = ds.load_dataset(ds.prepare_dataset("folder", "full", path=folder), probe=False)
    assert snapshot(folder) == before
    assert len(df) == 6, sorted(df["name"])
    assert df["name"].str.lower().is_unique and not df["name"].str.contains("/").any()
    assert df["path"].is_unique
    assert sorted(Path(p).relative_to(folder.resolve()).as_posix() for p in df["path"]) == sorted(
        ["real/clip.mp4", "real/sub/clip.mp4", "real/real__sub__clip.mp4", "real/CLIP.mp4", "fake/clip.mp4",
         "fake/swap.mp4"])
    # the names do not depend on the order the files are listed in
    rels = ["real/clip.mp4", "real/sub/clip.mp4", "real/real__sub__clip.mp4"]
    assert ds.unique_video_names(rels) == ds.unique_video_names(rels[::-1])


def test_two_folders_for_one_label(tmp_path, data_dir):
    folder = tmp_path / "clips"
    tiny_video(folder / "real" / "a.mp4", value=1)
    tiny_video(folder / "Real" / "b.mp4", value=2)
    tiny_video(folder / "fake" / "c.mp4", value=3)
    message = prepare_must_fail(folder, skip_bad=True)
    assert_clear(message, "Real/", "real/", todo=("keep one real/ folder",))


def test_skip_bad_that_would_leave_only_real_videos(tmp_path, data_dir):
    folder = tmp_path / "clips"
    for i in range(3):
        tiny_video(folder / "real" / f"r{i}.mp4", value=i)
    (folder / "fake").mkdir()
    for i in range(2):
        (folder / "fake" / f"f{i}.mp4").write_bytes(b"not a video" * 100)
    message = prepare_must_fail(folder, skip_bad=True)
    assert_clear(message, str(folder.resolve()), "no FAKE videos", "skip_bad=True", todo=("Add FAKE videos",))


def test_only_a_real_folder(tmp_path, data_dir):
    folder = tmp_path / "clips"
    tiny_video(folder / "real" / "r0.mp4")
    message = prepare_must_fail(folder, skip_bad=True)
    assert_clear(message, str(folder.resolve()), "no FAKE videos", todo=("Add FAKE videos",))


def test_too_few_videos_for_every_split_is_said(tmp_path, data_dir, capsys):
    folder = tmp_path / "clips"
    tiny_video(folder / "real" / "r0.mp4", value=1)
    tiny_video(folder / "fake" / "f0.mp4", value=2)
    before = snapshot(folder)
    dataset = ds.prepare_dataset("folder", "full", path=folder)
    printed = capsys.readouterr().out
    assert "split is empty" in printed or "split holds" in printed, printed
    assert json.loads((dataset / "source.json").read_text())["warnings"]
    assert snapshot(folder) == before


def test_one_dataset_name_for_two_folders(tmp_path, data_dir):
    first, second = dfdc_folder(tmp_path / "first"), dfdc_folder(tmp_path / "second")
    ds.prepare_dataset("folder", "full", path=first, name="course")
    message = prepare_must_fail(second, name="course")
    assert_clear(message, "'course'", str(first.resolve()), todo=("another name",))


@pytest.mark.parametrize("option, value, needle", [
    ("seed", "abc", "seed must be a whole number"),
    ("max_videos", 0, "max_videos must be a whole number of at least 1"),
    ("fractions", (0.5, 0.5), "fractions must be three non-negative numbers"),
    ("name", "../../outside", "name must be a plain folder name"),
])
def test_bad_options_are_named(tmp_path, data_dir, option, value, needle):
    folder = dfdc_folder(tmp_path / "mine")
    message = prepare_must_fail(folder, **{option: value})
    assert needle in message and repr(value) in message
    assert not (tmp_path / "outside").exists()


# ---------------------------------------------------------------------------------------- archives


def bomb(path: Path, megabytes: int = 30) -> Path:
    """A small zip holding ``megabytes`` of zeros (deflate packs them about 1000:1)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("train_sample_videos/metadata.json", "{}")
        with zf.open("train_sample_videos/zeros.mp4", "w") as entry:
            block = bytes(1 << 20)
            for _ in range(megabytes):
                entry.write(block)
    return path


def test_zip_bomb_is_refused_before_writing(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    archive = bomb(source / "bomb.zip")
    assert archive.stat().st_size < 200_000
    before = snapshot(source)
    target = tmp_path / "out" / "videos"
    with pytest.raises(ds.ArchiveLimitError) as caught:
        ds.safe_extract(archive, target, prefix="train_sample_videos/")
    assert_clear(caught.value, "bomb.zip", "zeros.mp4", "ratio", todo=("videos do not compress like that",))
    assert not target.exists() and not target.with_name("videos.partial").exists()
    assert snapshot(source) == before


def test_archive_larger_than_the_limit(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    archive = source / "big.zip"
    with zipfile.ZipFile(archive, "w") as zf:  # stored, so the ratio is 1: only the total is too large
        zf.writestr("a.mp4", os.urandom(3 << 20))
    before = snapshot(source)
    with pytest.raises(ds.ArchiveLimitError) as caught:
        ds.safe_extract(archive, tmp_path / "out", max_total_bytes=2 << 20)
    assert_clear(caught.value, "big.zip", "more than the limit")
    assert not (tmp_path / "out").exists() and snapshot(source) == before


def test_archive_without_room_on_the_disk(tmp_path, monkeypatch):
    source = tmp_path / "source"
    source.mkdir()
    archive = source / "fine.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("a.mp4", os.urandom(1 << 20))
    monkeypatch.setattr(safe_io, "free_bytes", lambda folder: 100 << 20)  # 100 MB free, 512 MB margin wanted
    before = snapshot(source)
    with pytest.raises(ds.DatasetError) as caught:
        ds.safe_extract(archive, tmp_path / "out" / "videos")
    assert_clear(caught.value, "fine.zip", "only 0.10 GB is free", todo=("Free some space", "DEEPFAKE_DATA_DIR"))
    assert not (tmp_path / "out").exists() and snapshot(source) == before


def test_not_a_zip(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    archive = source / "download.zip"
    archive.write_bytes(b"<html>Please sign in</html>")
    before = snapshot(source)
    with pytest.raises(ds.UnsafeArchiveError) as caught:
        ds.safe_extract(archive, tmp_path / "out")
    assert_clear(caught.value, "download.zip", "not a readable zip archive")
    assert snapshot(source) == before


def test_damaged_entry_leaves_nothing_behind(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    archive = source / "damaged.zip"
    payload = os.urandom(200_000)
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a.mp4", payload)
    data = bytearray(archive.read_bytes())
    start = data.index(b"a.mp4") + 5 + 1000
    data[start:start + 5000] = bytes(5000)  # garbage in the compressed data; the directory still reads
    archive.write_bytes(bytes(data))
    before = snapshot(source)
    with pytest.raises(ds.UnsafeArchiveError) as caught:
        ds.safe_extract(archive, tmp_path / "out" / "videos")
    assert_clear(caught.value, "damaged.zip", "'a.mp4' is damaged")
    assert not (tmp_path / "out" / "videos").exists() and not (tmp_path / "out" / "videos.partial").exists()
    assert snapshot(source) == before


# ---------------------------------------------------------------------------------------- Kaggle

CREDENTIAL_VARS = ("KAGGLE_API_TOKEN", "KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_CONFIG_DIR", "XDG_CONFIG_HOME")


@pytest.fixture()
def home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    (home / ".kaggle").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setattr(Path, "home", classmethod(lambda cls: home))
    for var in CREDENTIAL_VARS:
        monkeypatch.delenv(var, raising=False)
    return home


def test_refused_kaggle_archive_is_moved_aside_and_downloaded_again(home, data_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("KAGGLE_API_TOKEN", "test-token")
    evil = bomb(tmp_path / "bomb.zip")
    calls = []

    def deliver(partial):
        calls.append(partial)
        target = partial / kaggle_data.KAGGLE_ARCHIVE
        target.write_bytes(evil.read_bytes())
        return target

    aside = data_dir / "kaggle" / "download" / "refused"
    moved = set()
    for attempt in (1, 2):
        with pytest.raises(ds.ArchiveLimitError) as caught:
            ds.prepare_dataset("kaggle", "smoke", downloader=deliver)
        new = set(aside.iterdir()) - moved
        assert len(new) == 1
        moved |= new
        assert_clear(caught.value, kaggle_data.KAGGLE_ARCHIVE, str(new.pop()), todo=("Delete the moved file",))
    assert len(calls) == 2  # the second run downloaded afresh instead of failing on the same file
    assert not (data_dir / "kaggle" / "download" / kaggle_data.KAGGLE_ARCHIVE).exists()
    assert not (data_dir / "kaggle" / "train_sample_videos").exists()


@pytest.mark.parametrize("content, needle", [
    (b"", "is empty"),
    (b"{\"username\": \"me\", \"key\": ", "not valid JSON"),
    (b"{\"username\": \"me\"}", "no 'key' entry"),
    (b"[\"me\", \"secret\"]", "holds a JSON list"),
    (None, "is a folder"),
])
def test_unusable_kaggle_json_is_named(home, data_dir, content, needle):
    legacy = home / ".kaggle" / "kaggle.json"
    if content is None:
        legacy.mkdir()
    else:
        legacy.write_bytes(content)
    before = snapshot(home)
    calls = []
    with pytest.raises(kaggle_data.KaggleSetupError) as caught:
        ds.prepare_dataset("kaggle", "smoke", downloader=calls.append)
    message = assert_clear(caught.value, str(legacy), needle, todo=("https://www.kaggle.com/settings/api",))
    assert "No usable Kaggle credentials" in message and "No Kaggle credentials found" not in message
    assert calls == [] and snapshot(home) == before


def test_empty_kaggle_token_file_is_named(home, data_dir):
    token = home / ".kaggle" / "access_token"
    token.write_bytes(b"")
    before = snapshot(home)
    with pytest.raises(kaggle_data.KaggleSetupError) as caught:
        ds.prepare_dataset("kaggle", "smoke", downloader=lambda partial: None)
    assert_clear(caught.value, str(token), "is empty", todo=("paste the token",))
    assert snapshot(home) == before


# ---------------------------------------------------------------------------------------- checkpoints

CHECKPOINT_TODO = ("retrain with notebooks/04_inception_resnet.ipynb", "Pass one of", "Pass the path of a .pth",
                   "Delete this file")


def load_must_fail(path: Path, loader=model_registry.load_checkpoint, error_type=models_torch.CheckpointError) -> str:
    before = snapshot(path.parent)
    with pytest.raises(error_type) as caught:
        loader(path)
    assert snapshot(path.parent) == before
    return assert_clear(caught.value, str(path), todo=CHECKPOINT_TODO)


class RunsCode:
    """Pickled, this asks the loader to call os.system: the file would run a command."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_checkpoint_that_holds_code_is_not_run(tmp_path):
    import torch

    folder = tmp_path / "downloads"
    folder.mkdir()
    marker = tmp_path / "code-was-run"
    path = folder / "resnetinceptionv1_epoch_9.pth"
    torch.save({"model_state_dict": {}, "epoch": 9, "payload": RunsCode(marker)}, path)
    message = load_must_fail(path)
    assert "NOT loaded" in message and "holds Python code" in message and "system" in message
    assert "weights_only" not in message and "False" not in message and "truncated" not in message
    assert not marker.exists()


@pytest.mark.parametrize("field, value", [
    ("image_size", 1_000_000), ("image_size", -5), ("image_size", 32.5), ("margin", "wide"), ("margin", 3),
    ("threshold", "abc"), ("threshold", 2.0), ("threshold", 0), ("arch", "resnet9000"), ("epoch", -1),
    ("freeze", "everything"),
])
def test_checkpoint_metadata_out_of_range(tmp_path, field, value):
    import torch

    folder = tmp_path / "models"
    folder.mkdir()
    path = folder / "edited.pth"
    torch.save({"model_state_dict": {}, field: value}, path)
    message = load_must_fail(path)
    assert f"'{field}' is {value!r}; it must be" in message


def test_checkpoint_whose_weights_are_not_a_mapping(tmp_path):
    import torch

    folder = tmp_path / "models"
    folder.mkdir()
    path = folder / "odd.pth"
    torch.save({"model_state_dict": [1.0, 2.0], "epoch": 1}, path)
    assert "'model_state_dict' is list" in load_must_fail(path)


def test_truncated_checkpoint(tmp_path):
    import torch

    folder = tmp_path / "models"
    folder.mkdir()
    path = folder / "half.pth"
    torch.save({"model_state_dict": {"w": torch.zeros(1000)}}, path)
    path.write_bytes(path.read_bytes()[:2000])
    message = load_must_fail(path)
    assert "not a readable PyTorch checkpoint" in message and "copy it again" in message
    assert "weights_only" not in message


def test_checkpoint_path_that_is_a_folder(tmp_path):
    folder = tmp_path / "models"
    (folder / "run1").mkdir(parents=True)
    (folder / "run1" / "resnetinceptionv1_epoch_3.pth").write_bytes(b"x")
    before = snapshot(folder)
    with pytest.raises(models_torch.CheckpointError) as caught:
        inference.load_predictor(folder / "run1", device="cpu")
    assert_clear(caught.value, str(folder / "run1"), "is a folder", "resnetinceptionv1_epoch_3.pth",
                 todo=("Pass one of",))
    assert "does not exist" not in str(caught.value) and snapshot(folder) == before


def test_checkpoint_that_is_a_named_pipe(tmp_path):
    folder = tmp_path / "models"
    with watched_fifo(folder / "pipe.pth"):
        message = load_must_fail(folder / "pipe.pth")
    assert "not a regular file" in message


@pytest.fixture(scope="module")
def random_model():
    import torch

    torch.manual_seed(0)
    return models_torch.build_inception_classifier(pretrained=False)


def test_checkpoint_with_an_unknown_video_rule(tmp_path, random_model):
    folder = tmp_path / "models"
    path = models_torch.save_checkpoint(random_model, folder / "rule.pth", epoch=1, image_size=160)
    import torch

    data = torch.load(path, weights_only=True)
    data["video_rule"] = "majority-of-vibes"
    torch.save(data, path)
    message = load_must_fail(path, loader=lambda p: inference.load_predictor(p, device="cpu"))
    assert "'video_rule' is 'majority-of-vibes'" in message and "mean" in message


def test_saving_invalid_metadata_is_refused(tmp_path, random_model):
    with pytest.raises(ValueError, match="'threshold' is 1.5"):
        models_torch.save_checkpoint(random_model, tmp_path / "bad.pth", epoch=1, threshold=1.5)
    assert not (tmp_path / "bad.pth").exists()


def test_demo_with_a_folder_as_checkpoint_exits_with_the_message(tmp_path, capsys):
    from helpers import demo_app

    folder = tmp_path / "models"
    folder.mkdir()
    assert demo_app.main(["--checkpoint", str(folder)]) == 2
    error = capsys.readouterr().err
    assert str(folder) in error and "is a folder" in error and "does not exist" not in error


# ---------------------------------------------------------------------------------------- demo uploads


@pytest.fixture(scope="module")
def predictor(random_model, tmp_path_factory):
    path = models_torch.save_checkpoint(random_model, tmp_path_factory.mktemp("ckpt") / "random.pth", epoch=0,
                                        image_size=160)
    return inference.load_predictor(path, device="cpu")


def test_video_with_frames_beyond_the_pixel_budget(tmp_path, predictor):
    uploads = tmp_path / "uploads"
    clip = tiny_video(uploads / "huge_frames.mp4", width=4096, height=4096, n=3)
    before = snapshot(uploads)
    with pytest.raises(inference.DemoInputError) as caught:
        predictor.predict_video(clip, n_frames=inference.MAX_N_FRAMES)
    assert_clear(caught.value, "huge_frames.mp4", "4096 x 4096", todo=("Scale it down",))
    assert snapshot(uploads) == before


def test_large_video_frames_are_scaled_down_and_analysed(tmp_path, predictor):
    import cv2

    uploads = tmp_path / "uploads"
    uploads.mkdir()
    face = cv2.cvtColor(cv2.imread(str(portrait_path())), cv2.COLOR_BGR2RGB)
    width, height = 2560, 1440
    frame = np.full((height, width, 3), 90, np.uint8)
    big_face = cv2.resize(face, (face.shape[1] * 2, face.shape[0] * 2))
    frame[200:200 + big_face.shape[0], 900:900 + big_face.shape[1]] = big_face
    clip = uploads / "qhd.mp4"
    write_video(clip, [frame] * 6, width, height, fps=10)
    before = snapshot(uploads)
    result = predictor.predict_video(clip, n_frames=3)
    assert result.n_frames_with_face >= 1
    assert result.annotated.shape[0] * result.annotated.shape[1] <= inference.WORK_FRAME_PIXELS
    assert any("scaled down" in note and "2560 x 1440" in note for note in result.notes)
    assert snapshot(uploads) == before


@pytest.mark.parametrize("n_frames", [0, inference.MAX_N_FRAMES + 1, 10**9, 2.5, "many"])
def test_frames_to_sample_out_of_range(tmp_path, predictor, n_frames):
    uploads = tmp_path / "uploads"
    clip = tiny_video(uploads / "clip.mp4")
    before = snapshot(uploads)
    with pytest.raises(inference.DemoInputError) as caught:
        predictor.predict_video(clip, n_frames=n_frames)
    assert_clear(caught.value, f"from 1 to {inference.MAX_N_FRAMES}", repr(n_frames))
    assert snapshot(uploads) == before


def test_upload_that_is_a_named_pipe(tmp_path, predictor):
    uploads = tmp_path / "uploads"
    with watched_fifo(uploads / "stream.mp4"):
        with pytest.raises(inference.DemoInputError) as caught:
            predictor.predict_file(uploads / "stream.mp4")
    assert_clear(caught.value, "stream.mp4", "not a regular file", todo=("choose one picture or video",))


def test_corrupt_video_message_hides_the_server_folder(tmp_path, predictor):
    uploads = tmp_path / "gradio-tmp" / "4f1c0e"
    uploads.mkdir(parents=True)
    clip = uploads / "holiday.mp4"
    clip.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"this is not a video" * 500)
    before = snapshot(uploads)
    with pytest.raises(inference.DemoInputError) as caught:
        predictor.predict_video(clip)
    message = assert_clear(caught.value, "holiday.mp4", todo=("upload another file", "re-encode"))
    assert str(uploads) not in message and "gradio-tmp" not in message and "dataset" not in message
    assert snapshot(uploads) == before
