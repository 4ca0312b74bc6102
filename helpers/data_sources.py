"""Where the videos come from: one metadata format for three sources.

Every source ends as a *dataset folder* holding ``metadata.json`` in the DFDC
format, plus our split of the videos::

    {"aagfhgtpmv.mp4": {"label": "FAKE", "split": "train", "original": "vudstovrck.mp4"},
     "vudstovrck.mp4": {"label": "REAL", "split": "train", "original": null}, ...}

Sources (``prepare_dataset(source=...)``):

``"sample"`` (default)
    the built-in synthetic sample, generated locally by :mod:`helpers.sample_data`
    into ``data/sample/<profile>/``.
``"kaggle"``
    the DFDC competition's ``train_sample_videos`` (400 videos + metadata.json),
    downloaded once with the official Kaggle client into ``data/kaggle/``.
    Needs Kaggle credentials and the competition rules accepted once on the
    website; without them you get a message saying exactly what to do.
``"folder"``
    your own videos: either DFDC-style (``metadata.json`` beside the videos)
    or ``real/`` and ``fake/`` sub-folders. The folder is checked first and
    every problem is reported in one list; nothing in it is ever changed. Our
    metadata (with the split) goes to ``data/own/<name>/``.

Splits are video-disjoint, keep every fake in the same split as its original
(and, for the sample, one identity's clips together), are stratified by label
and seeded. :func:`prepare_dataset` makes them for every source in one place,
:func:`helpers.metadata.split_entries`, after the source has its videos and labels;
:mod:`helpers.metadata` also reads and writes the format, and
:func:`helpers.metadata.check_splits` verifies a split from the data.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import zipfile
import zlib
from pathlib import Path, PurePosixPath

import numpy as np

from . import config, environment, safe_io
from .kaggle_data import KAGGLE_PREFIX, fetch_kaggle_archive
from .video_frames import VIDEO_EXTENSIONS
from .metadata import (DEFAULT_FRACTIONS, DEFAULT_SEED, LABELS, SPLITS, DatasetError, dataset_error, parse_metadata,
                       problem_message, read_metadata, read_metadata_json, split_entries, split_groups,
                       split_warnings, write_metadata)

# How many videos of a downloaded / own dataset each profile uses (None = all of them).
MAX_VIDEOS = {
    "kaggle": {"smoke": 8, "standard": 100, "full": None},
    "folder": {"smoke": 8, "standard": None, "full": None},
}


class UnsafeArchiveError(DatasetError):
    """An archive holds entries that would be written outside the target folder."""


class ArchiveLimitError(UnsafeArchiveError):
    """An archive would unpack to more than the limits allow (total size, compression ratio, entries)."""


class VideoError(ValueError):
    """A video file cannot be read."""


def _write_json(path: Path, data) -> None:
    safe_io.atomic_write_json(path, data)


def _read_own_json(path: Path):
    """One of *our* JSON files (cache, record); None when it is missing or damaged, so it is made again."""
    try:
        return safe_io.read_user_json(path, what="The file")
    except safe_io.UnreadableFileError:
        return None


# ----------------------------------------------------------------------------
# Video files
# ----------------------------------------------------------------------------

def inspect_video(path) -> dict:
    """Size, frame rate, frame count and duration of a video; decodes its first frame.

    Width and height are as *displayed*: a phone video stored landscape with a
    90-degree rotation flag is reported as portrait (``rotation`` says so, in
    degrees counter-clockwise). The reading is :func:`helpers.video_frames.probe_video`'s;
    this adds the file size and raises :class:`VideoError` for missing, empty,
    unreadable or frameless files.
    """
    from . import video_frames

    path = Path(path)
    if not path.is_file():
        raise VideoError(f"{path.name}: file not found.")
    size = path.stat().st_size
    if size == 0:
        raise VideoError(f"{path.name}: the file is empty (0 bytes).")
    try:
        info = video_frames.probe_video(path)
    except video_frames.VideoReadError as error:
        raise VideoError(str(error)) from None
    fps = info.fps if info.fps else float("nan")
    return {"width": info.width, "height": info.height, "fps": round(fps, 3), "n_frames": info.n_frames,
            "duration_s": round(info.duration_s, 3) if info.fps else None, "size_bytes": size,
            "rotation": info.rotation, "codec": info.codec}


def _is_video(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in VIDEO_EXTENSIONS and not path.name.startswith(".")


def _subset(entries: dict, n: int | None, seed: int) -> dict:
    """At most ``n`` videos, keeping every split's REAL/FAKE mix (at least one of each where there
    is one) and the overall proportions; an original is taken before its fakes."""
    if n is None or n >= len(entries):
        return entries
    have = {}
    for e in entries.values():
        have[e["split"], e["label"]] = have.get((e["split"], e["label"]), 0) + 1
    cells = sorted(have, key=lambda c: (SPLITS.index(c[0]), LABELS.index(c[1])))
    quota = {c: 0 for c in cells}
    for c in sorted(cells, key=lambda c: -have[c])[:n]:  # one of each kind first, most common kinds first
        quota[c] = 1
    left = n - sum(quota.values())
    if left > 0:  # the rest in proportion to what there is (largest remainders)
        spare = {c: have[c] - quota[c] for c in cells}
        total = sum(spare.values())
        exact = {c: left * spare[c] / total for c in cells}
        add = {c: min(spare[c], int(exact[c])) for c in cells}
        for c in sorted(cells, key=lambda c: exact[c] - int(exact[c]), reverse=True):
            if sum(add.values()) >= left:
                break
            if add[c] < spare[c]:
                add[c] += 1
        for c in cells:
            quota[c] += add[c]
    rng = np.random.default_rng([seed, 11])
    comps = split_groups(entries)
    comps = [comps[i] for i in rng.permutation(len(comps))]
    chosen = {}
    for comp in comps:
        for name in sorted(comp, key=lambda x: entries[x]["label"] != "REAL"):  # originals first
            key = (entries[name]["split"], entries[name]["label"])
            if quota[key] > 0:
                chosen[name] = entries[name]
                quota[key] -= 1
    return chosen


# ----------------------------------------------------------------------------
# Your own folder
# ----------------------------------------------------------------------------

def scan_folder(folder) -> tuple[dict, list[str], list[str], dict]:
    """Find and check the videos of a DFDC-style or real/ + fake/ folder.

    Returns ``(entries, video_problems, fatal_problems, video_info)``: entries
    hold a ``file`` (path relative to the folder); video problems concern
    single videos (they may be skipped); fatal problems make the folder
    unusable; ``video_info`` is :func:`inspect_video`'s answer per readable video.
    In the real/ + fake/ layout every video gets a name of its own even when
    files in different sub-folders share a file name (see :func:`unique_video_names`).
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        return {}, [], [f"{folder} is not a folder."], {}
    meta_path = folder / "metadata.json"
    children = _list_folder(folder)
    subdirs: dict[str, list[Path]] = {}
    for p in children:
        if p.is_dir():
            subdirs.setdefault(p.name.lower(), []).append(p)
    entries, video_problems, fatal = {}, [], []
    if os.path.lexists(meta_path):
        try:
            data = read_metadata_json(meta_path)
        except DatasetError as error:
            return {}, [], [str(error)], {}
        parsed, problems = parse_metadata(data)
        if not isinstance(data, dict):
            return {}, [], problems, {}
        video_problems += problems
        present = {p.name: p for p in children if _is_video(p)}
        for name, entry in parsed.items():
            if name not in present:
                candidate = folder / name
                if os.path.lexists(candidate) and not candidate.is_file():
                    video_problems.append(f"{name}: labelled in metadata.json but it is not a regular file "
                                          "(a folder, a named pipe or a broken link).")
                else:
                    video_problems.append(f"{name}: labelled in metadata.json but there is no such file.")
                continue
            entries[name] = {**entry, "file": name}
        bad_names = {str(n) for n in data}
        for name in sorted(set(present) - set(parsed) - bad_names):
            video_problems.append(f"{name}: video without a label (not in metadata.json).")
    elif "real" in subdirs or "fake" in subdirs:
        labelled_files = []
        for label in LABELS:
            found = subdirs.get(label.lower(), [])
            if len(found) > 1:
                fatal.append(f"{folder} has {len(found)} folders for {label} videos "
                             f"({', '.join(sorted(p.name + '/' for p in found))}); keep one {label.lower()}/ "
                             "folder (move the videos of the others into it).")
                continue
            if not found:
                video_problems.append(f"there is no {label.lower()}/ folder, so there are no {label} videos.")
                continue
            sub = found[0]
            files = sorted(p for p in sub.rglob("*") if _is_video(p))
            if not files:
                video_problems.append(f"{sub.name}/ holds no videos ({', '.join(VIDEO_EXTENSIONS)}).")
            labelled_files += [(p.relative_to(folder).as_posix(), label) for p in files]
        names = unique_video_names([rel for rel, _ in labelled_files])
        for rel, label in labelled_files:
            entries[names[rel]] = {"label": label, "original": None, "file": rel}
        if fatal:
            return {}, [], fatal, {}
    else:
        fatal.append(f"{folder} has neither a metadata.json (DFDC layout) nor real/ and fake/ sub-folders. "
                     "Put the videos in real/ and fake/, or add a metadata.json like "
                     "{\"clip.mp4\": {\"label\": \"REAL\"}, \"swap.mp4\": {\"label\": \"FAKE\", "
                     "\"original\": \"clip.mp4\"}}.")
        return {}, [], fatal, {}
    infos = {}
    for name in sorted(entries):
        try:
            infos[name] = inspect_video(folder / entries[name]["file"])
        except VideoError as error:
            video_problems.append(str(error) if str(error).startswith(name) else f"{name}: {error}")
            entries.pop(name)
    if not entries:
        fatal.append("no readable, labelled video was found.")
    return entries, video_problems, fatal, infos


