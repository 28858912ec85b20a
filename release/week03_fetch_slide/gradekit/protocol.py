"""The request/answer protocol between the grader and the student's kernel: the only grading code the kernel runs.

The grader sends ``serve(globals(), request)``: which driver to run (``module:qualname``, imported here from the
assignment's content package), on which of the notebook's functions, with which cases. ``serve`` runs each case
(several at once in forked copies for seeded training runs) and displays the plain answers as one JSON output. The
verdicts are decided in the grader's process; nothing here knows a reference solution or a threshold.
"""

from __future__ import annotations

import importlib
import io
import json
import math
import os
import selectors
import signal
import sys
import traceback
from pathlib import Path

MIME = "application/vnd.autograder.result+json"


def driver_name(driver) -> str:
    """How a driver travels in a request: ``module:qualname`` of the function object."""
    return f"{driver.__module__}:{driver.__qualname__}"


def driver_function(driver):
    """A driver from its name (``module:qualname``), or the function itself."""
    if callable(driver):
        return driver
    module, name = driver.split(":")
    target = importlib.import_module(module)
    for part in name.split("."):
        target = getattr(target, part)
    return target


def run_case(driver, functions: list, case: dict) -> dict:
    """Run one driver on one case: ``{"ok": data}`` or ``{"error": {...}}``; student errors never escape."""
    from gradekit.drivers import ContractError

    run = driver_function(driver)
    try:
        return {"ok": run(*functions, case)}
    except ContractError as exc:
        return {"error": {"type": "ContractError", "message": str(exc), "where": ""}}
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - anything the student's code raises is data
        return {"error": describe(exc, Path(sys.modules[run.__module__].__file__).parent)}


def describe(exc: BaseException, drivers: Path | None = None) -> dict:
    """Exception type, message and the innermost line of student code (a notebook cell) it came from: frames of
    libraries, of this kit and of the driver's package are not the student's."""
    library = tuple(str(p) for p in (sys.prefix, sys.base_prefix, Path(__file__).parent, drivers) if p)
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if not f.filename.startswith(library)]
    where = f"line {frames[-1].lineno}: {(frames[-1].line or '').strip()}" if frames else ""
    return {"type": type(exc).__name__, "message": str(exc)[:500], "where": where,
            "function": frames[-1].name if frames else ""}


def plain(value):
    """JSON-safe copy: numbers as floats, NaN and infinities as the strings ``float()`` reads back."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, (bool, str)) or value is None:
        return value
    number = float(value)
    return number if math.isfinite(number) else str(number)


def serve(namespace: dict, request: str) -> None:
    """Entry point in the student's kernel: run the request's cases and display the results as one JSON output."""
    import torch
    from IPython.display import display

    spec = json.loads(request)
    missing = [name for name in spec["functions"] if not callable(namespace.get(name))]
    if missing:
        error = {"type": "NameError", "message": f"function `{missing[0]}` is not defined", "where": "",
                 "function": missing[0]}
        results = [{"error": error} for _ in spec["cases"]]
    else:
        functions = [namespace[name] for name in spec["functions"]]
        torch.set_num_threads(1)
        if spec.get("workers", 1) > 1 and len(spec["cases"]) > 1:
            results = run_forked(spec["driver"], functions, spec["cases"], spec["workers"])
        else:
            results = [run_case(spec["driver"], functions, case) for case in spec["cases"]]
    display({MIME: plain(results)}, raw=True)


def run_forked(driver, functions: list, cases: list[dict], workers: int) -> list[dict]:
    """Each case in a forked copy of this process, ``workers`` at a time: the seeds of a behaviour check on several
    cores, one thread each. A case is seeded by itself, so its result is the same as in this process. A copy that
    dies (os._exit, a crash) or prints answers that are not JSON gives an error for its case only."""
    import torch

    preload(driver)
    results: list[dict | None] = [None] * len(cases)
    pending = list(enumerate(cases))
    running: dict[int, tuple[int, int, bytearray]] = {}  # read end -> (index, pid, bytes so far)
    with selectors.DefaultSelector() as selector:
        try:
            while pending or running:
                while pending and len(running) < workers:
                    index, case = pending.pop(0)
                    read, write = os.pipe()
                    pid = os.fork()
                    if pid == 0:  # the copy: run the case, write its JSON, leave without any cleanup of the kernel's
                        os.close(read)
                        try:
                            sys.stdout = sys.stderr = io.StringIO()  # the kernel's output streams are not ours
                            torch.set_num_threads(1)  # a forked torch forgets the parent's setting
                            os.write(write, json.dumps(plain(run_case(driver, functions, case))).encode())
                        finally:
                            os._exit(0)
                    os.close(write)
                    running[read] = (index, pid, bytearray())
                    selector.register(read, selectors.EVENT_READ)
                for key, _ in selector.select():
                    index, pid, data = running[key.fd]
                    chunk = os.read(key.fd, 1 << 16)
                    if chunk:
                        data += chunk
                        continue
                    selector.unregister(key.fd)
                    os.close(key.fd)
                    del running[key.fd]
                    os.waitpid(pid, 0)
                    results[index] = forked_result(bytes(data))
        finally:
            for read, (_, pid, _) in running.items():  # interrupted (time limit): stop the copies still running
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                os.close(read)
    return results


preloaded: set[str] = set()  # driver modules whose ``preload()`` ran in this process


def limit_output(chars: int) -> None:
    """Each cell prints at most ``chars`` characters to stdout and stderr; the rest is dropped here, before the kernel
    sends it. The grader keeps no more than that, and drops a message over its size cap whole (``autograder.gate``):
    so a student who prints a lot while debugging still gets their answers graded. (IPython puts a stream's
    ``write`` back at the end of every cell, so the cap is put on at the start of each.)"""
    from IPython import get_ipython

    shell = get_ipython()
    if shell is None:
        return
    left = [chars]

    def capped(write):
        def write_capped(text):
            if not isinstance(text, str):
                return write(text)
            if left[0] <= 0:
                return len(text)
            kept, left[0] = text[:left[0]], left[0] - len(text)
            write(kept + ("\n[output truncated]\n" if left[0] < 0 else ""))
            return len(text)
        return write_capped

    def cap(*_):
        left[0] = chars
        for stream in (sys.stdout, sys.stderr):
            stream.write = capped(stream.write)

    shell.events.register("pre_run_cell", cap)


def preload(driver) -> None:
    """Import the driver's module, and what it imports only when a driver runs (its ``preload()``: environments,
    Gymnasium), in the process that forks, once, rather than in every copy: ~60 ms a copy otherwise. A failing import
    is left to the copies, which report it for their cases."""
    try:
        module = sys.modules[driver_function(driver).__module__]
        if module.__name__ not in preloaded:
            preloaded.add(module.__name__)
            getattr(module, "preload", lambda: None)()
    except Exception:  # noqa: BLE001, S110 - the copies run the same imports and report what fails
        pass


def forked_result(data: bytes) -> dict:
    try:
        result = json.loads(data)
        if isinstance(result, dict) and ("ok" in result or "error" in result):
            return result
    except ValueError:
        pass
    return {"error": {"type": "ProcessExit", "message": "the Python process running this seed stopped before it "
                      "finished (os._exit, sys.exit in a thread, a crash or too much memory?)", "where": ""}}
