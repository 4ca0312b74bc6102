"""Compare the numbers a course run recorded with a committed reference run.

    python tools/compare_reference.py                       results/ against tests/reference/standard.json
    python tools/compare_reference.py --results DIR         another run's results folder
    python tools/compare_reference.py --write               make the reference from results/ (after `make course`)

A reference file lists, per check, the notebook's results file, the path of one
number in it (keys joined by dots), the reference run's value and a tolerance
(the largest absolute difference accepted). The tolerances are wide enough for
what changes between two runs of the same code on different machines (thread
counts change the order of float sums, so training ends a little elsewhere) and
narrow enough that a model that stops learning, a broken split or a changed
sample falls outside them. Counts are compared exactly.

`make test-functional` runs the whole course in its `standard` profile in a
temporary folder and then this comparison (tests/test_functional.py); CI runs
the fast suite only.
"""
from __future__ import annotations

import argparse
import datetime
import json
import platform
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from helpers import config  # noqa: E402

DEFAULT_REFERENCE = REPO_ROOT / "tests" / "reference" / "standard.json"

# What a reference run holds: (results file, path, tolerance, why this number). Tolerance 0: exact.
# A test AUC may move this much between two runs of the same code (other thread counts, other CPUs).
# It is half the 95 % CI's half-width on 42 test videos: on the medium sample the models reach about
# 0.55-0.65, so a model that drops to chance (0.5) may still be inside it; the other checks are tighter.
AUC_TOLERANCE = 0.08
CHECKS = [
    ("01_data", "n_videos", 0, "the sample's size: same generator, same profile"),
    ("01_data", "counts.split.test", 0, "the split is seeded"),
    ("01_data", "trivial_classifier.scores.all of them.roc_auc", AUC_TOLERANCE,
     "face statistics alone barely separate the classes"),
    ("01_data", "leakage.inflation.roc_auc", AUC_TOLERANCE, "a random frame split inflates the score"),
    ("02_faces", "detection_rate", 0.02, "MTCNN finds the faces"),
    ("02_faces", "n_crops", 40, "face crops of the sample (about 2 % may differ with the detector's rounding)"),
    ("03_keras_resnet_lstm", "tensorflow.video.roc_auc", AUC_TOLERANCE, "the Keras video model"),
    ("04_inception_resnet", "test.video.roc_auc", AUC_TOLERANCE, "InceptionResnetV1"),
    ("05_model_comparison", "table.custom_cnn.test_roc_auc", AUC_TOLERANCE, "Table 2: custom CNN"),
    ("05_model_comparison", "table.meso4.test_roc_auc", AUC_TOLERANCE, "Table 2: Meso-4"),
    ("05_model_comparison", "table.densenet121.test_roc_auc", AUC_TOLERANCE, "Table 2: DenseNet121"),
    ("05_model_comparison", "table.inception_resnet_v1.test_roc_auc", AUC_TOLERANCE, "Table 2: InceptionResnetV1"),
    ("05_model_comparison", "table.ensemble.test_roc_auc", AUC_TOLERANCE, "Table 2: the ensemble"),
    ("06_tta_gradcam", "tta.change.meso4.video log_loss.change", 0.05, "what TTA changes"),
]


def lookup(result: dict, path: str):
    """The value at ``path`` (keys joined by dots; a key may hold spaces), or KeyError naming the missing key."""
    value = result
    for key in path.split("."):
        if not isinstance(value, dict) or key not in value:
            raise KeyError(key)
        value = value[key]
    return value


def load_results(results_dir: Path, name: str) -> dict:
    path = Path(results_dir) / f"{name}.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run the course first (make course, or "
                                f"python tools/run_course.py --profile standard).")
    return json.loads(path.read_text())


def make_reference(results_dir: Path, checks=CHECKS) -> dict:
    """A reference run's record: one entry per check that the run recorded (a check it lacks is left out)."""
    entries, cache = [], {}
    for name, path, tolerance, why in checks:
        try:
            result = cache.setdefault(name, load_results(results_dir, name))
            value = lookup(result, path)
        except (FileNotFoundError, KeyError):
            continue
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            entries.append({"results": name, "path": path, "value": value, "tolerance": tolerance, "why": why})
    profile = cache.get("01_data", {}).get("profile")
    return {"profile": profile, "made": datetime.date.today().isoformat(),
            "machine": f"{platform.machine()}, {platform.system()}, Python {platform.python_version()}",
            "checks": entries}


def compare(reference: dict, results_dir: Path) -> list[dict]:
    """One row per reference check: its reference and measured values and whether it is within tolerance."""
    rows, cache = [], {}
    for check in reference["checks"]:
        row = {**check, "measured": None, "ok": False, "problem": None}
        try:
            result = cache.setdefault(check["results"], load_results(results_dir, check["results"]))
            row["measured"] = lookup(result, check["path"])
        except FileNotFoundError as error:
            row["problem"] = str(error)
        except KeyError as error:
            row["problem"] = f"{check['results']}.json has no {check['path']} (missing key {error})"
        else:
            measured = row["measured"]
            if not isinstance(measured, (int, float)) or isinstance(measured, bool):
                row["problem"] = f"{check['path']} is {measured!r}, not a number"
            else:
                row["ok"] = abs(measured - check["value"]) <= check["tolerance"] + 1e-9
        rows.append(row)
    return rows


def format_rows(rows: list[dict]) -> str:
    lines = [f"{'check':<58} {'reference':>10} {'measured':>10} {'tolerance':>10}  "]
    for row in rows:
        measured = "-" if row["measured"] is None else f"{row['measured']:.4g}"
        verdict = "ok" if row["ok"] else f"OUT ({row['problem']})" if row["problem"] else "OUT"
        lines.append(f"{row['results'] + ': ' + row['path']:<58} {row['value']:>10.4g} {measured:>10} "
                     f"{row['tolerance']:>10.3g}  {verdict}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, default=None, help="a run's results folder (default: results/)")
    parser.add_argument("--reference", type=Path, default=DEFAULT_REFERENCE)
    parser.add_argument("--write", action="store_true", help="write the reference from the results folder")
    args = parser.parse_args(argv)
    results_dir = args.results or config.results_dir()
    if args.write:
        reference = make_reference(results_dir)
        if reference["profile"] != "standard":
            print(f"Refusing: {results_dir} holds a {reference['profile']!r} run; the reference is a standard run.")
            return 2
        args.reference.parent.mkdir(parents=True, exist_ok=True)
        args.reference.write_text(json.dumps(reference, indent=1) + "\n")
        print(f"Wrote {len(reference['checks'])} checks to {args.reference}")
        return 0
    if not args.reference.is_file():
        print(f"No reference at {args.reference}; make one with --write after a standard run.")
        return 2
    rows = compare(json.loads(args.reference.read_text()), results_dir)
    print(format_rows(rows))
    bad = [row for row in rows if not row["ok"]]
    print(f"{len(rows) - len(bad)} of {len(rows)} within tolerance of the reference run")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