def _list_folder(folder: Path) -> list[Path]:
    try:
        return sorted(folder.iterdir())
    except OSError as error:
        raise DatasetError(f"{folder} cannot be listed ({error.strerror or error}); check that you may read it.",
                           [f"{folder}: cannot be listed."]) from None


def unique_video_names(relative_paths) -> dict:
    """A video name for each relative path (``"real/sub/clip.mp4"``), distinct even ignoring case.

    A file keeps its own name when no other file in the folder has it (in any
    letter case); files sharing a name are named after their whole path, with
    ``__`` for ``/`` (``real__sub__clip.mp4``). Should that name be taken too
    (a file really called ``real__sub__clip.mp4``), ``-2``, ``-3``... is added
    before the extension. Names never contain ``/`` or ``\\``, so each is also
    a safe file name for the crops of later stages. The result does not depend
    on the order of ``relative_paths``.
    """
    paths = sorted(set(relative_paths))
    def base(rel):
        return PurePosixPath(rel).name
    counts: dict[str, int] = {}
    for rel in paths:
        counts[base(rel).casefold()] = counts.get(base(rel).casefold(), 0) + 1
    names, taken = {}, set()
    for rel in paths:  # unique file names first: they are never renamed
        if counts[base(rel).casefold()] == 1:
            names[rel] = base(rel)
            taken.add(base(rel).casefold())
    for rel in paths:
        if rel in names:
            continue
        candidate = rel.replace("\\", "/").replace("/", "__")
        stem, dot, suffix = candidate.rpartition(".")
        stem, suffix = (stem, dot + suffix) if dot and stem else (candidate, "")
        number = 1
        while candidate.casefold() in taken:
            number += 1
            candidate = f"{stem}-{number}{suffix}"
        names[rel] = candidate
        taken.add(candidate.casefold())
    return names


