"""The one metadata format every data source ends in: ``metadata.json``, its checks, and the splits.

A dataset folder (built-in sample, Kaggle DFDC, your own videos) holds a
DFDC-style ``metadata.json`` mapping each video's file name to
``{"label": "REAL" | "FAKE", "split": "train" | "val" | "test", "original": ...}``
(fakes may add ``method`` and ``difficulty``). This module reads and writes
that file and owns the splits:

* :func:`parse_metadata` / :func:`read_metadata` / :func:`write_metadata` -
  check every entry and say what is wrong with each bad one;
* :func:`split_groups` / :func:`assign_splits` - a seeded, label-stratified
  train/val/test split that keeps a fake with its original (and any extra
  group, such as the sample's identities) on one side;
* :func:`check_splits` / :func:`split_warnings` - verify a split from the data.

Both :mod:`helpers.sample_data` and :mod:`helpers.data_sources` import it; it
imports neither.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from . import safe_io

LABELS = ("REAL", "FAKE")
SPLITS = ("train", "val", "test")
DEFAULT_FRACTIONS = (0.7, 0.15, 0.15)
DEFAULT_SEED = 42


class DatasetError(ValueError):
    """A dataset cannot be used as it is; ``problems`` lists every reason found."""

    def __init__(self, message: str, problems: list[str] | None = None):
        super().__init__(message)
        self.problems = list(problems or [])


def parse_metadata(data, where: str = "metadata.json") -> tuple[dict, list[str]]:
    """Check DFDC-style metadata; return ``(entries, problems)``.

    ``entries`` holds the usable entries as ``{name: {"label", "original", "split"?}}``;
    ``problems`` describes each entry that is not usable (and why).
    """
    if not isinstance(data, dict):
        return {}, [f"{where}: expected an object mapping video names to {{\"label\": ...}}, "
                    f"got {type(data).__name__}."]
    entries, problems = {}, []
    for name, entry in data.items():
        if not isinstance(entry, dict):
            problems.append(f"{where}: entry {name!r} is {type(entry).__name__}, expected an object with a label.")
            continue
        label = entry.get("label")
        if isinstance(label, str):
            label = label.strip().upper()
        if label not in LABELS:
            problems.append(f"{where}: {name!r} has label {entry.get('label')!r}; expected \"REAL\" or \"FAKE\".")
            continue
        original = entry.get("original")
        if original is not None and not isinstance(original, str):
            problems.append(f"{where}: {name!r} has original {original!r}; expected a file name or null.")
            continue
        if original == name:
            problems.append(f"{where}: {name!r} names itself as its original.")
            continue
        clean = {"label": label, "original": original if label == "FAKE" else None}
        if entry.get("split") in SPLITS:
            clean["split"] = entry["split"]
        if isinstance(entry.get("file"), str):
            clean["file"] = entry["file"]
        for optional in ("method", "difficulty"):  # how a fake was made (the built-in sample records it)
            if label == "FAKE" and isinstance(entry.get(optional), str) and entry[optional].strip():
                clean[optional] = entry[optional].strip()
        entries[str(name)] = clean
    return entries, problems


METADATA_ADVICE = ("It should be a UTF-8 JSON object mapping each video's file name to {\"label\": \"REAL\" or "
                   "\"FAKE\"} (fakes may add \"original\"). Fix it and run again; nothing in your folder was changed.")


def dataset_error(message: str) -> DatasetError:
    return DatasetError(message, [message])


def read_metadata_json(path: Path):
    """The parsed JSON of a metadata.json, read with every guard of :func:`helpers.safe_io.read_user_json`
    (regular file, size limit, byte-order mark, depth, keys given twice); DatasetError otherwise."""
    return safe_io.read_user_json(path, what="The metadata file", advice=METADATA_ADVICE, error=dataset_error)


def read_metadata(path) -> dict:
    """Read and check a ``metadata.json``; raise :class:`DatasetError` listing every problem."""
    path = Path(path)
    if not os.path.lexists(path):
        raise DatasetError(f"No metadata: {path} does not exist.", [f"{path} does not exist."])
    data = read_metadata_json(path)
    entries, problems = parse_metadata(data, path.name)
    if problems:
        raise DatasetError(problem_message(path, problems, can_skip=False), problems)
    return entries


def write_metadata(path, entries: dict) -> Path:
    """Write entries as DFDC-style ``metadata.json`` (atomically), keys sorted."""
    path = Path(path)
    out = {}
    for name in sorted(entries):
        e = entries[name]
        out[name] = {"label": e["label"], "split": e.get("split"), "original": e.get("original")}
        if e.get("file") and e["file"] != name:
            out[name]["file"] = e["file"]
        for optional in ("method", "difficulty"):
            if e.get(optional):
                out[name][optional] = e[optional]
    safe_io.atomic_write_json(path, out)
    return path


def problem_message(where, problems: list[str], can_skip: bool) -> str:
    lines = [f"{len(problems)} problem(s) with the dataset at {where}:"]
    lines += [f"  - {p}" for p in problems]
    if can_skip:
        lines.append("Fix them (nothing in your folder was changed), or pass skip_bad=True to "
                     "prepare_dataset to leave the listed videos out.")
    else:
        lines.append("Fix them and run again (nothing in your folder was changed).")
    return "\n".join(lines)


# ----------------------------------------------------------------------------
# Splits
# ----------------------------------------------------------------------------

def split_groups(entries: dict, groups: dict | None = None) -> list[list[str]]:
    """Sets of videos that must share a split: a fake with its original (and the original's other
    fakes, even if the original itself is absent), plus any extra ``groups`` (e.g. identity)."""
    parent: dict[str, str] = {}

    def find(x):
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(a, b):
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    for name, entry in entries.items():
        find("v:" + name)
        if entry.get("original"):
            union("v:" + name, "v:" + entry["original"])
        if groups and groups.get(name) is not None:
            union("v:" + name, "g:" + str(groups[name]))
    components: dict[str, list[str]] = {}
    for name in entries:
        components.setdefault(find("v:" + name), []).append(name)
    return sorted((sorted(c) for c in components.values()), key=lambda c: c[0])


def assign_splits(entries: dict, fractions=DEFAULT_FRACTIONS, seed: int = DEFAULT_SEED,
                  groups: dict | None = None) -> dict:
    """Seeded, grouped, label-stratified train/val/test assignment; returns ``{name: split}``.

    Whole groups (see :func:`split_groups`) are placed, largest first, in the
    split that brings the REAL and FAKE counts of every split closest to
    ``fractions``. Every split gets at least one group when there are enough.
    """
    fractions = np.asarray(fractions, dtype=float)
    if fractions.shape != (3,) or (fractions < 0).any() or fractions.sum() <= 0:
        raise ValueError(f"fractions must be three non-negative numbers (train, val, test), got {fractions}.")
    fractions = fractions / fractions.sum()
    comps = split_groups(entries, groups)
    rng = np.random.default_rng(seed)
    comps = [comps[i] for i in rng.permutation(len(comps))]
    comps.sort(key=len, reverse=True)  # stable: equal sizes keep the random order

    def composition(comp):
        fakes = sum(entries[n]["label"] == "FAKE" for n in comp)
        return np.array([len(comp) - fakes, fakes], dtype=float)

    totals = sum((composition(c) for c in comps), np.zeros(2))
    targets = fractions[:, None] * totals[None, :]
    counts = np.zeros((3, 2))
    placed: list[list[list[str]]] = [[], [], []]
    for comp in comps:
        add = composition(comp)
        costs = []
        for s in range(3):
            trial = counts.copy()
            trial[s] += add
            costs.append(((trial - targets) ** 2 / (targets + 1)).sum() + (1e9 if fractions[s] == 0 else 0))
        best = int(np.argmin(costs))
        counts[best] += add
        placed[best].append(comp)
    # every wanted split gets REAL and FAKE videos, when other splits have groups of that label to spare
    wanted = [s for s in range(3) if fractions[s] > 0]
    for s in wanted:
        for label in (1, 0):  # FAKE first: a split without fakes cannot be evaluated
            if any(composition(c)[label] for c in placed[s]):
                continue
            spare = {k: [c for c in placed[k] if composition(c)[label]] for k in wanted if k != s}
            donor = max(spare, key=lambda k: len(spare[k]), default=None)
            if donor is None or len(spare[donor]) < 2:
                continue
            moved = min(spare[donor], key=len)
            placed[donor].remove(moved)
            placed[s].append(moved)
    return {name: SPLITS[s] for s in range(3) for comp in placed[s] for name in comp}


def split_entries(entries: dict, fractions=DEFAULT_FRACTIONS, seed: int = DEFAULT_SEED, groups: dict | None = None,
                  keep_given: bool = False) -> dict:
    """A copy of ``entries`` with each video's ``split``: where every source's splits are made.

    :func:`helpers.data_sources.prepare_dataset` calls it for each source (the
    built-in sample with its identities as ``groups``). With ``keep_given``,
    the splits the entries already carry are kept when every entry has one (a
    metadata.json of your own may bring its split); otherwise
    :func:`assign_splits` makes them.
    """
    if keep_given and entries and all(e.get("split") in SPLITS for e in entries.values()):
        return {name: dict(e) for name, e in entries.items()}
    splits = assign_splits(entries, fractions=fractions, seed=seed, groups=groups)
    return {name: {**e, "split": splits[name]} for name, e in entries.items()}


def check_splits(df, groups: dict | None = None) -> dict:
    """Verify a split from the data (booleans computed, nothing assumed).

    - ``video_disjoint``: no video (by name, by file, or by identical content
      fingerprint) is in more than one split;
    - ``fakes_with_originals``: every fake shares its split with its original
      and with the other fakes of the same original;
    - ``groups_together``: every extra group (e.g. sample identity) sits in one split (None if no groups).
    """
    splits_of_name = df.groupby("name")["split"].nunique()
    splits_of_path = df.groupby("path")["split"].nunique()
    fingerprints = df.assign(fp=[_fingerprint(p) for p in df["path"]])
    splits_of_fp = fingerprints.dropna(subset=["fp"]).groupby("fp")["split"].nunique()
    disjoint = bool((splits_of_name <= 1).all() and (splits_of_path <= 1).all() and (splits_of_fp <= 1).all())
    split_of = dict(zip(df["name"], df["split"]))
    fakes = df[df["label"] == "FAKE"]
    pairs_ok = all(split_of.get(o, s) == s for o, s in zip(fakes["original"], fakes["split"]) if o)
    by_original = fakes.dropna(subset=["original"]).groupby("original")["split"].nunique()
    siblings_ok = bool((by_original <= 1).all())
    n_pairs = int(sum(1 for o in fakes["original"] if o and o in split_of))
    result = {"video_disjoint": disjoint, "fakes_with_originals": bool(pairs_ok and siblings_ok),
              "fake_original_pairs": n_pairs, "groups_together": None}
    if groups:
        g = df.assign(group=[groups.get(n) for n in df["name"]]).dropna(subset=["group"])
        result["groups_together"] = bool((g.groupby("group")["split"].nunique() <= 1).all())
    return result


def _fingerprint(path) -> str | None:
    """Size plus SHA-1 of the first MiB: catches the same video copied under two names."""
    try:
        p = Path(path)
        with p.open("rb") as f:
            head = f.read(1 << 20)
        return f"{p.stat().st_size}-{hashlib.sha1(head).hexdigest()}"
    except OSError:
        return None


def split_warnings(entries: dict, fractions=DEFAULT_FRACTIONS) -> list[str]:
    """Plain sentences about splits that cannot be used fully: a wanted split that is empty or holds
    one label only (too few videos of a kind to go round). Empty list when all is well."""
    warnings = []
    for split, share in zip(SPLITS, fractions):
        if not share:
            continue
        labels = [e["label"] for e in entries.values() if e.get("split") == split]
        if not labels:
            warnings.append(f"the {split} split is empty ({len(entries)} videos in all are too few to fill "
                            "train, val and test); add videos, or use the numbers of that split with care.")
        elif len(set(labels)) == 1:
            warnings.append(f"the {split} split holds {len(labels)} {labels[0]} video(s) and no "
                            f"{'FAKE' if labels[0] == 'REAL' else 'REAL'} one: its accuracy means little and its "
                            "ROC AUC is undefined. Add videos of the missing label.")
    return warnings
