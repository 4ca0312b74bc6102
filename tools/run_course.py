"""Run the whole course: every notebook in order, then a summary of what each measured.

    python tools/run_course.py --profile standard --source sample     (what `make course` runs)
    python tools/run_course.py --profile full --source kaggle --pretrained True
    python tools/run_course.py --only 04 05                           (some notebooks)
    python tools/run_course.py --source folder --data-path ~/my_videos

Executed notebooks go to runs/<profile>/ (git-ignored; DEEPFAKE_RUNS_DIR moves
them); figures to figures/; measured numbers to results/ plus
results/summary.md and results/summary.json.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from helpers import config, course  # noqa: E402


def _bool(text: str) -> bool:
    if text.lower() in {"true", "1", "yes"}:
        return True
    if text.lower() in {"false", "0", "no"}:
        return False
    raise argparse.ArgumentTypeError(f"expected True or False, got {text!r}")


def headline_numbers(result: dict) -> dict:
    """Pick the numbers worth a summary line out of a notebook's results file."""
    picked = {}
    for key, value in result.items():
        if key.startswith("_"):
            continue
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            picked[key] = value
        elif isinstance(value, dict):
            video = value.get("video") if isinstance(value.get("video"), dict) else None
            source = video or value
            for metric in ("accuracy", "balanced_accuracy", "roc_auc", "log_loss"):
                if isinstance(source.get(metric), (int, float)):
                    picked[f"{key}.{'video.' if video else ''}{metric}"] = source[metric]
    return picked


def write_summary(runs: list[dict], profile: str, total_seconds: float) -> Path:
    lines = [f"# Course run, profile `{profile}`", "",
             f"Total: {total_seconds / 60:.1f} min", "", "| notebook | minutes | status |", "|---|---|---|"]
    for run in runs:
        lines.append(f"| {run['notebook']} | {run.get('seconds', 0) / 60:.1f} | {run['status']} |")
    lines.append("")
    for run in runs:
        numbers = run.get("numbers") or {}
        if numbers:
            lines.append(f"## {run['notebook']}")
            lines += [f"- {k}: {v:.4g}" if isinstance(v, float) else f"- {k}: {v}" for k, v in numbers.items()]
            lines.append("")
    out = config.results_dir() / "summary.md"
    out.write_text("\n".join(lines))
    (config.results_dir() / "summary.json").write_text(
        json.dumps({"profile": profile, "total_seconds": total_seconds, "runs": runs}, indent=2, default=str))
    return out


def build_parser() -> argparse.ArgumentParser:
    """The command line of the course (``make course`` passes its variables here)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="standard", choices=config.PROFILES)
    parser.add_argument("--source", default="sample", choices=["sample", "kaggle", "folder"])
    parser.add_argument("--data-path", default=None, help="your folder of videos (with --source folder)")
    parser.add_argument("--difficulty", default=None,
                        help="the built-in sample's difficulty (default: the profile's); see notebook 01")
    parser.add_argument("--pretrained", type=_bool, default=False,
                        help="load pretrained weights (downloads once); default False runs offline")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--only", nargs="*", default=None, help="notebook numbers to run, e.g. 01 02")
    parser.add_argument("--keep-going", action="store_true", help="run the next notebooks after a failure")
    return parser


def parse_args(argv=None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.source == "folder" and not args.data_path:
        parser.error("--source folder needs --data-path, the folder holding your videos "
                     "(make course SOURCE=folder DATA_PATH=/path/to/videos)")
    if args.data_path and args.source != "folder":
        parser.error(f"--data-path is your own folder of videos; it is only read with --source folder, and the "
                     f"source is {args.source!r} (make course SOURCE=folder DATA_PATH={args.data_path})")
    if args.data_path:
        folder = Path(args.data_path).expanduser()
        if not folder.is_dir():
            parser.error(f"--data-path {args.data_path}: no such folder. Give the folder that holds your videos "
                         "(with metadata.json, or real/ and fake/ sub-folders).")
        args.data_path = str(folder.resolve())
    return args


def runs_dir() -> Path:
    """Where executed notebooks go: runs/ in the repository, or DEEPFAKE_RUNS_DIR."""
    return Path(os.environ.get("DEEPFAKE_RUNS_DIR") or config.REPO_ROOT / "runs").expanduser()


def main(argv=None) -> int:
    args = parse_args(argv)

    parameters = {"PROFILE": args.profile, "DATA_SOURCE": args.source, "DATA_PATH": args.data_path,
                  "SAMPLE_DIFFICULTY": args.difficulty,
                  "PRETRAINED": args.pretrained, "DEVICE": args.device}
    notebooks = course.course_notebooks()
    if args.only:
        wanted = {str(n).zfill(2) for n in args.only}
        unknown = sorted(wanted - {nb.name[:2] for nb in notebooks})
        if unknown:
            print(f"No notebook numbered {', '.join(unknown)}; the notebooks are "
                  f"{', '.join(nb.name[:2] for nb in notebooks)}.", file=sys.stderr)
            return 2
        notebooks = [nb for nb in notebooks if nb.name[:2] in wanted]
    out_dir = runs_dir() / args.profile
    runs, failed, start = [], False, time.perf_counter()
    for notebook in notebooks:
        print(f"[{time.strftime('%H:%M:%S')}] {notebook.name} ...", flush=True)
        try:
            run = course.execute(notebook, out_dir / notebook.name, parameters)
            run["status"] = "ok"
        except Exception as error:  # papermill shows the failing cell in its message
            run = {"notebook": notebook.stem, "status": f"failed: {type(error).__name__}", "seconds": 0}
            print(error, file=sys.stderr)
            failed = True
        result_file = config.results_dir() / f"{notebook.stem}.json"
        if run["status"] == "ok" and result_file.exists():
            run["numbers"] = headline_numbers(json.loads(result_file.read_text()))
        runs.append(run)
        print(f"    {run['status']} in {run.get('seconds', 0):.0f} s", flush=True)
        if failed and not args.keep_going:
            break
    summary = write_summary(runs, args.profile, time.perf_counter() - start)
    print(f"\nSummary: {summary}\nExecuted notebooks: {out_dir}\nFigures: {config.figures_dir()}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