def _folder_fingerprint(folder: Path) -> str:
    h = hashlib.sha1()
    for p in sorted(folder.rglob("*")):
        if p.is_file() and (p.name == "metadata.json" or _is_video(p)):
            st = p.stat()
            h.update(f"{p.relative_to(folder).as_posix()}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def _prepare_from_folder(video_root: Path, out_dir: Path, source: str, seed: int, fractions, skip_bad: bool,
                         max_videos: int | None, keep_splits: bool = False) -> Path:
    """Validate ``video_root``, split it, and write our metadata into ``out_dir`` (never into video_root)."""
    video_root = Path(video_root).expanduser().resolve()
    key = {"source": source, "video_root": str(video_root), "fingerprint": _folder_fingerprint(video_root),
           "seed": seed, "fractions": list(fractions), "skip_bad": bool(skip_bad), "keep_splits": keep_splits}
    # a subset lives inside the full dataset's folder, under a name that is unique on its own
    # (later stages key their caches by the dataset folder's name)
    final = out_dir if not max_videos else out_dir / f"{out_dir.name}-max{int(max_videos)}"
    source_file = final / "source.json"
    for made in {out_dir, final}:
        _check_not_taken(made, video_root)
    if (final / "metadata.json").exists() and source_file.exists():
        stored = _read_own_json(source_file)
        if isinstance(stored, dict) and {k: stored.get(k) for k in key} == key \
                and stored.get("max_videos") == max_videos:
            for warning in stored.get("warnings") or []:
                print("Note:", warning)
            return final
    entries, video_problems, fatal, infos = scan_folder(video_root)
    if fatal:
        raise DatasetError(problem_message(video_root, fatal + video_problems, can_skip=False),
                           fatal + video_problems)
    if video_problems and not skip_bad:
        raise DatasetError(problem_message(video_root, video_problems, can_skip=True), video_problems)
    if video_problems:
        print(f"Leaving out what these {len(video_problems)} problem(s) concern (skip_bad=True):")
        for p in video_problems:
            print("  -", p)
    _check_both_labels(entries, video_root, video_problems)
    entries = split_entries(entries, fractions=fractions, seed=seed, keep_given=keep_splits)
    entries = _subset(entries, max_videos, seed)
    warnings = split_warnings(entries, fractions)
    for warning in warnings:
        print("Note:", warning)
    _write_json(final / "video_info.json", {name: infos[name] for name in entries})
    write_metadata(final / "metadata.json", entries)
    _write_json(source_file, {**key, "max_videos": max_videos, "skipped": video_problems,
                              "n_videos": len(entries), "warnings": warnings})
    return final


