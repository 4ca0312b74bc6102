"""Build the course book: a static HTML site of the executed notebooks, the README as its front page.

    python tools/build_book.py                    (what `make book` runs) from runs/standard/, or the
                                                  only run there is
    python tools/build_book.py --profile smoke    from runs/smoke/ (after `make course PROFILE=smoke`)
    python tools/build_book.py --runs DIR --out DIR

Open build/book/html/index.html in a browser, or serve the folder with
`python -m http.server -d build/book/html`. The book is built with Sphinx, myst-nb
and the Sphinx Book Theme (the engine of Jupyter Book 1): it reads the notebooks with
their outputs and never executes them, so it builds offline in seconds to minutes.

Steps: the notebooks of the run and the README are copied into build/book/src/ (the
README's links rewritten to the book's pages, files outside the book linked on
GitHub), then Sphinx writes build/book/html/.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from helpers import config, course, environment  # noqa: E402

REPO_ROOT = config.REPO_ROOT
BOOK_CONFIG_DIR = REPO_ROOT / "book"
DEFAULT_OUT = REPO_ROOT / "build" / "book"
BADGE = re.compile(r"\[!\[Open in Colab\]\([^)]*\)\]\(([^)\s]+)\)")
LINK = re.compile(r"(!?\[[^\]]*\]\()([^)\s]+)(\))")


class BookError(RuntimeError):
    """The book cannot be built from what is there; the message says what to run first."""


def executed_notebooks(runs_dir: Path) -> list[Path]:
    return sorted(Path(runs_dir).glob("[0-9][0-9]_*.ipynb"))


def choose_runs(profile: str | None, runs_root: Path) -> Path:
    """The folder of executed notebooks: ``runs/<profile>``; without a profile, ``standard`` if it has
    notebooks, else the one profile that does."""
    if profile:
        config.check_profile(profile)
        runs = runs_root / profile
        if not executed_notebooks(runs):
            raise BookError(f"No executed notebooks in {runs}: run `make course PROFILE={profile}` first "
                            f"(or `python tools/run_course.py --profile {profile}`).")
        return runs
    present = [p for p in config.PROFILES if executed_notebooks(runs_root / p)]
    if "standard" in present:
        return runs_root / "standard"
    if len(present) == 1:
        print(f"No standard run in {runs_root}; building the book from the {present[0]} run.")
        return runs_root / present[0]
    if not present:
        raise BookError(f"No executed notebooks under {runs_root}: run `make course` first "
                        "(the book shows the notebooks with their outputs).")
    raise BookError(f"Runs of several profiles in {runs_root} ({', '.join(present)}) and none is 'standard': "
                    "choose one with `make book PROFILE=...`.")


def has_outputs(notebook: Path) -> bool:
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    return any(c.get("outputs") for c in nb["cells"] if c["cell_type"] == "code")


def count_pictures(notebook: Path) -> int:
    """How many outputs of the notebook are pictures (figures shown inline)."""
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    return sum(any(kind.startswith("image/") for kind in output.get("data", {}))
               for cell in nb["cells"] if cell["cell_type"] == "code" for output in cell.get("outputs", []))


def github_url(relative: str) -> str:
    return f"https://github.com/{environment.COURSE_REPOSITORY}/blob/{environment.COURSE_BRANCH}/{relative}"


def rewrite_readme(text: str, pages: set[str], staged_files: set[str]) -> str:
    """The README as the book's front page.

    Colab badges become plain links (their picture is on the internet, the book
    is offline); links to notebooks, docs and pictures that are in the book stay
    relative; links to other files of the repository point to GitHub.
    """
    text = BADGE.sub(r"[Open in Colab](\1)", text)

    def fix(match):
        target = match.group(2)
        if re.match(r"^[a-z]+:|^#|^/", target):
            return match.group(0)
        path, _, anchor = target.partition("#")
        if path in pages or path in staged_files:
            return match.group(0)
        return f"{match.group(1)}{github_url(path)}{'#' + anchor if anchor else ''}{match.group(3)}"

    return LINK.sub(fix, text)


def front_page(readme: str, runs_dir: Path, notebooks: list[Path], missing: list[str], docs_pages: list[str]) -> str:
    lines = readme.splitlines()
    title_at = next((i for i, line in enumerate(lines) if line.startswith("# ")), -1)
    note = ["", f"```{{note}}\nThis book shows the notebooks as executed by the course run in "
            f"`runs/{runs_dir.name}/` (profile `{runs_dir.name}`), built {time.strftime('%Y-%m-%d')}: every "
            "figure and number on its pages was computed by that run.\n```", ""]
    if missing:
        note[1:1] = [f"```{{warning}}\nNot in this run, so not in the book: {', '.join(missing)}.\n```", ""]
    lines[title_at + 1:title_at + 1] = note
    toc = ["", "```{toctree}", ":hidden:", ":caption: Notebooks", ""]
    toc += [f"notebooks/{nb.stem}" for nb in notebooks] + ["```", ""]
    if docs_pages:
        toc += ["```{toctree}", ":hidden:", ":caption: More", ""] + docs_pages + ["```", ""]
    return "\n".join(lines + toc)


def stage(runs_dir: Path, staging: Path, readme: Path = REPO_ROOT / "README.md",
          docs_dir: Path = REPO_ROOT / "docs") -> dict:
    """Copy the run's notebooks, the README and docs/ into ``staging`` (made afresh); return what went in."""
    notebooks = executed_notebooks(runs_dir)
    unexecuted = [nb.name for nb in notebooks if not has_outputs(nb)]
    if unexecuted:
        raise BookError(f"{', '.join(unexecuted)} in {runs_dir} carry no outputs: they were not executed. "
                        "Run `make course` (it writes executed notebooks to runs/<profile>/).")
    if staging.exists():
        shutil.rmtree(staging)
    (staging / "notebooks").mkdir(parents=True)
    for notebook in notebooks:
        shutil.copyfile(notebook, staging / "notebooks" / notebook.name)
    staged_files, docs_pages = set(), []
    if docs_dir.is_dir():
        shutil.copytree(docs_dir, staging / "docs")
        for path in sorted((staging / "docs").rglob("*")):
            if path.is_file():
                relative = path.relative_to(staging).as_posix()
                staged_files.add(relative)
                if path.suffix == ".md":
                    docs_pages.append(relative[:-3])
    course_names = [nb.stem for nb in course.course_notebooks()]
    missing = [name for name in course_names if name not in {nb.stem for nb in notebooks}]
    pages = {f"notebooks/{nb.name}" for nb in notebooks}
    text = rewrite_readme(readme.read_text(encoding="utf-8"), pages, staged_files)
    (staging / "index.md").write_text(front_page(text, runs_dir, notebooks, missing, docs_pages), encoding="utf-8")
    return {"notebooks": [nb.stem for nb in notebooks], "missing": missing, "docs_pages": docs_pages,
            "pictures": sum(count_pictures(nb) for nb in notebooks)}


