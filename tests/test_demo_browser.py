"""The Gradio demo, driven in a real (headless) browser the way a user would.

Starts ``python -m helpers.demo_app`` on a free local port with a checkpoint made
here (random weights: the page is tested, not the model), then with Chromium:
uploads a face photo, then a short clip, checks that a verdict and an
explanation appear, takes a screenshot, and uploads a corrupt file to check the
error message. Needs Debian's chromium (``make browser`` installs it); the
Playwright package drives it, no Playwright browser download is used.
"""
from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
LEAD_SCREENSHOT = Path("/tmp/demo_screenshot.png")
TIMEOUT_MS = 90_000  # for one analysis in a loaded CI machine; usually a few seconds

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(),
                       reason=f"{CHROMIUM} not found: install it with `make browser` "
                              "(bash tools/install_browser.sh) to run the browser test"),
]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for_server(url: str, process: subprocess.Popen, log: Path, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"The demo exited with code {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"The demo did not answer on {url} within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def browser_home(tmp_path_factory) -> dict:
    """HOME and XDG folders for Chromium (it writes crash reports and caches there)."""
    home = tmp_path_factory.mktemp("browser-home")
    dirs = {"HOME": home, "XDG_CONFIG_HOME": home / ".config", "XDG_CACHE_HOME": home / ".cache",
            "XDG_DATA_HOME": home / ".local/share", "XDG_RUNTIME_DIR": home / "run"}
    for path in dirs.values():
        path.mkdir(parents=True, exist_ok=True)
    return {key: str(value) for key, value in dirs.items()}


@pytest.fixture(scope="module")
def uploads(workspace, tmp_path_factory) -> dict:
    """A face photo, a short clip from the built-in sample, a corrupt video and a corrupt picture."""
    from helpers import sample_data

    folder = workspace / "demo_browser_inputs"
    folder.mkdir(exist_ok=True)
    clip = folder / "sample_clip.mp4"
    if not clip.exists():
        sample_data.make_clip(clip, width=320, height=240, seconds=1.0, fake=True, seed=5, fps=15)
    photo = folder / "grace_hopper.jpg"
    shutil.copyfile(sample_data.portrait_path(), photo)
    pair = folder / "two_faces.jpg"
    with Image.open(photo) as face:
        both = Image.new("RGB", (face.width * 2, face.height))
        both.paste(face, (0, 0))
        both.paste(face.transpose(Image.Transpose.FLIP_LEFT_RIGHT), (face.width, 0))
        both.save(pair, quality=90)
    corrupt_video = folder / "corrupt_upload.mp4"
    corrupt_video.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"this is not a video" * 500)
    corrupt_picture = folder / "corrupt_upload.png"
    corrupt_picture.write_bytes(b"\x89PNG\r\n\x1a\n" + b"this is not a picture" * 200)
    return {"photo": photo, "pair": pair, "clip": clip, "corrupt_video": corrupt_video,
            "corrupt_picture": corrupt_picture}


@pytest.fixture(scope="module")
def demo_url(workspace, browser_home, tmp_path_factory):
    """``python -m helpers.demo_app`` on a free port, with a small random-weight checkpoint."""
    import torch

    from helpers import models_torch

    folder = tmp_path_factory.mktemp("demo-server")
    torch.manual_seed(0)
    model = models_torch.build_inception_classifier(pretrained=False)
    # notebook 09's extras, set so that they always apply: every score lies in the uncertain band and every
    # face is "much smaller than the training faces", so the page must show UNCERTAIN and the warning
    checkpoint = models_torch.save_checkpoint(model, folder / "random_inception.pth", epoch=0, image_size=160,
                                              trained_on="nothing (browser test)",
                                              uncertain_band={"low": 0.0, "high": 1.0, "half_width": 0.5},
                                              input_reference={"median_face_size": 20_000.0,
                                                               "min_face_size": 10_000.0, "min_detection_prob": 0.0})
    gradio_tmp = folder / "gradio-tmp"
    gradio_tmp.mkdir()
    port = _free_port()
    env = {**os.environ, **browser_home, "GRADIO_TEMP_DIR": str(gradio_tmp), "GRADIO_ANALYTICS_ENABLED": "False",
           "PYTHONUNBUFFERED": "1", "MPLBACKEND": "Agg"}
    log = folder / "server.log"
    with open(log, "w") as output:
        process = subprocess.Popen([sys.executable, "-m", "helpers.demo_app", "--checkpoint", str(checkpoint),
                                    "--port", str(port), "--device", "cpu", "--n-frames", "6"],
                                   cwd=REPO_ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait_for_server(url, process, log)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    server_log = log.read_text()
    assert "Traceback" not in server_log, server_log[-3000:]


@pytest.fixture(scope="module")
def page(demo_url, browser_home):
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS,
                                             env={**os.environ, **browser_home})
        try:
            tab = browser.new_page(viewport={"width": 1280, "height": 1000})
            tab.set_default_timeout(TIMEOUT_MS)
            tab.goto(demo_url)
            yield tab
        finally:
            browser.close()