def _check_not_taken(out_dir: Path, video_root: Path) -> None:
    """Refuse to reuse a dataset folder that was made from another video folder (two folders given
    the same ``name=``): its metadata would be replaced and later caches mixed up."""
    stored = _read_own_json(out_dir / "source.json")
    if isinstance(stored, dict) and stored.get("video_root") and stored["video_root"] != str(video_root):
        raise DatasetError(
            f"The dataset name {out_dir.name!r} is already used by the videos of {stored['video_root']}, "
            f"not {video_root}. Give this folder another name (name=...), or delete {out_dir} to reuse the "
            "name; your videos are not touched either way.", [f"{out_dir.name}: name already used."])


def _check_both_labels(entries: dict, video_root: Path, left_out: list) -> None:
    """A dataset needs REAL and FAKE videos: with one label a model cannot learn and AUC is undefined."""
    have = {e["label"] for e in entries.values()}
    missing = [label for label in LABELS if label not in have]
    if not missing:
        return
    why = (f" after leaving out {len(left_out)} problem video(s) (skip_bad=True)" if left_out else "")
    message = (f"The dataset at {video_root} has no {' and no '.join(missing)} videos{why}: only "
               f"{len(entries)} {'/'.join(sorted(have)) or 'no'} video(s) remain, and a detector needs both "
               "labels to learn and to be evaluated. Add "
               f"{' and '.join(m + ' videos' for m in missing)} (or fix the ones listed above) and run again; "
               "nothing in your folder was changed.")
    raise DatasetError(message, [message])


def _own_name(folder: Path) -> str:
    base = re.sub(r"[^A-Za-z0-9_.-]+", "_", folder.name) or "videos"
    return f"{base}-{hashlib.sha1(str(folder).encode()).hexdigest()[:8]}"


def _unsafe_reason(info: zipfile.ZipInfo) -> str | None:
    name = info.filename.replace("\\", "/")
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return "absolute path"
    if ".." in PurePosixPath(name).parts:
        return "'..' in the path"
    if stat.S_ISLNK(info.external_attr >> 16):
        return "symbolic link"
    return None


