"""The classroom cache: filled from local files standing in for the downloads (file:// URLs, no network).

What is checked: the manifest records SHA-256, size and source; a second prefetch
downloads nothing; use_cache puts verified files where the libraries read them;
a corrupt file is refused, a missing one reported, a user's own file never
overwritten; a download that does not match its publisher's hash is rejected;
the DFDC archive comes through the Kaggle path and then needs no credentials.
"""
from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from helpers import cache, config, kaggle_data

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def homes(tmp_path, monkeypatch):
    """Fresh library caches and data folder for each test (where use_cache installs files)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))
    monkeypatch.setenv("DEEPFAKE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("DEEPFAKE_CACHE", raising=False)
    for variable in ("KAGGLE_API_TOKEN", "KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_CONFIG_DIR"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no real Kaggle credentials are seen
    return tmp_path


@pytest.fixture()
def stand_ins(tmp_path) -> tuple:
    """The registry's weight files, each replaced by a local file with the same name (and a matching
    publisher hash where the real one has one)."""
    upstream = tmp_path / "upstream"
    upstream.mkdir()
    downloads = []
    for i, download in enumerate(cache.WEIGHTS):
        data = os.urandom(50_000 + 1000 * i)
        path = upstream / download.filename
        path.write_bytes(data)
        upstream_hash = None
        if download.upstream_hash:
            kind, real = download.upstream_hash
            upstream_hash = (kind, hashlib.md5(data).hexdigest() if kind == "md5"
                             else hashlib.sha256(data).hexdigest()[:len(real)])
        downloads.append(dataclasses.replace(download, url=path.as_uri(), upstream_hash=upstream_hash))
    return tuple(downloads), upstream


def counting_fetch(calls: list):
    def fetch(url, destination):
        calls.append(url)
        return cache.download_url(url, destination, progress=False)
    return fetch


def test_prefetch_records_sha256_size_and_source(homes, stand_ins):
    downloads, upstream = stand_ins
    root = homes / "course-cache"
    report = cache.prefetch(root, downloads, fetch=counting_fetch([]), dfdc=False)
    assert report.ok and [f.status for f in report.files] == ["ok"] * len(downloads)
    manifest = json.loads((root / "manifest.json").read_text())
    for download in downloads:
        entry = manifest["files"][download.key]
        original = (upstream / download.filename).read_bytes()
        assert entry["sha256"] == hashlib.sha256(original).hexdigest()
        assert entry["size"] == len(original)
        assert entry["source"] == download.url
        assert (root / entry["path"]).read_bytes() == original
    assert not list(root.rglob("*.partial"))


def test_second_prefetch_downloads_nothing(homes, stand_ins):
    downloads, _ = stand_ins
    root = homes / "course-cache"
    cache.prefetch(root, downloads, fetch=counting_fetch([]), dfdc=False)
    calls = []
    cache.prefetch(root, downloads, fetch=counting_fetch(calls), dfdc=False)
    assert calls == []


def test_use_cache_puts_verified_files_where_the_libraries_read_them(homes, stand_ins, monkeypatch):
    downloads, upstream = stand_ins
    root = homes / "course-cache"
    cache.prefetch(root, downloads, fetch=counting_fetch([]), dfdc=False)
    monkeypatch.setenv("DEEPFAKE_CACHE", str(root))
    report = cache.use_cache(downloads=downloads)
    assert report.ok
    for download in downloads:
        target = download.target()
        assert target.read_bytes() == (upstream / download.filename).read_bytes()
        assert str(homes) in str(target)  # inside this test's TORCH_HOME / KERAS_HOME
    assert (homes / "torch-home" / "checkpoints" / cache.VGGFACE2_FILE).exists()
    assert (homes / "torch-home" / "hub" / "checkpoints" / cache.DENSENET121_FILE).exists()
    assert (homes / "keras-home" / "models" / cache.RESNET50_FILE).exists()
    again = cache.use_cache(downloads=downloads, verbose=False)
    assert {f.installed for f in again.files} == {"already there"}


def test_a_corrupt_file_is_refused_and_not_installed(homes, stand_ins, capsys):
    downloads, _ = stand_ins
    root = homes / "course-cache"
    cache.prefetch(root, downloads, fetch=counting_fetch([]), dfdc=False)
    cache.check_cache(root, downloads)  # remembers the good hashes, as a first run would
    damaged = root / downloads[0].cache_path
    data = bytearray(damaged.read_bytes())
    data[1000] ^= 0xFF  # same size, one byte changed
    damaged.write_bytes(bytes(data))
    truncated = root / downloads[1].cache_path
    truncated.write_bytes(truncated.read_bytes()[:-10])
    report = cache.use_cache(root, downloads=downloads)
    status = {f.download.key: f for f in report.files}
    assert status[downloads[0].key].status == "corrupt" and "SHA-256" in status[downloads[0].key].reason
    assert status[downloads[1].key].status == "corrupt" and "bytes" in status[downloads[1].key].reason
    assert status[downloads[2].key].status == "ok"
    assert not report.ok
    assert not downloads[0].target().exists() and not downloads[1].target().exists()
    assert downloads[2].target().exists()
    printed = capsys.readouterr().out
    assert "REFUSED" in printed and "make prefetch" in printed
    # prefetch sets the damaged files aside (kept, renamed) and fetches them again
    repaired = cache.prefetch(root, downloads, fetch=counting_fetch([]), dfdc=False)
    assert repaired.ok and (damaged.with_name(damaged.name + ".rejected")).exists()


def test_a_missing_file_is_reported_with_what_to_do(homes, stand_ins):
    downloads, _ = stand_ins
    root = homes / "course-cache"
    cache.prefetch(root, downloads[:2], fetch=counting_fetch([]), dfdc=False)  # the third never fetched
    (root / downloads[0].cache_path).unlink()                                     # the first deleted
    report = cache.check_cache(root, downloads)
    status = {f.download.key: f for f in report.files}
    assert status[downloads[0].key].status == "missing" and "gone" in status[downloads[0].key].reason
    assert status[downloads[2].key].status == "missing" and "not fetched" in status[downloads[2].key].reason
    assert status[downloads[1].key].status == "ok"
    summary = report.summary()
    assert "MISSING" in summary and "make prefetch" in summary and downloads[2].title in summary


def test_a_users_own_file_is_never_overwritten(homes, stand_ins):
    downloads, _ = stand_ins
    root = homes / "course-cache"
    cache.prefetch(root, downloads, fetch=counting_fetch([]), dfdc=False)
    mine = downloads[0].target()
    mine.parent.mkdir(parents=True)
    mine.write_bytes(b"my own half-finished download")
    report = cache.use_cache(root, downloads=downloads, verbose=False)
    assert mine.read_bytes() == b"my own half-finished download"
    assert "not installed" in report.files[0].installed and "yours" in report.files[0].installed


def test_a_download_that_does_not_match_its_publishers_hash_is_rejected(homes, stand_ins):
    downloads, _ = stand_ins
    keras_weights = next(d for d in downloads if d.upstream_hash and d.upstream_hash[0] == "md5")
    wrong = dataclasses.replace(keras_weights, upstream_hash=("md5", "0" * 32))
    root = homes / "course-cache"
    with pytest.raises(cache.DownloadCheckError, match="publisher"):
        cache.prefetch(root, (wrong,), fetch=counting_fetch([]), dfdc=False)
    assert not (root / wrong.cache_path).exists()
    assert (root / (wrong.cache_path + ".rejected")).exists()
    assert wrong.key not in json.loads((root / "manifest.json").read_text())["files"] \
        if (root / "manifest.json").exists() else True


def test_cache_setting_comes_from_deepfake_cache(homes, monkeypatch, tmp_path):
    assert config.cache_dir() is None and cache.use_cache(verbose=False) is None
    monkeypatch.setenv("DEEPFAKE_CACHE", str(tmp_path / "typo"))
    with pytest.raises(cache.CacheError, match="does not exist"):
        cache.use_cache()
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("DEEPFAKE_CACHE", str(tmp_path / "empty"))
    with pytest.raises(cache.CacheError, match="manifest.json"):
        cache.use_cache()
    assert not (tmp_path / "typo").exists()  # never created behind the user's back


def _fake_dfdc_downloader(partial_dir: Path) -> Path:
    archive = partial_dir / kaggle_data.KAGGLE_ARCHIVE
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("train_sample_videos/metadata.json", json.dumps({"a.mp4": {"label": "REAL"}}))
        zf.writestr("train_sample_videos/a.mp4", b"not really a video")
    return archive


def test_dfdc_archive_with_credentials_then_used_without_them(homes, stand_ins, monkeypatch):
    downloads, _ = stand_ins
    root = homes / "course-cache"
    report = cache.prefetch(root, downloads, fetch=counting_fetch([]), dfdc=None)  # no credentials: skipped
    assert "dfdc_train_sample" not in json.loads((root / "manifest.json").read_text())["files"]
    monkeypatch.setenv("KAGGLE_API_TOKEN", "a-token-for-the-test")
    report = cache.prefetch(root, downloads, fetch=counting_fetch([]), dfdc=None,
                            kaggle_downloader=_fake_dfdc_downloader)
    assert report.ok and "dfdc_train_sample" in {f.download.key for f in report.files}
    entry = json.loads((root / "manifest.json").read_text())["files"]["dfdc_train_sample"]
    assert entry["sha256"] == cache.file_digest(root / "dfdc" / kaggle_data.KAGGLE_ARCHIVE)
    monkeypatch.delenv("KAGGLE_API_TOKEN")
    cache.use_cache(root, verbose=False)
    linked = config.data_dir() / "kaggle" / "download" / kaggle_data.KAGGLE_ARCHIVE
    assert linked.exists()

    def must_not_download(_):
        raise AssertionError("the cache's archive should have been used")

    assert kaggle_data.fetch_kaggle_archive(linked.parent, downloader=must_not_download) == linked


def test_the_registry_matches_what_the_libraries_download(monkeypatch, tmp_path):
    """URLs, file names and places agree with facenet-pytorch, torchvision and Keras (read, not guessed)."""
    from torchvision.models import DenseNet121_Weights

    from helpers import models_compare, models_torch

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "t"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "k"))
    vgg = cache.find_download("vggface2_inception_resnet_v1")
    assert vgg.url == models_torch.VGGFACE2_URL and vgg.target() == models_torch.pretrained_weights_path()
    facenet_source = Path(importlib.util.find_spec("facenet_pytorch").origin).parent / "models" / \
        "inception_resnet_v1.py"
    assert vgg.url in facenet_source.read_text()
    dense = cache.find_download("densenet121_imagenet_torchvision")
    assert dense.url == DenseNet121_Weights.DEFAULT.url and dense.target() == models_compare.densenet_weights_path()
    resnet = cache.find_download("resnet50_imagenet_keras")
    keras_source = (Path(importlib.util.find_spec("keras").origin).parent / "src" / "applications" /
                    "resnet.py").read_text()
    assert resnet.url.rsplit("/", 1)[0] + "/" in keras_source and resnet.upstream_hash[1] in keras_source
    assert resnet.target() == tmp_path / "k" / "models" / cache.RESNET50_FILE


def test_prefetch_check_command_exit_codes(homes, stand_ins):
    downloads, _ = stand_ins
    root = homes / "course-cache"
    cache.prefetch(root, downloads, fetch=counting_fetch([]), dfdc=False)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    good = subprocess.run([sys.executable, "tools/prefetch.py", "--cache", str(root), "--check"], cwd=REPO_ROOT,
                          env=env, capture_output=True, text=True)
    assert good.returncode == 0, good.stdout + good.stderr
    assert "DEEPFAKE_CACHE=" in good.stdout
    (root / downloads[1].cache_path).unlink()
    bad = subprocess.run([sys.executable, "tools/prefetch.py", "--cache", str(root), "--check"], cwd=REPO_ROOT,
                         env=env, capture_output=True, text=True)
    assert bad.returncode == 1 and "MISSING" in bad.stdout
