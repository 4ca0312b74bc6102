"""Sphinx configuration of the course book (``make book``; ``tools/build_book.py`` stages the pages).

The pages are the *executed* notebooks of a course run (``runs/<profile>/``),
rendered as they are: myst-nb shows their outputs and never runs them again
(``nb_execution_mode = "off"``), so the book needs no kernel, no GPU and no
network to build. The front page is the README.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from helpers import environment  # noqa: E402  (the one place that names the course's repository)

project = "Deepfake video detection, a hands-on course"
author = "the course's authors"
copyright = "the course's authors"

extensions = ["myst_nb"]
root_doc = "index"
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
source_suffix = {".md": "myst-nb", ".ipynb": "myst-nb"}

nb_execution_mode = "off"              # show what the course run computed; never execute here
nb_ipywidgets_js = {}                  # no widget JavaScript from a CDN: progress bars and the widget demo stay blank
nb_merge_streams = True                # one block per cell for printed output, as in Jupyter
myst_enable_extensions = ["dollarmath", "colon_fence"]
myst_heading_anchors = 3
suppress_warnings = ["myst.header", "mystnb.unknown_mime_type", "misc.highlighting_failure"]

html_theme = "sphinx_book_theme"
html_title = "Deepfake video detection"
html_static_path = []
html_last_updated_fmt = None
html_theme_options = {
    "repository_url": f"https://github.com/{environment.COURSE_REPOSITORY}",
    "repository_branch": environment.COURSE_BRANCH,
    "path_to_docs": "",
    "use_repository_button": True,
    "use_download_button": True,
    "launch_buttons": {"colab_url": "https://colab.research.google.com"},
    "show_toc_level": 2,
}
