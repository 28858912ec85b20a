"""A fresh Jupyter kernel (nbclient) for one submission, in a temporary directory, with per-cell timeouts.

Student code only ever runs in this kernel. A cell that times out or kills the kernel ends with a status, never an
exception: the kernel is killed and a new one started, so the grader can replay the definitions and go on with the
next check.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError

PACKAGE_PARENT = str(Path(__file__).resolve().parent.parent)
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


def kernel_env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JPY_", "JUPYTER_"))}
    env.update({var: "1" for var in THREAD_VARS})
    env["MPLBACKEND"] = "Agg"
    env["PYTHONHASHSEED"] = "0"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [PACKAGE_PARENT, env.get("PYTHONPATH")]))
    return env


class KernelSession:
    """``with KernelSession(timeout) as k: k.run(code)``; ``k.restart()`` after a timeout or a dead kernel."""

    def __init__(self, cell_timeout: float):
        self.cell_timeout = cell_timeout
        self.restarts = 0

    def __enter__(self) -> KernelSession:
        self._tmp = tempfile.TemporaryDirectory(prefix="autograder-")
        self._start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop()
        self._tmp.cleanup()

    def _start(self) -> None:
        self.nb = nbformat.v4.new_notebook()
        self.client = NotebookClient(self.nb, timeout=int(self.cell_timeout), kernel_name="python3",
                                     allow_errors=True, shutdown_kernel="immediate", startup_timeout=60,
                                     resources={"metadata": {"path": self._tmp.name}})
        self.client.km = self.client.create_kernel_manager()
        self.client.start_new_kernel(env=kernel_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.client.start_new_kernel_client()

    def _stop(self) -> None:
        try:
            self.client._cleanup_kernel()
        except Exception:  # noqa: BLE001 - a kernel that is already gone is what we want
            km = getattr(self.client, "km", None)
            if km is not None and km.has_kernel:
                km.provisioner.kill()

    def restart(self) -> None:
        self._stop()
        self.restarts += 1
        self._start()

    def run(self, code: str, timeout: float | None = None) -> CellRun:
        cell = nbformat.v4.new_code_cell(code)
        self.nb.cells.append(cell)
        self.client.timeout = int(timeout or self.cell_timeout)
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