VERDICT = re.compile(r"\b(real|fake)\b", re.IGNORECASE)


def test_picture_upload_shows_verdict_and_explanation(page, uploads):
    from playwright.sync_api import expect

    page.locator("#image-input input[type=file]").set_input_files(str(uploads["photo"]))
    expect(page.locator("#image-label")).to_contain_text(VERDICT, timeout=TIMEOUT_MS)
    expect(page.locator("#image-label")).to_contain_text("%")
    expect(page.locator("#image-explanation img")).to_be_visible()
    width = page.wait_for_function("() => { const img = document.querySelector('#image-explanation img');"
                                   " return img && img.complete && img.naturalWidth; }").json_value()
    assert width == 160  # the Grad-CAM overlay of the face, at the checkpoint's image size
    expect(page.locator("#image-annotated img")).to_be_visible()
    expect(page.locator("#image-details")).to_contain_text("1 face(s) found")
    expect(page.locator("#image-details")).to_contain_text("UNCERTAIN")  # inside the checkpoint's band
    expect(page.locator("#image-details")).to_contain_text("Warning:")
    expect(page.locator("#image-details")).to_contain_text("compared with the training faces")


def test_video_upload_shows_verdict_timeline_and_screenshot(page, uploads, workspace):
    from playwright.sync_api import expect

    page.get_by_role("tab", name="Video").click()
    page.locator("#video-input input[type=file]").set_input_files(str(uploads["clip"]))
    expect(page.locator("#video-label")).to_contain_text(VERDICT, timeout=TIMEOUT_MS)
    expect(page.locator("#video-explanation img")).to_be_visible()
    expect(page.locator("#video-details")).to_contain_text("of 6 sampled frames show a face")
    expect(page.locator("#video-timeline")).to_contain_text("P(fake)")  # the plot's axis title
    screenshot = workspace / "demo_screenshot.png"
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.stat().st_size > 10_000
    shutil.copyfile(screenshot, LEAD_SCREENSHOT)


def test_corrupt_uploads_show_a_message_and_the_server_keeps_serving(page, uploads):
    from playwright.sync_api import expect

    page.get_by_role("tab", name="Video").click()
    clear = page.locator("#video-input button[aria-label='Clear']")
    if clear.count():
        clear.click()
    page.locator("#video-input input[type=file]").set_input_files(str(uploads["corrupt_video"]))
    expect(page.get_by_text("corrupt_upload.mp4 could not be read as a video")).to_be_visible()

    page.get_by_role("tab", name="Picture").click()
    clear = page.locator("#image-input button[aria-label='Clear']")
    if clear.count():
        clear.click()
    page.locator("#image-input input[type=file]").set_input_files(str(uploads["corrupt_picture"]))
    expect(page.get_by_text("corrupt_upload.png could not be read as a picture")).to_be_visible()

    # still serving: a picture with two faces is analysed, each face scored
    clear = page.locator("#image-input button[aria-label='Clear']")
    if clear.count():
        clear.click()
    page.locator("#image-input input[type=file]").set_input_files(str(uploads["pair"]))
    expect(page.locator("#image-details")).to_contain_text("2 face(s) found")
    expect(page.locator("#image-faces")).to_contain_text("face 2:")
