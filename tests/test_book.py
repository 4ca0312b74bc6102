"""The course book (`make book`): staged from executed notebooks, built by Sphinx, read in a real browser.

The build test takes the two cheapest notebooks (00 and 01) as the notebook tests
execute them in the smoke profile (figures inline, as `make course` leaves them, so
the pages have pictures), builds the book from them, then opens two pages in headless
Chromium (Debian's, through Playwright, as in the demo's browser test) with every
request that leaves 127.0.0.1 blocked: the pages load, and a figure is visible.
"""
from __future__ import annotations

import functools
import http.server
import json
import os
import shutil
import sys
import threading
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "tools"))

import build_book  # noqa: E402

from conftest import run_notebook  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
LEAD_SCREENSHOT = Path("/tmp/book_screenshot.png")
BOOK_NOTEBOOKS = ("00_setup", "01_data")


# --------------------------------------------------------------------------- staging (no Sphinx)

def _fake_executed(folder: Path, name: str, outputs: bool = True) -> Path:
    cell = {"cell_type": "code", "execution_count": 1, "id": "c1", "metadata": {}, "source": ["print(1)"],
            "outputs": [{"output_type": "stream", "name": "stdout", "text": ["1\n"]}] if outputs else []}
    nb = {"cells": [{"cell_type": "markdown", "id": "m1", "metadata": {}, "source": [f"# {name}"]}, cell],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.ipynb"
    path.write_text(json.dumps(nb))
    return path


def test_choose_runs_prefers_standard_then_the_only_run(tmp_path):
    with pytest.raises(build_book.BookError, match="make course"):
        build_book.choose_runs(None, tmp_path)
    _fake_executed(tmp_path / "smoke", "00_setup")
    assert build_book.choose_runs(None, tmp_path) == tmp_path / "smoke"
    _fake_executed(tmp_path / "full", "00_setup")
    with pytest.raises(build_book.BookError, match="several profiles"):
        build_book.choose_runs(None, tmp_path)
    _fake_executed(tmp_path / "standard", "00_setup")
    assert build_book.choose_runs(None, tmp_path) == tmp_path / "standard"
    assert build_book.choose_runs("full", tmp_path) == tmp_path / "full"
    with pytest.raises(build_book.BookError, match="PROFILE=smoke"):
        build_book.choose_runs("smoke", tmp_path / "nowhere")


def test_readme_links_become_book_links_or_github_links():
    text = ("[![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
            "(https://colab.research.google.com/github/o/r/blob/main/notebooks/00_setup.ipynb)\n"
            "![shot](docs/demo_screenshot.png) [gpu](docs/gpu_4gb.md) [nb](notebooks/00_setup.ipynb)\n"
            "[data](data/README.md#layout) [web](https://example.org) [here](#tests)\n")
    out = build_book.rewrite_readme(text, pages={"notebooks/00_setup.ipynb"},
                                    staged_files={"docs/demo_screenshot.png", "docs/gpu_4gb.md"})
    assert "colab-badge.svg" not in out  # a picture from the internet would be broken offline
    assert "[Open in Colab](https://colab.research.google.com/github/o/r/blob/main/notebooks/00_setup.ipynb)" in out
    assert "![shot](docs/demo_screenshot.png)" in out and "[gpu](docs/gpu_4gb.md)" in out
    assert "[nb](notebooks/00_setup.ipynb)" in out
    assert f"[data]({build_book.github_url('data/README.md')}#layout)" in out
    assert "[web](https://example.org)" in out and "[here](#tests)" in out


def test_stage_refuses_notebooks_that_were_not_executed(tmp_path):
    _fake_executed(tmp_path / "runs", "00_setup", outputs=False)
    with pytest.raises(build_book.BookError, match="not executed"):
        build_book.stage(tmp_path / "runs", tmp_path / "src")


def test_stage_lists_the_notebooks_missing_from_the_run(tmp_path):
    _fake_executed(tmp_path / "runs", "00_setup")
    staged = build_book.stage(tmp_path / "runs", tmp_path / "src")
    assert staged["notebooks"] == ["00_setup"]
    assert "07_demo" in staged["missing"] and "00_setup" not in staged["missing"]
    index = (tmp_path / "src" / "index.md").read_text()
    assert "notebooks/00_setup" in index and "Not in this run" in index and "07_demo" in index
    assert (tmp_path / "src" / "docs" / "gpu_4gb.md").exists()


# --------------------------------------------------------------------------- a real build

@pytest.fixture(scope="module")
def smoke_runs(workspace) -> Path:
    """runs/smoke/ with 00 and 01 as the notebook tests execute them (once per session, figures inline)."""
    runs = workspace / "book_runs" / "smoke"
    runs.mkdir(parents=True, exist_ok=True)
    for name in BOOK_NOTEBOOKS:
        shutil.copy2(run_notebook(name), runs / f"{name}.ipynb")
    return runs


@pytest.fixture(scope="module")
def book(smoke_runs, tmp_path_factory) -> dict:
    result = build_book.build(smoke_runs, tmp_path_factory.mktemp("book"))
    print(f"\nbook built in {result['seconds']} s (Sphinx + staging, {len(result['notebooks'])} notebooks)")
    return result


@pytest.mark.notebook
def test_book_has_the_front_page_and_a_page_per_notebook(book):
    html = book["html"]
    assert book["notebooks"] == list(BOOK_NOTEBOOKS)
    front = (html / "index.html").read_text()
    assert "Deepfake video detection" in front and "Not in this run" in front
    for name in BOOK_NOTEBOOKS:
        page = html / "notebooks" / f"{name}.html"
        assert page.exists(), f"no page for {name}"
        assert f"notebooks/{name}.html" in front  # the navigation links every notebook
    data_page = (html / "notebooks" / "01_data.html").read_text()
    assert "A data card" in data_page          # the notebook's prose
    assert "total size:" in data_page          # a number the run printed
    pictures = list((html / "_images").glob("*.png"))
    assert len(pictures) >= 3, "the notebook figures and the README pictures are files of the book"


# --------------------------------------------------------------------------- in a browser

@pytest.fixture(scope="module")
def served_book(book):
    """The book's folder on a free 127.0.0.1 port, served by Python's own HTTP server (stopped after)."""
    handler = functools.partial(QuietHandler, directory=str(book["html"]))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def browser_page(served_book, tmp_path_factory):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found: install it with `make browser` (bash tools/install_browser.sh)")
    playwright_api = pytest.importorskip("playwright.sync_api")
    home = tmp_path_factory.mktemp("book-browser-home")
    env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
           "XDG_CACHE_HOME": str(home / ".cache"), "XDG_RUNTIME_DIR": str(home / "run")}
    (home / "run").mkdir()
    blocked: list[str] = []
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS,
                                             env=env)
        try:
            tab = browser.new_page(viewport={"width": 1280, "height": 1000})
            tab.set_default_timeout(60_000)

            def offline(route):
                if route.request.url.startswith(served_book):
                    route.continue_()
                else:
                    blocked.append(route.request.url)
                    route.abort()

            tab.route("**/*", offline)
            yield tab, served_book, blocked
        finally:
            browser.close()


