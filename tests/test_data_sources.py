"""Metadata parsing, folder validation, splits, safe extraction and the Kaggle path up to the network."""
from __future__ import annotations

import json
import stat
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers import data_sources as ds
from helpers import kaggle_data, metadata
from helpers.sample_data import write_video


def tiny_video(path: Path, width: int = 96, height: int = 64, n: int = 4, value: int = 0,
               rotation: int | None = None) -> Path:
    """A few flat frames as H.264; ``value`` makes the content (and the bytes) differ."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if rotation is None:
        frames = [np.full((height, width, 3), (value * 37 + 20 * i) % 256, np.uint8) for i in range(n)]
        write_video(path, frames, width, height, fps=10)
        return path
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.set_display_rotation(rotation)
        for i in range(n):
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.full((height, width, 3), 40 * i, np.uint8),
                                                                   format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def snapshot(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): (p.stat().st_mtime_ns, p.read_bytes())
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture()
def data_dir(tmp_path, monkeypatch):
    root = tmp_path / "data"
    monkeypatch.setenv("DEEPFAKE_DATA_DIR", str(root))
    return root


# ---------------------------------------------------------------- metadata

def test_parse_metadata_reports_each_bad_entry():
    entries, problems = metadata.parse_metadata({
        "a.mp4": {"label": "REAL", "split": "train", "original": None},
        "b.mp4": {"label": "fake", "original": "a.mp4"},      # lower case is accepted
        "c.mp4": {"label": "MAYBE"},
        "d.mp4": "FAKE",
        "e.mp4": {"label": "FAKE", "original": 3},
        "f.mp4": {"label": "FAKE", "original": "f.mp4"},
        "g.mp4": {},
    })
    assert entries == {"a.mp4": {"label": "REAL", "original": None, "split": "train"},
                       "b.mp4": {"label": "FAKE", "original": "a.mp4"}}
    assert len(problems) == 5
    for name in "cdefg":
        assert any(f"'{name}.mp4'" in p for p in problems), name
    assert metadata.parse_metadata(["a.mp4"])[1] and not metadata.parse_metadata(["a.mp4"])[0]


def test_read_metadata_malformed_json(tmp_path):
    bad = tmp_path / "metadata.json"
    bad.write_text('{"a.mp4": {"label": "REAL"},')
    with pytest.raises(ds.DatasetError, match="not valid JSON"):
        metadata.read_metadata(bad)
    with pytest.raises(ds.DatasetError, match="does not exist"):
        metadata.read_metadata(tmp_path / "nothing.json")


# ---------------------------------------------------------------- videos

def test_inspect_video_portrait_rotated_corrupt_and_empty(tmp_path):
    portrait = ds.inspect_video(tiny_video(tmp_path / "portrait.mp4", width=64, height=96))
    assert (portrait["width"], portrait["height"], portrait["n_frames"]) == (64, 96, 4)
    rotated = ds.inspect_video(tiny_video(tmp_path / "phone.mp4", width=96, height=64, rotation=90))
    assert (rotated["width"], rotated["height"], abs(rotated["rotation"])) == (64, 96, 90)
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    with pytest.raises(ds.VideoError, match="corrupt.mp4"):
        ds.inspect_video(corrupt)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(ds.VideoError, match="empty"):
        ds.inspect_video(empty)


# ---------------------------------------------------------------- your own folder

def make_dfdc_folder(root: Path) -> Path:
    root.mkdir(parents=True)
    tiny_video(root / "real1.mp4", value=1)
    tiny_video(root / "fake1.mp4", value=2)
    tiny_video(root / "real2.mp4", width=64, height=96, value=3)  # portrait
    tiny_video(root / "fake2.mp4", value=4)
    tiny_video(root / "unlabelled.mp4", value=5)
    (root / "corrupt.mp4").write_bytes(b"not a video at all" * 50)
    (root / "empty.mp4").write_bytes(b"")
    (root / "notes.txt").write_text("not a video, ignored")
    meta = {
        "real1.mp4": {"label": "REAL", "split": "train", "original": None},
        "fake1.mp4": {"label": "FAKE", "split": "train", "original": "real1.mp4"},
        "real2.mp4": {"label": "REAL", "split": "train", "original": None},
        "fake2.mp4": {"label": "FAKE", "split": "train", "original": "real2.mp4"},
        "corrupt.mp4": {"label": "FAKE", "split": "train", "original": "real1.mp4"},
        "empty.mp4": {"label": "REAL", "split": "train", "original": None},
        "missing.mp4": {"label": "FAKE", "split": "train", "original": "real2.mp4"},
        "badlabel.mp4": {"label": "maybe"},
    }
    (root / "metadata.json").write_text(json.dumps(meta))
    return root


def test_folder_problems_are_listed_together_and_nothing_is_changed(tmp_path, data_dir):
    folder = make_dfdc_folder(tmp_path / "mine")
    before = snapshot(folder)
    with pytest.raises(ds.DatasetError) as caught:
        ds.prepare_dataset("folder", "standard", path=folder)
    message = str(caught.value)
    assert len(caught.value.problems) == 5, caught.value.problems
    for needle in ("corrupt.mp4", "empty.mp4", "missing.mp4", "unlabelled.mp4", "badlabel.mp4", "skip_bad=True"):
        assert needle in message, needle
    assert snapshot(folder) == before

    dataset = ds.prepare_dataset("folder", "standard", path=folder, skip_bad=True)
    assert snapshot(folder) == before
    assert data_dir / "own" in dataset.parents
    df = ds.load_dataset(dataset)
    assert sorted(df["name"]) == ["fake1.mp4", "fake2.mp4", "real1.mp4", "real2.mp4"]
    assert df["path"].map(lambda p: Path(p).parent == folder.resolve()).all()
    assert (df["target"] == (df["label"] == "FAKE").astype(int)).all()
    assert df.set_index("name").loc["real1.mp4", "original"] is None
    assert df.set_index("name").loc["fake1.mp4", "original"] == "real1.mp4"
    row = df.set_index("name").loc["real2.mp4"]
    assert (row["width"], row["height"], row["orientation"]) == (64, 96, "portrait")
    assert set(df["split"]) <= set(metadata.SPLITS)
    checks = metadata.check_splits(df)
    assert checks["video_disjoint"] and checks["fakes_with_originals"] and checks["fake_original_pairs"] == 2
    assert snapshot(folder) == before
    # cached: the same folder gives the same dataset without new files
    stamp = (dataset / "metadata.json").stat().st_mtime_ns
    assert ds.prepare_dataset("folder", "standard", path=folder, skip_bad=True) == dataset
    assert (dataset / "metadata.json").stat().st_mtime_ns == stamp


def test_folder_with_real_and_fake_subfolders(tmp_path, data_dir):
    folder = tmp_path / "clips"
    for i in range(4):
        tiny_video(folder / "real" / f"r{i}.mp4", value=i)
        tiny_video(folder / "fake" / f"f{i}.mp4", value=10 + i)
    tiny_video(folder / "fake" / "phone" / "r0.mp4", width=96, height=64, rotation=90, value=99)  # same name
    before = snapshot(folder)
    df = ds.load_dataset(ds.prepare_dataset("folder", "full", path=folder))
    assert snapshot(folder) == before
    assert len(df) == 9 and (df["label"] == "FAKE").sum() == 5
    assert df["name"].is_unique
    phone = df[df["path"].str.endswith("phone/r0.mp4")].iloc[0]
    assert phone["label"] == "FAKE" and phone["orientation"] == "portrait"
    assert df.groupby("split")["label"].nunique().min() >= 1
    # the smoke profile keeps a smaller, still labelled and split subset
    small = ds.load_dataset(ds.prepare_dataset("folder", "smoke", path=folder, max_videos=4))
    assert len(small) == 4 and set(small["label"]) == {"REAL", "FAKE"}


def test_folder_layout_errors(tmp_path, data_dir):
    with pytest.raises(ds.DatasetError, match="DATA_PATH"):
        ds.prepare_dataset("folder", "smoke", path=None)
    flat = tmp_path / "flat"
    tiny_video(flat / "a.mp4")
    with pytest.raises(ds.DatasetError, match="real/ and fake/"):
        ds.prepare_dataset("folder", "smoke", path=flat)
    broken = tmp_path / "broken"
    tiny_video(broken / "a.mp4")
    (broken / "metadata.json").write_text("{'a.mp4': 'REAL'}")  # not JSON
    with pytest.raises(ds.DatasetError, match="not valid JSON"):
        ds.prepare_dataset("folder", "smoke", path=broken, skip_bad=True)  # cannot be skipped
    (broken / "metadata.json").write_text("[\"a.mp4\"]")
    with pytest.raises(ds.DatasetError, match="expected an object"):
        ds.prepare_dataset("folder", "smoke", path=broken, skip_bad=True)
    with pytest.raises(ds.DatasetError, match="not a folder"):
        ds.prepare_dataset("folder", "smoke", path=tmp_path / "nowhere")
    with pytest.raises(ValueError, match="Unknown data source"):
        ds.prepare_dataset("youtube", "smoke")


# ---------------------------------------------------------------- splits

def dfdc_like_entries(n_real=40, seed=0):
    rng = np.random.default_rng(seed)
    entries = {}
    for i in range(n_real):
        entries[f"r{i:03d}.mp4"] = {"label": "REAL", "original": None}
        for j in range(int(rng.integers(1, 4))):
            entries[f"f{i:03d}_{j}.mp4"] = {"label": "FAKE", "original": f"r{i:03d}.mp4"}
    for j in range(3):  # fakes whose original is not in the dataset
        entries[f"orphan{j}.mp4"] = {"label": "FAKE", "original": "absent.mp4"}
    return entries


def test_splits_are_grouped_stratified_and_seeded():
    entries = dfdc_like_entries()
    splits = metadata.assign_splits(entries, seed=1)
    assert splits == metadata.assign_splits(entries, seed=1)
    assert splits != metadata.assign_splits(entries, seed=2)
    assert set(splits) == set(entries)
    for name, entry in entries.items():
        if entry["original"] in entries:
            assert splits[name] == splits[entry["original"]]
    assert len({splits[f"orphan{j}.mp4"] for j in range(3)}) == 1
    n = len(entries)
    for split, share in zip(metadata.SPLITS, metadata.DEFAULT_FRACTIONS):
        count = sum(s == split for s in splits.values())
        assert abs(count / n - share) < 0.06, (split, count)
        reals = sum(s == split and entries[k]["label"] == "REAL" for k, s in splits.items())
        assert reals >= 1


def test_extra_groups_and_small_sets_fill_every_split():
    entries = {f"r{i}": {"label": "REAL", "original": None} for i in range(4)}
    entries.update({f"f{i}": {"label": "FAKE", "original": f"r{i}"} for i in range(4)})
    entries["noface"] = {"label": "REAL", "original": None}
    splits = metadata.assign_splits(entries, seed=42)
    for split in metadata.SPLITS:
        labels = {entries[k]["label"] for k, s in splits.items() if s == split}
        assert labels == {"REAL", "FAKE"}, (split, labels)
    groups = {"r0": "A", "r1": "A", "f0": "A", "f1": "A"}
    grouped = metadata.assign_splits(entries, seed=42, groups=groups)
    assert len({grouped[k] for k in groups}) == 1


def test_split_entries_is_assign_splits_and_keeps_given_splits_only_when_asked():
    entries = dfdc_like_entries()
    split = metadata.split_entries(entries, seed=1)
    assert {n: e["split"] for n, e in split.items()} == metadata.assign_splits(entries, seed=1)
    assert all("split" not in e for e in entries.values())  # a copy: the caller's entries are unchanged
    given = {n: {**e, "split": "test"} for n, e in entries.items()}
    assert {e["split"] for e in metadata.split_entries(given, seed=1, keep_given=True).values()} == {"test"}
    assert len({e["split"] for e in metadata.split_entries(given, seed=1).values()}) == 3
    given["r000.mp4"].pop("split")  # one video without a split: the whole set is split again
    assert len({e["split"] for e in metadata.split_entries(given, seed=1, keep_given=True).values()}) == 3


def test_check_splits_catches_leaks(tmp_path):
    a, b, c = (tiny_video(tmp_path / f"{n}.mp4", value=i) for i, n in enumerate("abc"))
    copy = tmp_path / "copy_of_a.mp4"
    copy.write_bytes(a.read_bytes())
    df = pd.DataFrame({"name": ["a.mp4", "b.mp4", "c.mp4", "copy_of_a.mp4"],
                       "path": [str(a), str(b), str(c), str(copy)],
                       "label": ["REAL", "FAKE", "REAL", "REAL"],
                       "split": ["train", "train", "test", "train"],
                       "original": [None, "a.mp4", None, None]})
    good = metadata.check_splits(df)
    assert good["video_disjoint"] and good["fakes_with_originals"]
    leaked = df.assign(split=["train", "test", "test", "test"])
    bad = metadata.check_splits(leaked, groups={"a.mp4": "x", "c.mp4": "x"})
    assert not bad["video_disjoint"]          # the copy of a.mp4 is on the other side
    assert not bad["fakes_with_originals"]    # b.mp4's original is in train
    assert bad["groups_together"] is False


# ---------------------------------------------------------------- safe extraction

def crafted_zip(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("train_sample_videos/ok.mp4", b"fine")
        zf.writestr("../escaped.txt", b"outside")
        zf.writestr("/tmp/absolute.txt", b"absolute")
        zf.writestr("train_sample_videos/../../up.txt", b"up")
        link = zipfile.ZipInfo("train_sample_videos/link")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "/etc/passwd")
    return path


def test_safe_extract_refuses_escaping_entries(tmp_path):
    archive = crafted_zip(tmp_path / "evil.zip")
    target = tmp_path / "out" / "videos"
    with pytest.raises(ds.UnsafeArchiveError) as caught:
        ds.safe_extract(archive, target, prefix="train_sample_videos/")
    assert len(caught.value.problems) == 4
    text = str(caught.value)
    assert "absolute" in text and "'..'" in text and "symbolic link" in text
    assert not target.exists() and not (tmp_path / "escaped.txt").exists() and not (tmp_path / "up.txt").exists()


def test_safe_extract_good_archive_with_prefix(tmp_path):
    archive = tmp_path / "good.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("train_sample_videos/", b"")
        zf.writestr("train_sample_videos/a.mp4", b"aaa")
        zf.writestr("train_sample_videos/metadata.json", b"{}")
        zf.writestr("test_videos/b.mp4", b"bbb")
    target = ds.safe_extract(archive, tmp_path / "videos", prefix="train_sample_videos/")
    assert sorted(p.name for p in target.iterdir()) == ["a.mp4", "metadata.json"]
    assert not (tmp_path / "videos.partial").exists()


# ---------------------------------------------------------------- Kaggle, up to the network call

CREDENTIAL_VARS = ("KAGGLE_API_TOKEN", "KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_CONFIG_DIR", "XDG_CONFIG_HOME")


@pytest.fixture()
def no_credentials(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setattr(Path, "home", classmethod(lambda cls: home))
    for var in CREDENTIAL_VARS:
        monkeypatch.delenv(var, raising=False)
    return home


def test_credential_detection(no_credentials, monkeypatch):
    home = no_credentials
    assert kaggle_data.find_kaggle_credentials() is None
    assert kaggle_data.find_kaggle_credentials({"KAGGLE_API_TOKEN": "abc"}, home) == "the KAGGLE_API_TOKEN environment variable"
    assert "KAGGLE_KEY" in kaggle_data.find_kaggle_credentials({"KAGGLE_USERNAME": "u", "KAGGLE_KEY": "k"}, home)
    assert kaggle_data.find_kaggle_credentials({"KAGGLE_USERNAME": "u"}, home) is None
    kaggle_dir = home / ".kaggle"
    kaggle_dir.mkdir()
    (kaggle_dir / "kaggle.json").write_text("{\"username\": \"u\"}")  # incomplete: not credentials
    assert kaggle_data.find_kaggle_credentials({}, home) is None
    (kaggle_dir / "kaggle.json").write_text(json.dumps({"username": "u", "key": "k"}))
    assert kaggle_data.find_kaggle_credentials({}, home).endswith("kaggle.json")
    (kaggle_dir / "kaggle.json").unlink()
    (kaggle_dir / "credentials.json").write_text("{\"refresh_token\": \"x\"}")
    assert "kaggle auth login" in kaggle_data.find_kaggle_credentials({}, home)
    (kaggle_dir / "access_token").write_text("token")
    assert kaggle_data.find_kaggle_credentials({}, home).endswith("access_token")
    other = home / "elsewhere"
    other.mkdir()
    (other / "kaggle.json").write_text(json.dumps({"username": "u", "key": "k"}))
    assert kaggle_data.find_kaggle_credentials({"KAGGLE_CONFIG_DIR": str(other)}, home.parent / "nobody") == \
        str(other / "kaggle.json")


def test_kaggle_without_credentials_says_what_to_do(no_credentials, data_dir):
    imported_before = "kaggle" in sys.modules
    calls = []
    with pytest.raises(kaggle_data.KaggleSetupError) as caught:
        ds.prepare_dataset("kaggle", "smoke", downloader=lambda partial: calls.append(partial))
    message = str(caught.value)
    for needle in ("kaggle auth login", "KAGGLE_API_TOKEN", "~/.kaggle/access_token", "kaggle.json",
                   kaggle_data.KAGGLE_RULES_URL, "DATA_SOURCE = \"sample\""):
        assert needle in message, needle
    assert calls == []
    assert ("kaggle" in sys.modules) == imported_before  # the client was not imported (no banner)


class FakeHTTPError(Exception):
    def __init__(self, status):
        super().__init__(f"{status} Client Error")
        self.response = type("Response", (), {"status_code": status})()


@pytest.mark.parametrize("status, needle", [(403, "accept"), (401, "kaggle auth login")])
def test_kaggle_refusals_are_explained(no_credentials, data_dir, monkeypatch, status, needle):
    monkeypatch.setenv("KAGGLE_API_TOKEN", "test-token")

    def refuse(partial):
        raise FakeHTTPError(status)

    with pytest.raises(kaggle_data.KaggleSetupError, match=str(status)) as caught:
        ds.prepare_dataset("kaggle", "smoke", downloader=refuse)
    assert needle in str(caught.value)
    if status == 403:
        assert kaggle_data.KAGGLE_RULES_URL in str(caught.value)


def kaggle_archive(path: Path, tmp: Path) -> Path:
    """A miniature of the competition archive: train_sample_videos/ with metadata.json, and test_videos/."""
    names = {"aaaa.mp4": ("REAL", None), "bbbb.mp4": ("FAKE", "aaaa.mp4"), "cccc.mp4": ("REAL", None),
             "dddd.mp4": ("FAKE", "cccc.mp4"), "eeee.mp4": ("FAKE", "zzzz.mp4"), "ffff.mp4": ("FAKE", "zzzz.mp4")}
    meta = {n: {"label": lab, "split": "train", "original": o} for n, (lab, o) in names.items()}
    with zipfile.ZipFile(path, "w") as zf:
        for i, name in enumerate(names):
            zf.write(tiny_video(tmp / name, value=i), f"train_sample_videos/{name}")
        zf.writestr("train_sample_videos/metadata.json", json.dumps(meta))
        zf.write(tiny_video(tmp / "test.mp4", value=50), "test_videos/test.mp4")
        zf.writestr("sample_submission.csv", "filename,label\n")
    return path


def test_kaggle_download_is_resumable_and_done_once(no_credentials, data_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("KAGGLE_API_TOKEN", "test-token")
    source = kaggle_archive(tmp_path / "source.zip", tmp_path / "videos")
    calls = []

    def interrupted(partial):
        calls.append("interrupted")
        (partial / kaggle_data.KAGGLE_ARCHIVE).write_bytes(source.read_bytes()[:1000])  # half a file
        raise ConnectionError("connection reset")

    with pytest.raises(ds.DatasetError, match="resumes or restarts"):
        ds.prepare_dataset("kaggle", "smoke", downloader=interrupted)
    final = data_dir / "kaggle" / "download" / kaggle_data.KAGGLE_ARCHIVE
    assert not final.exists() and not (data_dir / "kaggle" / "train_sample_videos").exists()

    def truncated(partial):
        calls.append("truncated")
        (partial / kaggle_data.KAGGLE_ARCHIVE).write_bytes(source.read_bytes()[:-200])
        return partial / kaggle_data.KAGGLE_ARCHIVE

    with pytest.raises(ds.DatasetError, match="incomplete or corrupt"):
        ds.prepare_dataset("kaggle", "smoke", downloader=truncated)
    assert not final.exists()

    def complete(partial):
        calls.append("complete")
        target = partial / kaggle_data.KAGGLE_ARCHIVE
        target.write_bytes(source.read_bytes())
        return target

    dataset = ds.prepare_dataset("kaggle", "full", downloader=complete)
    assert final.is_file()
    df = ds.load_dataset(dataset)
    assert len(df) == 6 and (df["label"] == "FAKE").sum() == 4
    videos = data_dir / "kaggle" / "train_sample_videos"
    assert not (videos / "test.mp4").exists() and (videos / "metadata.json").exists()
    assert json.loads((videos / "metadata.json").read_text())["aaaa.mp4"]["split"] == "train"  # untouched
    by_name = df.set_index("name")["split"]
    assert by_name["eeee.mp4"] == by_name["ffff.mp4"] and by_name["aaaa.mp4"] == by_name["bbbb.mp4"]
    # done: a second call, even for another profile, downloads nothing
    ds.prepare_dataset("kaggle", "full", downloader=complete)
    smoke = ds.prepare_dataset("kaggle", "smoke", downloader=complete, max_videos=4)
    assert calls == ["interrupted", "truncated", "complete"]
    assert len(ds.load_dataset(smoke)) == 4


def test_kaggle_unsafe_archive_is_not_extracted(no_credentials, data_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("KAGGLE_API_TOKEN", "test-token")
    evil = crafted_zip(tmp_path / "evil.zip")
    with zipfile.ZipFile(evil, "a") as zf:
        zf.writestr("train_sample_videos/metadata.json", "{}")

    def deliver(partial):
        target = partial / kaggle_data.KAGGLE_ARCHIVE
        target.write_bytes(evil.read_bytes())
        return target

    with pytest.raises(ds.UnsafeArchiveError):
        ds.prepare_dataset("kaggle", "smoke", downloader=deliver)
    assert not (data_dir / "kaggle" / "train_sample_videos").exists()
    assert not (data_dir / "escaped.txt").exists() and not (data_dir / "kaggle" / "escaped.txt").exists()


def test_subset_keeps_every_split_mixed():
    entries = dfdc_like_entries(n_real=30, seed=3)
    splits = metadata.assign_splits(entries, seed=3)
    for name, split in splits.items():
        entries[name]["split"] = split
    for n in (6, 8, 25):
        chosen = ds._subset(entries, n, seed=1)
        assert len(chosen) == n
        for split in metadata.SPLITS:
            assert {e["label"] for e in chosen.values() if e["split"] == split} == {"REAL", "FAKE"}, (n, split)
        assert all(chosen[k] is entries[k] for k in chosen)
    assert ds._subset(entries, None, seed=1) is entries


def test_method_and_difficulty_round_trip_for_fakes_only(tmp_path):
    tiny_video(tmp_path / "a.mp4")
    tiny_video(tmp_path / "b.mp4", value=1)
    tiny_video(tmp_path / "c.mp4", value=2)
    metadata.write_metadata(tmp_path / "metadata.json", {
        "a.mp4": {"label": "REAL", "split": "train", "method": "ignored-for-reals"},
        "b.mp4": {"label": "FAKE", "split": "train", "original": "a.mp4", "method": "self-blend", "difficulty": "hard"},
        "c.mp4": {"label": "FAKE", "split": "test", "original": "a.mp4"},
    })
    written = json.loads((tmp_path / "metadata.json").read_text())
    assert written["b.mp4"]["method"] == "self-blend" and "method" not in written["c.mp4"]
    df = ds.load_dataset(tmp_path, probe=False).set_index("name")
    assert df.loc["a.mp4", "method"] == "real" and df.loc["a.mp4", "difficulty"] is None
    assert df.loc["b.mp4", "method"] == "self-blend" and df.loc["b.mp4", "difficulty"] == "hard"
    assert df.loc["c.mp4", "method"] == "unknown"
