"""The demo server under a small load: parallel requests, a bounded loop, a memory bound.

Starts ``python -m helpers.demo_app`` on 127.0.0.1 (a free port) with a
randomly initialised checkpoint, then sends ``ROUNDS`` rounds of ``PARALLEL``
requests at once through Gradio's own client (pictures, short videos, and a
corrupt upload in every round). Checks that every request is answered (a
verdict, or the page's message for the corrupt file), that the server still
answers afterwards, and that its resident memory stays under
``MAX_RSS_MB`` and does not grow from round to round. The server is stopped
by its process id. The peak figures are printed (``-s`` shows them); they are
measured under whatever else the machine is doing.
"""
from __future__ import annotations

import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from helpers import inference

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "tools"))

from benchmark_demo_memory import client_for, memory_mb, start_demo, stop_demo  # noqa: E402

PARALLEL = 8          # requests in flight at once
ROUNDS = 3            # bounded loop
MAX_RSS_MB = 2500     # resident memory of the server, peak (VmHWM), at any time during the test
MAX_GROWTH_MB = 200   # resident memory after the last round minus after the first
REQUEST_TIMEOUT_S = 240

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def uploads(workspace) -> dict:
    from helpers import sample_data

    folder = workspace / "demo_server_inputs"
    folder.mkdir(exist_ok=True)
    clip = folder / "face_clip.mp4"
    if not clip.exists():
        sample_data.make_clip(clip, width=320, height=240, seconds=1.0, fake=True, seed=7, fps=10)
    corrupt = folder / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"not a video" * 400)
    return {"photo": sample_data.portrait_path(), "clip": clip, "corrupt": corrupt}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The demo in a subprocess (random weights, 128-pixel faces); yields (url, pid, folder); stopped by pid."""
    folder = tmp_path_factory.mktemp("demo-load")
    process, url, log = start_demo(folder, image_size=128, n_frames=4)
    try:
        yield url, process.pid, folder
    finally:
        stop_demo(process)
    assert "Traceback" not in log.read_text(), log.read_text()[-3000:]


def test_parallel_requests_are_answered_within_a_memory_bound(server, uploads):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    url, pid, folder = server
    with urllib.request.urlopen(url + "config", timeout=30) as response:  # the page states its limits
        page = response.read().decode()
    for limit in ("4096 x 2160", f"{inference.FRAMES_IN_MEMORY} at a time", f"{inference.MAX_N_FRAMES} frames"):
        assert limit in page, limit
    client = client_for(url, folder)

    def request(k: int):
        kind = ("photo", "clip", "photo", "clip", "photo", "clip", "photo", "corrupt")[k % PARALLEL]
        started = time.monotonic()
        try:
            if kind == "photo":
                out = client.predict(handle_file(str(uploads["photo"])), api_name="/analyse_image")
            else:
                out = client.predict(handle_file(str(uploads[kind])), 4, api_name="/analyse_video")
        except AppError as error:
            return kind, "error", str(error), time.monotonic() - started
        return kind, "answer", out[0], time.monotonic() - started

    idle = memory_mb(pid)
    per_round = []
    with ThreadPoolExecutor(PARALLEL) as pool:
        for round_number in range(ROUNDS):
            results = list(pool.map(request, range(PARALLEL), timeout=REQUEST_TIMEOUT_S))
            for kind, outcome, payload, _ in results:
                if kind == "corrupt":
                    assert outcome == "error" and "could not be read as a video" in payload, payload
                else:
                    assert outcome == "answer", payload
                    assert payload["label"] in ("real", "fake"), payload
            per_round.append(memory_mb(pid))
            slowest = max(r[3] for r in results)
            print(f"round {round_number + 1}: {PARALLEL} parallel requests answered, slowest {slowest:.1f} s, "
                  f"server RSS {per_round[-1]['rss']:.0f} MiB, peak {per_round[-1]['peak']:.0f} MiB (under load)")
    # still serving after the load
    assert request(0)[1] == "answer"
    final = memory_mb(pid)
    print(f"demo server memory (under load): idle {idle['rss']:.0f} MiB, peak during {ROUNDS} x {PARALLEL} "
          f"parallel requests {final['peak']:.0f} MiB, after {final['rss']:.0f} MiB")
    assert final["peak"] < MAX_RSS_MB, final
    assert per_round[-1]["rss"] - per_round[0]["rss"] < MAX_GROWTH_MB, per_round