def build(runs_dir: Path, out: Path = DEFAULT_OUT, quiet: bool = True) -> dict:
    """Stage and run Sphinx; returns the pages, the HTML folder and the seconds it took."""
    start = time.perf_counter()
    staged = stage(runs_dir, out / "src")
    html = out / "html"
    command = [sys.executable, "-m", "sphinx", "-b", "html", "-c", str(BOOK_CONFIG_DIR),
               "-d", str(out / "doctrees"), str(out / "src"), str(html)]
    if quiet:
        command.insert(3, "-q")
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True)
    if result.returncode != 0:
        raise BookError(f"Sphinx failed (exit {result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    warnings = [line for line in result.stderr.splitlines() if "WARNING" in line]
    return {**staged, "html": html, "index": html / "index.html", "warnings": warnings,
            "seconds": round(time.perf_counter() - start, 1)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", choices=config.PROFILES, default=None,
                        help="which course run to show (default: standard, or the only run there is)")
    parser.add_argument("--runs", type=Path, default=None, help="a folder of executed notebooks (instead of runs/)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where src/ and html/ go (build/book)")
    args = parser.parse_args(argv)
    try:
        runs_dir = args.runs if args.runs else choose_runs(args.profile, REPO_ROOT / "runs")
        if args.runs and not executed_notebooks(args.runs):
            raise BookError(f"No executed notebooks (NN_name.ipynb) in {args.runs}.")
        result = build(runs_dir, args.out)
    except BookError as error:
        print(f"make book: {error}", file=sys.stderr)
        return 1
    for line in result["warnings"]:
        print(line)
    if not result["pictures"]:
        print("Warning: the run's notebooks hold no figures. Was MPLBACKEND=Agg set during `make course`? "
              "Unset it and run the course again to see the figures in the book.")
    if result["missing"]:
        print(f"Not in this run, so not in the book: {', '.join(result['missing'])}")
    print(f"Book of {len(result['notebooks'])} notebook(s) from {runs_dir} in {result['seconds']:.0f} s: "
          f"{result['index']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
