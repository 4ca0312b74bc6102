"""A classroom cache: every download the course can make, fetched once, hash-checked everywhere.

A teacher with internet access runs ``make prefetch`` once (``tools/prefetch.py``).
It downloads into one folder:

    <cache>/manifest.json                        what is there: SHA-256, size, source URL of each file
    <cache>/weights/...                          the pretrained weights (VGGFace2, ImageNet)
    <cache>/dfdc/deepfake-detection-challenge.zip  the DFDC archive (only with Kaggle credentials)

Copy the folder to the room's machines or share it (it may be read-only) and set
``DEEPFAKE_CACHE=/path/to/cache``. :func:`use_cache` (the setup notebook and
``make course`` call it) then checks every file against the manifest and puts
each verified one where its library looks for it (a link, or a copy where
links are not allowed), so ``PRETRAINED = True`` and ``DATA_SOURCE = "kaggle"``
work with no network. A file whose hash does not match is refused, a file
that is not there is reported with what to do; nothing of the user's is
deleted or overwritten.

Like d2l's data hub, the list of downloads lives in one place,
:data:`DOWNLOADS`. Hashes published upstream (Keras' MD5, the SHA-256 prefix
in torchvision's file names) are checked at download time as well.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import config, safe_io

MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1
CHUNK = 1 << 20


class CacheError(RuntimeError):
    """The cache folder cannot be used at all (not there, no manifest, unreadable manifest)."""


class DownloadCheckError(RuntimeError):
    """A downloaded file does not match the hash its publisher gives for it."""


# ----------------------------------------------------------------------------
# Where each library looks for its files (the same rules the libraries use)
# ----------------------------------------------------------------------------

def torch_home() -> Path:
    """``$TORCH_HOME``, else ``$XDG_CACHE_HOME/torch``, else ``~/.cache/torch`` (torch.hub's and facenet's rule)."""
    default = Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache") / "torch"
    return Path(os.environ.get("TORCH_HOME") or default).expanduser()


def keras_home() -> Path:
    """``$KERAS_HOME``, else ``~/.keras`` (Keras' rule)."""
    return Path(os.environ.get("KERAS_HOME") or "~/.keras").expanduser()


@dataclass(frozen=True)
class Download:
    """One file the course can download, and where the code that uses it looks for it."""

    key: str
    title: str
    url: str
    cache_path: str                   # relative to the cache folder
    target: Callable[[], Path]        # where the library reads it on this machine
    upstream_hash: tuple[str, str] | None = None   # ("md5", hex) or ("sha256-prefix", hex) from the publisher
    optional: bool = False            # needs credentials (DFDC): missing is not a problem

    @property
    def filename(self) -> str:
        return Path(self.cache_path).name


VGGFACE2_FILE = "20180402-114759-vggface2.pt"
RESNET50_FILE = "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
DENSENET121_FILE = "densenet121-a639ec97.pth"
DFDC_ARCHIVE = "deepfake-detection-challenge.zip"

DOWNLOADS: tuple[Download, ...] = (
    Download("vggface2_inception_resnet_v1", "InceptionResnetV1, VGGFace2 weights (notebooks 04, 06, 07)",
             f"https://github.com/timesler/facenet-pytorch/releases/download/v2.2.9/{VGGFACE2_FILE}",
             f"weights/torch/checkpoints/{VGGFACE2_FILE}",
             lambda: torch_home() / "checkpoints" / VGGFACE2_FILE),
    Download("resnet50_imagenet_keras", "Keras ResNet50 without top, ImageNet weights (notebook 03)",
             f"https://storage.googleapis.com/tensorflow/keras-applications/resnet/{RESNET50_FILE}",
             f"weights/keras/models/{RESNET50_FILE}",
             lambda: keras_home() / "models" / RESNET50_FILE,
             upstream_hash=("md5", "4d473c1dd8becc155b73f8504c6f6626")),
    Download("densenet121_imagenet_torchvision", "torchvision DenseNet121, ImageNet weights (notebook 05)",
             f"https://download.pytorch.org/models/{DENSENET121_FILE}",
             f"weights/torch/hub/checkpoints/{DENSENET121_FILE}",
             lambda: torch_home() / "hub" / "checkpoints" / DENSENET121_FILE,
             upstream_hash=("sha256-prefix", "a639ec97")),
    Download("dfdc_train_sample", "DFDC competition archive with train_sample_videos (DATA_SOURCE = \"kaggle\")",
             "kaggle competitions download deepfake-detection-challenge",
             f"dfdc/{DFDC_ARCHIVE}",
             lambda: config.data_dir() / "kaggle" / "download" / DFDC_ARCHIVE,
             optional=True),
)
WEIGHTS = tuple(d for d in DOWNLOADS if not d.optional)


def find_download(key: str) -> Download:
    for download in DOWNLOADS:
        if download.key == key:
            return download
    raise KeyError(f"No download named {key!r}; known: {', '.join(d.key for d in DOWNLOADS)}.")


# ----------------------------------------------------------------------------
# Hashes and the manifest
# ----------------------------------------------------------------------------

def file_digest(path, algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in 1 MiB pieces (a 4 GB archive needs no 4 GB of memory)."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def check_upstream_hash(path, upstream: tuple[str, str] | None) -> None:
    """Raise :class:`DownloadCheckError` unless ``path`` matches the publisher's hash (if there is one)."""
    if upstream is None:
        return
    kind, expected = upstream
    if kind == "sha256-prefix":
        got = file_digest(path, "sha256")[:len(expected)]
    else:
        got = file_digest(path, kind)
    if got != expected:
        raise DownloadCheckError(f"{Path(path).name}: {kind} is {got}, but its publisher gives {expected}; "
                                 "the download is damaged or the file was changed upstream.")


def read_manifest(root) -> dict:
    """The manifest of a cache folder; :class:`CacheError` says what is wrong when it cannot be read."""
    root = Path(root)
    if not root.is_dir():
        raise CacheError(f"The course cache {root} does not exist (DEEPFAKE_CACHE points there). Check the path, "
                         "or create the cache with `make prefetch CACHE=<folder>` on a machine with internet.")
    path = root / MANIFEST
    if not path.is_file():
        raise CacheError(f"{root} holds no {MANIFEST}, so it is not a course cache (or `make prefetch` did not "
                         "finish). Run `make prefetch CACHE=<folder>` to make one.")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CacheError(f"{path} cannot be read ({error}); run `make prefetch` again to rewrite it.") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise CacheError(f"{path} is not a course-cache manifest (no \"files\" table); run `make prefetch` again.")
    return manifest


def write_manifest(root, manifest: dict) -> Path:
    """Write the manifest atomically (a half-written manifest never replaces a good one)."""
    return safe_io.atomic_write_json(Path(root) / MANIFEST, manifest, indent=1)


def manifest_entry(download: Download, path: Path, source: str | None = None) -> dict:
    """What the manifest records of one file: where it came from, its size and its SHA-256."""
    return {"path": download.cache_path, "title": download.title, "source": source or download.url,
            "size": path.stat().st_size, "sha256": file_digest(path),
            "fetched": time.strftime("%Y-%m-%dT%H:%M:%S")}


# ----------------------------------------------------------------------------
# Checking a cache
# ----------------------------------------------------------------------------

@dataclass
class FileCheck:
    """The verdict on one file of the cache: ``ok``, ``missing`` or ``corrupt`` (with the reason)."""

    download: Download
    status: str
    path: Path | None = None
    reason: str = ""
    installed: str = ""   # what use_cache did with it: "linked", "copied", "already there", or why not


@dataclass
class CacheReport:
    root: Path
    files: list[FileCheck] = field(default_factory=list)

    def by_status(self, status: str) -> list[FileCheck]:
        return [f for f in self.files if f.status == status]

    @property
    def ok(self) -> bool:
        """True when every weight file is there and intact (the optional DFDC archive may be absent)."""
        return all(f.status == "ok" for f in self.files if not (f.download.optional and f.status == "missing"))

    def summary(self) -> str:
        """One line per file, then what to do about the problems."""
        lines = [f"Course cache {self.root}:"]
        for f in self.files:
            mark = {"ok": "ok     ", "missing": "MISSING", "corrupt": "REFUSED"}[f.status]
            detail = f.installed if f.status == "ok" else f.reason
            lines.append(f"  {mark} {f.download.title}" + (f"  ({detail})" if detail else ""))
        missing = [f for f in self.by_status("missing") if not f.download.optional]
        if missing or self.by_status("corrupt"):
            lines.append("To fix: on a machine with internet run `make prefetch CACHE=<this folder>` (it downloads "
                         "only what is missing or damaged); until then the files above are downloaded on first "
                         "use, or run with PRETRAINED = False.")
        return "\n".join(lines)

    def as_dict(self) -> dict:
        return {"root": str(self.root), "ok": self.ok,
                "files": {f.download.key: {"status": f.status, "reason": f.reason, "installed": f.installed}
                          for f in self.files}}


def _verified_stamps_path() -> Path:
    return config.data_dir() / "cache_verified.json"


def _read_stamps() -> dict:
    try:
        return json.loads(_verified_stamps_path().read_text())
    except (OSError, ValueError):
        return {}


def _write_stamps(stamps: dict) -> None:
    try:
        safe_io.atomic_write_json(_verified_stamps_path(), stamps, indent=1)
    except OSError:
        pass  # no writable data folder: verify again next time


def _sha256_remembered(path: Path, stamps: dict) -> str:
    """SHA-256 of ``path``, hashed again only when its size or modification time changed since last time."""
    stat = path.stat()
    key = str(path.resolve())
    stamp = stamps.get(key)
    if stamp and stamp.get("size") == stat.st_size and stamp.get("mtime_ns") == stat.st_mtime_ns:
        return stamp["sha256"]
    digest = file_digest(path)
    stamps[key] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": digest}
    return digest


def _remember(path: Path, sha256: str, stamps: dict) -> None:
    stat = path.stat()
    stamps[str(path.resolve())] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": sha256}


def check_cache(root, downloads=DOWNLOADS, rehash: bool = False) -> CacheReport:
    """Verify every file the manifest lists against its size and SHA-256; report the missing ones.

    A file's hash is remembered (in ``data/cache_verified.json``, keyed by size
    and modification time) so a 4 GB archive is hashed once per machine, not
    once per notebook; ``rehash=True`` hashes everything again.
    """
    root = Path(root)
    manifest = read_manifest(root)
    stamps = {} if rehash else _read_stamps()
    report = CacheReport(root=root)
    for download in downloads:
        entry = manifest["files"].get(download.key)
        path = root / download.cache_path
        if entry is None:
            hint = "needs Kaggle credentials at `make prefetch`" if download.optional else "not fetched yet"
            report.files.append(FileCheck(download, "missing", path, f"not in the manifest ({hint})"))
            continue
        path = root / entry.get("path", download.cache_path)
        if not path.is_file():
            report.files.append(FileCheck(download, "missing", path, f"listed in the manifest but {path} is gone"))
            continue
        size = path.stat().st_size
        if size != entry.get("size"):
            report.files.append(FileCheck(download, "corrupt", path,
                                          f"{path.name} has {size:,} bytes, the manifest says {entry.get('size'):,}"))
            continue
        digest = _sha256_remembered(path, stamps)
        if digest != entry.get("sha256"):
            report.files.append(FileCheck(download, "corrupt", path,
                                          f"{path.name}: SHA-256 {digest[:12]}... differs from the manifest's "
                                          f"{str(entry.get('sha256'))[:12]}..."))
            continue
        report.files.append(FileCheck(download, "ok", path))
    _write_stamps(stamps)
    return report


# ----------------------------------------------------------------------------
# Using a cache
# ----------------------------------------------------------------------------

def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or os.path.samefile(a, b)
    except OSError:
        return False


def install_file(source: Path, target: Path, sha256: str, stamps: dict) -> str:
    """Make ``target`` hold ``source``'s content: a symbolic link, or a copy where links are refused.

    An existing ``target`` with the same content is left alone; one with other
    content (the user's own download) is never overwritten: the return value
    says so and the library keeps using the user's file.
    """
    if target.is_symlink() and not target.exists():
        target.unlink()  # a link to a cache that moved: ours, and pointing nowhere
    if target.exists():
        if _same_file(source, target) or _sha256_remembered(target, stamps) == sha256:
            return "already there"
        return f"not installed: {target} already exists with other content (yours; delete it to use the cache's)"
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        target.symlink_to(source.resolve())
        return f"linked at {target}"
    except OSError:  # Windows without developer mode, or a file system without links
        with safe_io.atomic_path(target) as partial:
            shutil.copyfile(source, partial)
        return f"copied to {target}"


def use_cache(root=None, downloads=DOWNLOADS, verbose: bool = True) -> CacheReport | None:
    """Check the cache named by ``DEEPFAKE_CACHE`` (or ``root``) and install each verified file.

    Returns None when no cache is set (the course then downloads on first use).
    Raises :class:`CacheError` when the folder is set but is not a cache, so a
    mistyped path does not pass unnoticed. Corrupt files are refused, missing
    ones reported; ``report.summary()`` says what to do.
    """
    root = Path(root).expanduser() if root is not None else config.cache_dir()
    if root is None:
        if verbose:
            print("No course cache (DEEPFAKE_CACHE is not set): pretrained weights download on first use.")
        return None
    report = check_cache(root, downloads)
    stamps = _read_stamps()
    manifest = read_manifest(root)
    for check in report.files:
        if check.status == "ok":
            sha = manifest["files"][check.download.key]["sha256"]
            check.installed = install_file(check.path, check.download.target(), sha, stamps)
    _write_stamps(stamps)
    if verbose:
        print(report.summary())
    return report


def weights_status(downloads=WEIGHTS) -> dict:
    """Title -> True when the file is where its library reads it (what notebook 00 shows)."""
    return {d.title: d.target().exists() for d in downloads}


# ----------------------------------------------------------------------------
# Filling a cache (make prefetch)
# ----------------------------------------------------------------------------

def download_url(url: str, destination: Path, timeout: float = 60.0, progress: bool = True) -> Path:
    """Download ``url`` to ``destination`` through a ``.partial`` file (moved into place only when complete)."""
    destination = Path(destination)
    request = urllib.request.Request(url, headers={"User-Agent": "deepfake-course-prefetch"})
    with safe_io.atomic_path(destination) as partial:  # removed, not moved into place, if anything fails
        with urllib.request.urlopen(request, timeout=timeout) as response, open(partial, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0)
            bar = None
            if progress:
                from tqdm.auto import tqdm

                bar = tqdm(total=total or None, unit="B", unit_scale=True, desc=destination.name, leave=False)
            while chunk := response.read(CHUNK):
                out.write(chunk)
                if bar is not None:
                    bar.update(len(chunk))
            if bar is not None:
                bar.close()
        if total and partial.stat().st_size != total:
            raise DownloadCheckError(f"{url}: got {partial.stat().st_size:,} of {total:,} bytes; run again.")
    return destination


def _new_manifest() -> dict:
    return {"format": MANIFEST_FORMAT, "course": "deepfake video detection", "files": {}}


def prefetch(root, downloads=WEIGHTS, fetch: Callable[[str, Path], Path] = download_url,
             dfdc: bool | None = None, kaggle_downloader=None) -> CacheReport:
    """Fill (or complete) the cache at ``root``: download what is missing or damaged, then record it.

    ``fetch(url, destination)`` does one download (:func:`download_url`; tests
    pass ``file://`` URLs or a replacement). ``dfdc``: also fetch the DFDC
    archive with the Kaggle client (None = when credentials are found). The
    manifest is rewritten after every file, so an interrupted run keeps what
    it finished.
    """
    from . import kaggle_data

    root = Path(root).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    manifest = read_manifest(root) if (root / MANIFEST).exists() else _new_manifest()
    manifest.setdefault("files", {})
    before = check_cache_if_any(root, DOWNLOADS)
    good = {f.download.key for f in before.by_status("ok")}
    for bad in before.by_status("corrupt"):  # our own damaged file: set aside (not deleted), then fetched again
        print(f"  set aside {bad.path.name} ({bad.reason})")
        bad.path.replace(bad.path.with_name(bad.path.name + ".rejected"))
    stamps = _read_stamps()
    for download in downloads:
        if download.key in good:
            print(f"  have  {download.title}")
            continue
        target = root / download.cache_path
        print(f"  fetch {download.title}\n        {download.url}")
        got = Path(fetch(download.url, target))
        try:
            check_upstream_hash(got, download.upstream_hash)
        except DownloadCheckError:
            got.rename(got.with_name(got.name + ".rejected"))  # kept for inspection, never used
            raise
        manifest["files"][download.key] = manifest_entry(download, got)
        _remember(got, manifest["files"][download.key]["sha256"], stamps)
        write_manifest(root, manifest)
    credentials = kaggle_data.find_kaggle_credentials()
    if dfdc is None:
        dfdc = credentials is not None
        if not dfdc:
            print("  skip  the DFDC archive: no Kaggle credentials (see notebook 01 to set them up; "
                  "then run `make prefetch` again to add it)")
    if dfdc:
        archive_download = find_download("dfdc_train_sample")
        folder = (root / archive_download.cache_path).parent
        archive = kaggle_data.fetch_kaggle_archive(folder, downloader=kaggle_downloader)
        if archive_download.key not in good:
            entry = manifest_entry(archive_download, archive,
                                   source=f"kaggle competition {kaggle_data.KAGGLE_COMPETITION}")
            manifest["files"][archive_download.key] = entry
            _remember(archive, entry["sha256"], stamps)
            write_manifest(root, manifest)
    _write_stamps(stamps)
    archive_key = find_download("dfdc_train_sample").key
    extra = (find_download(archive_key),) if dfdc or archive_key in manifest["files"] else ()
    return check_cache(root, tuple(d for d in downloads if d.key != archive_key) + extra)


def check_cache_if_any(root, downloads=DOWNLOADS) -> CacheReport:
    """:func:`check_cache`, or an empty report for a folder that is not a cache yet."""
    try:
        return check_cache(root, downloads)
    except CacheError:
        return CacheReport(root=Path(root))