# Limits on what an archive may unpack to. The competition's train_sample_videos is about 4 GB of
# videos, which hardly compress (ratio about 1); a "zip bomb" packs gigabytes of zeros into kilobytes.
MAX_EXTRACT_BYTES = 16 * 2**30     # total size of the extracted files
MAX_COMPRESSION_RATIO = 100        # uncompressed / compressed size, for entries above 1 MiB and overall
MAX_ARCHIVE_ENTRIES = 100_000      # the DFDC archive has about 800
FREE_SPACE_MARGIN = 512 * 2**20    # left free on the disk after extracting


def check_archive(archive, prefix: str | None = None, max_total_bytes: int | None = None,
                  max_ratio: float | None = None) -> list:
    """The zip entries :func:`safe_extract` would write, after checking the whole archive.

    Refused, with :class:`UnsafeArchiveError` listing every entry at fault: a file
    that is no zip, absolute paths, ``..`` components, symbolic links; with
    :class:`ArchiveLimitError`: more than ``MAX_ARCHIVE_ENTRIES`` entries, more than
    ``max_total_bytes`` in all, or a compression ratio above ``max_ratio``.
    Reads only the archive's directory, never the compressed data.
    """
    max_total_bytes = MAX_EXTRACT_BYTES if max_total_bytes is None else max_total_bytes
    max_ratio = MAX_COMPRESSION_RATIO if max_ratio is None else max_ratio
    name = Path(archive).name
    try:
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        problem = f"{name} is not a readable zip archive ({error}); it is damaged or incomplete"
        raise UnsafeArchiveError(f"Refusing to extract {problem}.", [problem]) from None
    bad = [f"{i.filename!r}: {reason}" for i in infos if (reason := _unsafe_reason(i))]
    if bad:
        raise UnsafeArchiveError(f"Refusing to extract {name}: {len(bad)} unsafe entr"
                                 f"{'y' if len(bad) == 1 else 'ies'}:\n  - " + "\n  - ".join(bad), bad)
    if len(infos) > MAX_ARCHIVE_ENTRIES:
        problem = f"it holds {len(infos):,} entries; at most {MAX_ARCHIVE_ENTRIES:,} are extracted"
        raise ArchiveLimitError(f"Refusing to extract {name}: {problem}.", [problem])
    chosen = [i for i in infos if not i.is_dir() and (not prefix or i.filename.replace("\\", "/").startswith(prefix))]
    problems = []
    total = sum(i.file_size for i in chosen)
    packed = sum(i.compress_size for i in chosen)
    if total > max_total_bytes:
        problems.append(f"it would unpack to {total / 2**30:.2f} GB, more than the limit of "
                        f"{max_total_bytes / 2**30:.2f} GB")
    for info in chosen:
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > 2**20 and ratio > max_ratio:
            problems.append(f"{info.filename!r} is {info.file_size / 2**20:.0f} MB packed into "
                            f"{info.compress_size / 2**10:.0f} KB (ratio {ratio:.0f}, limit {max_ratio:g}); "
                            "videos do not compress like that")
    if total > 2**20 and total > max_ratio * max(packed, 1) and not problems:
        problems.append(f"its entries unpack to {total / max(packed, 1):.0f} times their packed size "
                        f"(limit {max_ratio:g})")
    if problems:
        raise ArchiveLimitError(f"Refusing to extract {name}: " + "; ".join(problems[:5])
                                + ("; ..." if len(problems) > 5 else "") + ".", problems)
    return chosen


def safe_extract(archive, target_dir, prefix: str | None = None, max_total_bytes: int | None = None,
                 max_ratio: float | None = None) -> Path:
    """Extract a zip into ``target_dir`` without letting any entry escape it or fill the disk.

    The whole archive is checked first (:func:`check_archive`: unsafe paths,
    links, entry count, total size, compression ratio) and the disk must have
    room for all of it plus ``FREE_SPACE_MARGIN``; otherwise nothing is written.
    Only entries under ``prefix`` are extracted (with the prefix removed), and
    none may grow beyond the size the archive declares for it. Extraction goes
    to ``<target>.partial`` and is renamed when complete (a refused or failed
    extraction removes it); an existing complete target is returned as is.
    """
    target = Path(target_dir)
    if target.is_dir():
        return target
    chosen = check_archive(archive, prefix, max_total_bytes, max_ratio)
    total = sum(i.file_size for i in chosen)
    safe_io.check_free_space(target.parent, total, f"Extracting {Path(archive).name}", FREE_SPACE_MARGIN,
                             error=dataset_error, advice="Free some space there, or set DEEPFAKE_DATA_DIR to a "
                             "folder on a larger disk, and run again.")
    work = target.with_name(target.name + ".partial")
    if work.exists():
        shutil.rmtree(work)  # our own half-finished extraction
    work.mkdir(parents=True)
    try:
        _extract_entries(archive, chosen, work, target, prefix)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    work.replace(target)
    return target