def _figures_shown(tab, selector: str) -> list[int]:
    """naturalWidth of every loaded picture matching ``selector`` (0 for a broken one)."""
    tab.wait_for_load_state("load")
    return tab.eval_on_selector_all(selector, "imgs => imgs.map(i => (i.complete ? i.naturalWidth : 0))")


@pytest.mark.browser
def test_front_page_loads_with_its_pictures(browser_page):
    tab, url, blocked = browser_page
    response = tab.goto(url + "index.html")
    assert response.ok
    assert "Deepfake video detection" in tab.title()
    widths = _figures_shown(tab, "article img[src*='_images']")
    assert widths and min(widths) > 0, f"README pictures not shown: {widths}"
    nav = tab.locator("nav.bd-links a").all_inner_texts()
    assert any("Setting up" in text for text in nav), nav


@pytest.mark.browser
def test_notebook_page_shows_its_figures_offline(browser_page, workspace):
    tab, url, blocked = browser_page
    response = tab.goto(url + "notebooks/01_data.html")
    assert response.ok
    assert "The data" in tab.title()
    widths = _figures_shown(tab, ".cell_output img")
    assert len(widths) >= 2 and min(widths) > 0, f"notebook figures not shown: {widths}"
    figure = tab.locator(".cell_output img").first
    figure.scroll_into_view_if_needed()
    assert figure.is_visible()
    figure.evaluate("img => window.scrollTo(0, img.getBoundingClientRect().top + window.scrollY - 560)")
    shot = workspace / "book_screenshot.png"
    tab.screenshot(path=str(shot))
    assert shot.stat().st_size > 20_000
    shutil.copyfile(shot, LEAD_SCREENSHOT)
    print("\nrequests blocked (outside 127.0.0.1):", sorted(set(blocked)) or "none")
