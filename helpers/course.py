"""Running the notebooks themselves: the course command and the notebook tests share this.

``python tools/run_course.py`` (what ``make course`` calls) executes every
notebook in order with papermill, injecting only the parameters each notebook
declares, and writes a summary of what they recorded.

The kernels run quietly: a few lines that every run prints and that read like
failures to a newcomer are left out of the terminal (:data:`KNOWN_NOISE`:
TensorFlow's start-up notes and its CUDA probing on a machine without an
NVIDIA driver, the kernel's note that it talks to papermill over local TCP
without encryption, and the KeyboardInterrupt a kernel reports when it is
stopped at the end of a notebook). Everything else the kernel writes, real
warnings and errors included, still reaches the terminal, and the executed
notebooks keep their full output.
"""
from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

from . import config

#: Lines a kernel writes to its stderr on every run that are no problem (regular expressions, searched).
KNOWN_NOISE = (
    # TensorFlow at import: where its C++ log goes, and a note about CPU instructions it was not built for
    r"^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR$",
    r"cpu_feature_guard\.cc:\d+\] This TensorFlow binary is optimized to use available CPU instructions",
    r"^To enable the following instructions: .*rebuild TensorFlow with the appropriate compiler flags\.$",
    r"oneDNN custom operations are on\. You may see slightly different numerical results",
    # TensorFlow registering its CUDA plugins twice (harmless, printed by its CUDA builds)
    r"Unable to register cu(DNN|FFT|BLAS) factory: Attempting to register factory for plugin",
    r"computation_placer\.cc:\d+\] computation placer already registered",
    r"TF-TRT Warning: Could not find TensorRT",
    # the kernel: papermill talks to it over 127.0.0.1
    r"\[IPKernelApp\] WARNING \| Kernel is running over TCP without encryption\.",
)
#: Only where the machine has no NVIDIA driver: TensorFlow looking for a GPU and finding none.
NO_GPU_NOISE = (
    r"cudart_stub\.cc:\d+\] Could not find cuda drivers on your machine, GPU will not be used\.",
    r"cuda_(platform|executor)\.cc:\d+\] failed call to cuInit",
    r"cuda_diagnostics\.cc:\d+\]",
)
#: Only once the notebook is done and the kernel is being stopped.
SHUTDOWN_NOISE = (r"KeyboardInterrupt caught in kernel",)

NOTEBOOKS_DIR = config.REPO_ROOT / "notebooks"


def course_notebooks() -> list[Path]:
    """The numbered notebooks, in course order."""
    return sorted(p for p in NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb"))


def parameters_cells(notebook: Path) -> list[dict]:
    nb = json.loads(Path(notebook).read_text())
    return [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]


def declared_parameters(notebook: Path) -> dict:
    """Name -> default value of each assignment in the notebook's parameters cell."""
    cells = parameters_cells(notebook)
    if len(cells) != 1:
        raise ValueError(f"{notebook} must have exactly one cell tagged 'parameters', has {len(cells)}.")
    tree = ast.parse("".join(cells[0]["source"]))
    declared = {}
    for node in tree.body:
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    try:
                        declared[target.id] = ast.literal_eval(node.value)
                    except ValueError:
                        declared[target.id] = ast.unparse(node.value)
    return declared


def execute(notebook: Path, output: Path, parameters: dict, timeout: int | None = None, quiet: bool = True) -> dict:
    """Run one notebook with papermill; inject only the parameters it declares.

    Returns what was injected and how long it took. Papermill's error (with
    the failing cell's traceback) propagates. ``quiet``: leave the kernel's
    :data:`KNOWN_NOISE` out of the terminal (see the module docstring).
    """
    import papermill as pm

    declared = declared_parameters(notebook)
    injected = {k: v for k, v in parameters.items() if k in declared}
    output.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    options = {"kernel_manager_class": quiet_kernel_manager()} if quiet else {}
    pm.execute_notebook(str(notebook), str(output), parameters=injected, kernel_name="python3",
                        cwd=str(NOTEBOOKS_DIR), progress_bar=False, execution_timeout=timeout, **options)
    return {"notebook": notebook.stem, "parameters": injected, "seconds": round(time.perf_counter() - start, 1)}


def has_nvidia_driver() -> bool:
    """Whether an NVIDIA kernel driver is loaded (Linux: /proc/driver/nvidia; elsewhere: nvidia-smi on PATH)."""
    import shutil

    return Path("/proc/driver/nvidia/version").exists() or shutil.which("nvidia-smi") is not None


class NoiseFilter:
    """Copies text line by line to ``out``, leaving out lines that match :data:`KNOWN_NOISE`
    (plus :data:`NO_GPU_NOISE` on a machine without an NVIDIA driver, and :data:`SHUTDOWN_NOISE`
    once :attr:`closing` is set)."""

    def __init__(self, out=None, gpu_driver: bool | None = None):
        self.out = out
        patterns = list(KNOWN_NOISE) + ([] if (has_nvidia_driver() if gpu_driver is None else gpu_driver)
                                        else list(NO_GPU_NOISE))
        self._always = re.compile("|".join(f"(?:{p})" for p in patterns))
        self._at_shutdown = re.compile("|".join(f"(?:{p})" for p in SHUTDOWN_NOISE))
        self.closing = threading.Event()
        self.dropped: list = []

    def keep(self, line: str) -> bool:
        text = line.rstrip("\r\n")
        if self._always.search(text) or (self.closing.is_set() and self._at_shutdown.search(text)):
            self.dropped.append(text)
            return False
        return True

    def pump(self, stream) -> None:
        """Read ``stream`` (bytes) until it ends; write the lines worth keeping to ``out``."""
        out = self.out or sys.stderr
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", errors="replace")
            if self.keep(line):
                out.write(line)
                out.flush()
        stream.close()


def quiet_kernel_manager():
    """A jupyter_client kernel manager whose kernel's stderr goes through a :class:`NoiseFilter`,
    and which does not interrupt (SIGINT) a kernel that has finished the notebook before asking it
    to shut down: the kernel then exits cleanly instead of logging a KeyboardInterrupt. (A kernel
    that does not exit is still stopped by jupyter_client after its usual wait.)"""
    from jupyter_client.manager import AsyncKernelManager

    class QuietKernelManager(AsyncKernelManager):
        async def _async_launch_kernel(self, kernel_cmd, **kw):
            self.noise_filter = NoiseFilter()
            kw["stderr"] = subprocess.PIPE
            await super()._async_launch_kernel(kernel_cmd, **kw)
            process = getattr(self.provisioner, "process", None)
            if process is not None and process.stderr is not None:
                threading.Thread(target=self.noise_filter.pump, args=(process.stderr,), daemon=True,
                                 name="kernel-stderr").start()

        async def _async_shutdown_kernel(self, now: bool = False, restart: bool = False) -> None:
            if hasattr(self, "noise_filter"):
                self.noise_filter.closing.set()
            await super()._async_shutdown_kernel(now=now, restart=restart)

        async def _async_interrupt_kernel(self) -> None:
            if self.shutting_down:
                return
            await super()._async_interrupt_kernel()

    return QuietKernelManager