def _extract_entries(archive, chosen: list, work: Path, target: Path, prefix: str | None) -> None:
    """Write the checked entries into ``work``, each no larger than the size the archive declares."""
    name_of_archive = Path(archive).name
    root = work.resolve()
    with zipfile.ZipFile(archive) as zf:
        for info in chosen:
            name = info.filename.replace("\\", "/")
            if prefix:
                name = name[len(prefix):]
            if not name or name.endswith("/"):
                continue
            dest = (work / name).resolve()
            if root not in dest.parents:
                raise UnsafeArchiveError(f"Refusing to extract {info.filename!r}: it resolves outside {target}.",
                                         [info.filename])
            dest.parent.mkdir(parents=True, exist_ok=True)
            written = 0
            try:
                with zf.open(info) as src, open(dest, "wb") as out:
                    while chunk := src.read(1 << 20):
                        written += len(chunk)
                        if written > info.file_size:
                            problem = f"{info.filename!r} unpacks to more than the {info.file_size} bytes it declares"
                            raise ArchiveLimitError(f"Refusing to extract {name_of_archive}: {problem}.", [problem])
                        out.write(chunk)
            except (zipfile.BadZipFile, zlib.error, EOFError) as error:
                problem = f"{info.filename!r} is damaged ({error})"
                raise UnsafeArchiveError(f"Could not extract {name_of_archive}: {problem}.", [problem]) from None


def set_archive_aside(archive, error: DatasetError) -> DatasetError:
    """Move a refused archive we downloaded into ``refused/`` beside it; return ``error`` saying so.

    Left in place, every rerun would find the "complete" archive and fail the
    same way; moved aside, the next run downloads a fresh copy, and the file is
    kept for whoever wants to look at it. Never used on a user's own files.
    """
    archive = Path(archive)
    aside_dir = archive.parent / "refused"
    aside_dir.mkdir(parents=True, exist_ok=True)
    aside = aside_dir / archive.name
    number = 1
    while aside.exists():
        number += 1
        aside = aside_dir / f"{archive.stem}-{number}{archive.suffix}"
    archive.replace(aside)
    message = (f"{error}\nThe archive was moved to {aside}, so the next run downloads a fresh copy. If the new "
               "download is refused too, the file Kaggle serves is not what this course expects: do not extract "
               "it by hand. Delete the moved file when you no longer need it (nothing uses it).")
    return type(error)(message, error.problems)


# ----------------------------------------------------------------------------
# The one entry point, and reading a dataset back
# ----------------------------------------------------------------------------

