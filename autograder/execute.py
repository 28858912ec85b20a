"""A fresh Jupyter kernel (nbclient) for one submission, in a temporary directory, under limits.

Student code only ever runs in this kernel. Where Linux allows it, the kernel runs in a filesystem jail
(``sandbox.py``: everything read-only, the reference solutions hidden). Its process gets an address-space, CPU-time and file-size limit
(``resource.setrlimit`` before exec), threads pinned to one, and no more than ``output_kb`` of printed text per cell is
kept. A cell that times out or kills the kernel ends with a status, never an exception: the kernel's whole process
group is killed and a new kernel started, so the grader can replay the definitions and go on with the next check.
"""

from __future__ import annotations

import functools
import json
import os
import resource
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError

from autograder import sandbox

ROOT = Path(__file__).resolve().parent.parent
GRADER_ONLY = (ROOT / "source", ROOT / "tests", ROOT / ".git")  # hidden by the jail (until the allow-list sandbox)
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")


@dataclass
class CellRun:
    status: str  # "ok", "error", "timeout" or "died"
    outputs: list = field(default_factory=list)
    seconds: float = 0.0

    @property
    def error(self) -> dict | None:
        """The error output of the cell (ename, evalue, traceback), if any."""
        return next((o for o in self.outputs if o.get("output_type") == "error"), None)


def kernel_env(path: str | None = None) -> dict:
    """The kernel's environment: one thread, no display, fixed hashing, and ``path`` (the folder of the packages it
    may import) as its only PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JPY_", "JUPYTER_"))}
    env.update({var: "1" for var in THREAD_VARS})
    env["MPLBACKEND"] = "Agg"
    env["PYTHONHASHSEED"] = "0"
    env.pop("PYTHONPATH", None)
    if path:
        env["PYTHONPATH"] = path
    return env


def _limit_child(limits, hidden: list[str], writable: list[str]) -> None:
    """Runs in the kernel's process between fork and exec: the jail (if any), then the resource limits."""
    if writable:
        sandbox.enter(hidden, writable)
    memory = int(limits.memory_mb) << 20
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    cpu = int(limits.cpu_seconds)
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 << 20, 64 << 20))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


class CappedClient(NotebookClient):
    """Keeps at most ``output_bytes`` of stream text per cell, and no rich output over ``display_bytes``."""

    output_bytes = 256 << 10
    display_bytes = 8 << 20  # the largest answer a check sends back is ~100 KB

    def output(self, outs, msg, display_id, cell_index):
        if msg["msg_type"] in ("display_data", "execute_result", "error"):
            if len(json.dumps(msg["content"], default=str)) > self.display_bytes:
                return None
        elif msg["msg_type"] == "stream":
            kept = sum(len(o.get("text", "")) for o in outs if o.get("output_type") == "stream")
            room = self.output_bytes - kept
            if room <= 0:
                return None
            text = msg["content"]["text"]
            if len(text) > room:
                msg["content"]["text"] = text[:room] + "\n[output truncated by the grader]\n"
        return super().output(outs, msg, display_id, cell_index)


class KernelSession:
    """``with KernelSession(limits, visible) as k: k.run(code)``; ``k.restart()`` after a timeout or a dead kernel.

    ``visible`` maps import names to the package folders the kernel may import (the kit and the assignment's content);
    they are its only import path, besides the environment's packages."""

    def __init__(self, limits, visible: dict[str, Path] | None = None, hidden: list[Path] = GRADER_ONLY):
        self.limits = limits
        self.visible = dict(visible or {})
        self.hidden = [str(p) for p in hidden]
        self.jailed = sandbox.available()
        self.restarts = 0
        self.pid = 0

    def __enter__(self) -> KernelSession:
        self._tmp = tempfile.TemporaryDirectory(prefix="autograder-")
        self._path = Path(self._tmp.name) / ".grading"
        self._path.mkdir()
        for name, folder in self.visible.items():
            (self._path / name).symlink_to(Path(folder).resolve(), target_is_directory=True)
        self._start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop()
        self._tmp.cleanup()

    def _start(self) -> None:
        self.nb = nbformat.v4.new_notebook()
        self.client = CappedClient(self.nb, timeout=int(self.limits.cell_seconds), kernel_name="python3",
                                   allow_errors=True, shutdown_kernel="immediate", startup_timeout=60,
                                   resources={"metadata": {"path": self._tmp.name}})
        self.client.output_bytes = int(self.limits.output_kb * 1024)
        self.client.km = self.client.create_kernel_manager()
        env = kernel_env(str(self._path))
        writable = [self._tmp.name] if self.jailed else []
        env.update(HOME=self._tmp.name, IPYTHONDIR=f"{self._tmp.name}/.ipython", MPLCONFIGDIR=f"{self._tmp.name}/.mpl")
        self.client.start_new_kernel(env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     preexec_fn=functools.partial(_limit_child, self.limits, self.hidden, writable))
        self.client.start_new_kernel_client()
        self.pid = self.client.km.provisioner.pid

    def _stop(self) -> None:
        """Kill the kernel's whole process group (it is a session leader), then let nbclient clean up."""
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.client._cleanup_kernel()
        except Exception:  # noqa: BLE001, S110 - the kernel is gone, which is what we want
            pass

    def restart(self) -> None:
        self._stop()
        self.restarts += 1
        self._start()

    def run(self, code: str, timeout: float | None = None) -> CellRun:
        cell = nbformat.v4.new_code_cell(code)
        self.nb.cells.append(cell)
        self.client.timeout = max(1, int(timeout or self.limits.cell_seconds))
        start = time.monotonic()
        try:
            self.client.execute_cell(cell, len(self.nb.cells) - 1, store_history=False)
        except CellTimeoutError:
            return CellRun("timeout", list(cell.outputs), time.monotonic() - start)
        except DeadKernelError:
            return CellRun("died", list(cell.outputs), time.monotonic() - start)
        run = CellRun("ok", list(cell.outputs), time.monotonic() - start)
        if run.error:
            run.status = "error"
        return run
