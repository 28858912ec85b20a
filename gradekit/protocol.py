"""Running a driver on a case, as data: what the grader's workers (``autograder.trusted``), the reference and the
student's public checks share.

``run_case(driver, functions, case)`` gives ``{"ok": records}`` or ``{"error": {...}}`` (``describe``: the exception,
its message and the student's line); ``plain`` makes it JSON. A driver travels by name (``module:qualname``,
``driver_name`` / ``driver_function``). ``limit_output`` caps what a grading kernel's cells print. The student's
kernel runs no driver: it only answers calls to the notebook's functions (``gradekit.channel``).
"""

from __future__ import annotations

import importlib
import math
import re
import sys
import traceback
from pathlib import Path

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
        error = describe(exc, Path(sys.modules[run.__module__].__file__).parent)
        if not error["function"] and diverged(exc):  # no line of the student's: the loop's own error, as the grader's
            error = loop_error(exc)
        return {"error": error}


def describe(exc: BaseException, drivers: Path | None = None) -> dict:
    """Exception type, message and the innermost line of student code (a notebook cell) it came from: frames of
    libraries, of this kit and of the driver's package are not the student's."""
    library = tuple(str(p) for p in (sys.prefix, sys.base_prefix, Path(__file__).parent, drivers) if p)
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if not f.filename.startswith(library)]
    where = f"line {frames[-1].lineno}: {(frames[-1].line or '').strip()}" if frames else ""
    return {"type": type(exc).__name__, "message": str(exc)[:500], "where": where,
            "function": frames[-1].name if frames else ""}


NON_FINITE = re.compile(r"\b(inf|nan)\b", re.IGNORECASE)  # torch's words for values that are not finite numbers


def diverged(exc: BaseException) -> bool:
    """True if the loop (not the student's code) stopped because its own values stopped being finite numbers: a
    driver's ``Diverged``, or torch refusing to sample from them (``torch.multinomial``: "probability tensor contains
    either `inf`, `nan` or element < 0"; a distribution's "found invalid values: tensor([nan, ...])")."""
    from gradekit.drivers import Diverged

    return isinstance(exc, Diverged) or (isinstance(exc, (RuntimeError, ValueError))
                                         and NON_FINITE.search(str(exc)) is not None)


def loop_error(exc: BaseException) -> dict:
    """The loop's own error, raised by no code of the student's, on values their functions returned: the shape of
    ``describe``, with ``function`` empty, and ``"loop": "diverged"`` when training diverged (``diverged``), which the
    checks say in words of their own (``gradekit.checks.describe_divergence``) instead of "`f` raised"."""
    error = {"type": type(exc).__name__, "message": str(exc)[:500], "where": "", "function": ""}
    return error | {"loop": "diverged"} if diverged(exc) else error


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