def prepare_dataset(source: str = "sample", profile: str = "standard", path=None, difficulty: str | None = None,
                    **options) -> Path:
    """Make a dataset folder with ``metadata.json`` (DFDC format plus splits); cached, so cheap to call again.

    Args:
        source: "sample" (built-in, generated), "kaggle" (DFDC train_sample_videos) or "folder" (your videos).
        profile: "smoke" | "standard" | "full": the sample's size; for kaggle/folder how many videos are used
            (``MAX_VIDEOS``; override with ``max_videos=``).
        path: your folder of videos (source="folder").
        difficulty: the built-in sample's difficulty (``sample_data.DIFFICULTIES``; None = the profile's);
            the other sources ignore it, their fakes are what they are.
        **options: sample: any setting of :func:`helpers.sample_data.sample_settings` (``seed``, ``n_real``,
            ``width``...) and ``progress``; kaggle/folder: ``seed``, ``fractions``, ``max_videos``,
            ``skip_bad`` (leave bad videos out instead of stopping), ``keep_splits`` (folder: use the
            splits in your metadata.json); kaggle: ``downloader`` (a replacement for the client, for tests).

    Returns:
        Path of the dataset folder (read it with :func:`load_dataset`).
    """
    config.check_profile(profile)
    source = (source or "sample").lower()
    if source == "sample":
        return _prepare_sample(profile, difficulty=difficulty, **options)
    seed = _whole_number("seed", options.pop("seed", None), DEFAULT_SEED, minimum=0)
    fractions = _split_fractions(options.pop("fractions", DEFAULT_FRACTIONS))
    skip_bad = bool(options.pop("skip_bad", False))
    max_videos = _whole_number("max_videos", options.pop("max_videos", MAX_VIDEOS.get(source, {}).get(profile)),
                               None, minimum=1)
    if source == "kaggle":
        downloader = options.pop("downloader", None)
        _no_more(options)
        root = config.data_dir() / "kaggle"
        # Kaggle Notebooks with the competition's data attached: read it in place (read-only, no copy)
        videos = environment.kaggle_dfdc_videos() or root / "train_sample_videos"
        if not videos.is_dir():
            archive = fetch_kaggle_archive(root / "download", downloader=downloader)
            print(f"Extracting {KAGGLE_PREFIX} from {archive.name} ...")
            try:
                safe_extract(archive, videos, prefix=KAGGLE_PREFIX)
            except UnsafeArchiveError as error:  # also ArchiveLimitError
                raise set_archive_aside(archive, error) from None
        return _prepare_from_folder(videos, root / "dfdc_train_sample", "kaggle", seed, fractions, skip_bad,
                                    max_videos)
    if source == "folder":
        keep_splits = bool(options.pop("keep_splits", False))
        name = options.pop("name", None)
        _no_more(options)
        if name is not None and not (isinstance(name, str) and re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", name)):
            message = (f"name must be a plain folder name (letters, digits, '_', '-', '.'), got {name!r}; "
                       "it becomes the folder data/own/<name>.")
            raise DatasetError(message, [message])
        if path is None:
            raise DatasetError("DATA_SOURCE is \"folder\" but no DATA_PATH was given: set DATA_PATH to the folder "
                               "holding your videos (with metadata.json, or real/ and fake/ sub-folders).")
        folder = Path(path).expanduser().resolve()
        out = config.data_dir() / "own" / (name or _own_name(folder))
        if out.resolve() == folder or folder in out.resolve().parents:
            raise DatasetError(f"Our metadata would be written inside your folder {folder}; choose another "
                               "DEEPFAKE_DATA_DIR.")
        return _prepare_from_folder(folder, out, "folder", seed, fractions, skip_bad, max_videos, keep_splits)
    raise ValueError(f"Unknown data source {source!r}: choose \"sample\", \"kaggle\" or \"folder\".")


def _whole_number(name: str, value, default, minimum: int):
    """An option that must be a whole number >= minimum (None = ``default``); DatasetError otherwise."""
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        if isinstance(value, float) and value.is_integer() and value >= minimum:
            return int(value)
        message = f"{name} must be a whole number of at least {minimum} (or None), got {value!r}."
        raise DatasetError(message, [message])
    return int(value)


def _split_fractions(value) -> tuple:
    """Three non-negative numbers (train, val, test) with a positive sum; DatasetError otherwise."""
    try:
        fractions = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        fractions = ()
    if len(fractions) != 3 or not all(np.isfinite(fractions)) or min(fractions) < 0 or sum(fractions) <= 0:
        message = (f"fractions must be three non-negative numbers for train, val and test, e.g. (0.7, 0.15, 0.15); "
                   f"got {value!r}.")
        raise DatasetError(message, [message])
    return fractions


def _no_more(options: dict) -> None:
    if options:
        raise TypeError(f"Unknown option(s) for this data source: {', '.join(sorted(options))}.")


def _prepare_sample(profile: str, progress: bool = True, **overrides) -> Path:
    from . import sample_data

    settings = sample_data.sample_settings(profile, **overrides)
    default = sample_data.sample_settings(profile)
    name = profile
    if settings != default:
        digest = hashlib.sha1(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:8]
        name = f"{profile}-{digest}"
    out = config.data_dir() / "sample" / name
    generation = sample_data.read_generation(out) if (out / "metadata.json").exists() else None
    wanted = {k: (list(v) if isinstance(v, tuple) else v) for k, v in settings.items()}
    if not (generation and generation.get("settings") == wanted and
            generation.get("generator_version") == sample_data.GENERATOR_VERSION):
        sample_data.generate_sample(out, profile, progress=progress, **overrides)
    return _split_sample(out, settings)


def _split_sample(out: Path, settings: dict) -> Path:
    """Give a generated sample its splits, once: an identity's clips (and each fake with its original)
    share a split, so no face is seen in training and again at test time."""
    from . import sample_data

    entries = read_metadata(out / "metadata.json")
    if all(e.get("split") in SPLITS for e in entries.values()):
        return out
    groups = {name: video["group"] for name, video in sample_data.read_generation(out)["videos"].items()}
    write_metadata(out / "metadata.json", split_entries(entries, fractions=settings["fractions"],
                                                        seed=settings["seed"], groups=groups))
    return out


def _video_root(dataset_dir: Path) -> Path:
    source = dataset_dir / "source.json"
    if not os.path.lexists(source):
        return dataset_dir
    stored = _read_own_json(source)
    if not isinstance(stored, dict) or not isinstance(stored.get("video_root"), str):
        raise DatasetError(f"{source} is damaged (it should say where the videos are). Delete the folder "
                           f"{dataset_dir} (it holds only our metadata, never your videos) and run "
                           "prepare_dataset again.", [f"{source}: damaged."])
    return Path(stored["video_root"])


def load_dataset(dataset_dir, probe: bool = True):
    """One row per video: name, path (absolute), label, target (1 = FAKE), split, original,
    method and difficulty, and (``probe=True``, cached in ``video_info.json``) width, height,
    orientation, fps, n_frames, duration_s, size_bytes.

    ``method`` is how a fake was made where the metadata says so (the built-in
    sample does), ``"unknown"`` for other fakes and ``"real"`` for real videos;
    ``difficulty`` is the metadata's word for it, or None."""
    import pandas as pd

    dataset_dir = Path(dataset_dir)
    entries = read_metadata(dataset_dir / "metadata.json")
    root = _video_root(dataset_dir)
    rows = []
    for name in sorted(entries):
        e = entries[name]
        fake = e["label"] == "FAKE"
        rows.append({"name": name, "path": str((root / e.get("file", name)).resolve()), "label": e["label"],
                     "target": int(fake), "split": e.get("split"), "original": e.get("original"),
                     "method": e.get("method", "unknown") if fake else "real", "difficulty": e.get("difficulty")})
    columns = ["name", "path", "label", "target", "split", "original", "method", "difficulty"]
    df = pd.DataFrame(rows, columns=columns)
    for column in ("original", "difficulty"):  # None, not NaN
        df[column] = pd.Series([r[column] for r in rows], index=df.index, dtype=object)
    if not probe or df.empty:
        return df
    info_path = dataset_dir / "video_info.json"
    info = _read_own_json(info_path) if info_path.exists() else {}
    if not isinstance(info, dict):  # a damaged cache: probe again
        info = {}
    info = {k: v for k, v in info.items() if isinstance(v, dict)}
    changed = False
    for name, path in zip(df["name"], df["path"]):
        size = Path(path).stat().st_size if Path(path).exists() else None
        if name not in info or info[name].get("size_bytes") != size:
            try:
                info[name] = inspect_video(path)
            except VideoError as error:
                info[name] = {"size_bytes": size, "error": str(error)}
            changed = True
    if changed:
        try:
            _write_json(info_path, info)
        except OSError:
            pass  # a read-only dataset folder: probe again next time
    for column in ("width", "height", "fps", "n_frames", "duration_s", "size_bytes"):
        df[column] = [info[n].get(column) for n in df["name"]]
    df["orientation"] = np.where(df["height"] > df["width"], "portrait",
                                 np.where(df["height"] < df["width"], "landscape", "square"))
    return df
