"""Keep every place that names the course's GitHub repository equal to helpers.environment.COURSE_REPOSITORY.

    python tools/colab_links.py --check              exit 1 and list what is out of date
    python tools/colab_links.py --write              rewrite the README's table of "Open in Colab" badges
    python tools/colab_links.py --write --notebooks  also give every notebook its first cell for Colab and
                                                     Kaggle (helpers.environment.bootstrap_cell_source) and
                                                     the metadata that opens it with a GPU on Colab

The repository is written in one place (helpers/environment.py); the README's badges
and the notebooks' setup cells are generated from it, because a notebook opened in
Colab cannot import the helpers before it has cloned them.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from helpers import course, environment  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
README = REPO_ROOT / "README.md"
START, END = "<!-- colab-links:start -->", "<!-- colab-links:end -->"
BOOTSTRAP_TAG = "colab-setup"
COLAB_METADATA = {"accelerator": "GPU", "colab": {"gpuType": "T4", "provenance": []}}


def badge_block(notebooks=None, repository: str = environment.COURSE_REPOSITORY) -> str:
    """The README's table: one row per notebook with its "Open in Colab" badge."""
    notebooks = notebooks or course.course_notebooks()
    rows = [START, "| notebook | open it in Colab |", "|---|---|"]
    rows += [f"| `{nb.stem}` | {environment.colab_badge(nb.stem, repository)} |" for nb in notebooks]
    rows.append(END)
    return "\n".join(rows)


def readme_with_badges(text: str, block: str) -> str:
    """``text`` with the block between the markers replaced; ValueError if the markers are missing."""
    if START not in text or END not in text:
        raise ValueError(f"README.md has no {START} ... {END} block to fill.")
    before, rest = text.split(START, 1)
    _, after = rest.split(END, 1)
    return before + block + after


def with_bootstrap_cell(nb: dict, source: str) -> dict:
    """The notebook with its setup cell (tag ``colab-setup``) right after the parameters cell, and GPU metadata."""
    cells = [c for c in nb["cells"] if BOOTSTRAP_TAG not in c.get("metadata", {}).get("tags", [])]
    position = next((i + 1 for i, c in enumerate(cells) if "parameters" in c.get("metadata", {}).get("tags", [])),
                    0)
    cell = {"cell_type": "code", "execution_count": None, "id": "colab-setup",
            "metadata": {"tags": [BOOTSTRAP_TAG]}, "outputs": [], "source": source.splitlines(keepends=True)}
    cells.insert(position, cell)
    metadata = {**nb.get("metadata", {}), **COLAB_METADATA}
    return {**nb, "cells": cells, "metadata": metadata}


def problems(readme: Path = README, notebooks=None, repository: str = environment.COURSE_REPOSITORY) -> list[str]:
    """Every place that disagrees with the repository in helpers/environment.py."""
    notebooks = notebooks if notebooks is not None else course.course_notebooks()
    found = []
    text = readme.read_text()
    try:
        if readme_with_badges(text, badge_block(notebooks, repository)) != text:
            found.append(f"{readme.name}: the Colab badge table is out of date (run tools/colab_links.py --write)")
    except ValueError as error:
        found.append(str(error))
    for notebook in notebooks:
        nb = json.loads(Path(notebook).read_text())
        for cell in nb["cells"]:
            if BOOTSTRAP_TAG in cell.get("metadata", {}).get("tags", []):
                if "".join(cell["source"]) != environment.bootstrap_cell_source(repository):
                    found.append(f"{Path(notebook).name}: its {BOOTSTRAP_TAG} cell differs from "
                                 "environment.bootstrap_cell_source() (run tools/colab_links.py --write --notebooks)")
    return found


def write_notebook(path: Path, repository: str = environment.COURSE_REPOSITORY) -> bool:
    """Give one notebook its setup cell and GPU metadata; True if the file changed."""
    text = path.read_text()
    nb = json.loads(text)
    new = json.dumps(with_bootstrap_cell(nb, environment.bootstrap_cell_source(repository)), indent=1,
                     ensure_ascii=False) + "\n"
    if new != text:
        path.write_text(new)
        return True
    return False


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="report what is out of date (exit 1 if anything)")
    parser.add_argument("--write", action="store_true", help="rewrite the README's badge table")
    parser.add_argument("--notebooks", action="store_true", help="with --write: also the notebooks' setup cells")
    args = parser.parse_args(argv)
    if args.write:
        README.write_text(readme_with_badges(README.read_text(), badge_block()))
        print(f"README.md: badges for {environment.COURSE_REPOSITORY}")
        if args.notebooks:
            for notebook in course.course_notebooks():
                if write_notebook(notebook):
                    print(f"{notebook.name}: setup cell and Colab GPU metadata written")
    found = problems()
    for line in found:
        print(line)
    if not found:
        print(f"Everything names {environment.COURSE_REPOSITORY} (set in helpers/environment.py).")
    return 1 if (found and (args.check or args.write)) else 0


if __name__ == "__main__":
    sys.exit(main())
