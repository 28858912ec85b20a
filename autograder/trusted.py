"""The experiment runs on the grader's side: a check's driver (its loop, environment, network, optimiser, random
numbers and the records a verdict reads) runs in processes this module forks from the grader, never in the student's
kernel. The kernel only answers calls to the student's functions, across the channel (``autograder.channel``):
whatever the student's code does in its own process (replacing modules, walking the caller's frames, rewriting what
the kernel displays, patching numpy or torch) cannot reach the loop or its records.

``run(path, driver, functions, cases, workers, limit)`` runs a driver on cases, each worker a forked copy of the
grader that connects to the kernel's socket at ``path`` (the kernel serves each connection from a forked copy of
itself, so seeds in parallel never share the student's state). Seeded training runs go one case per worker,
``workers`` at a time; other checks run their cases one after the other in one worker, on one copy of the kernel (as
in one notebook). An argument comes back changed only where the drivers' module allows it (``IN_PLACE``: function
name -> positions of the arguments its contract lets it update in place). A worker writes each answer (``{"ok": data}`` or ``{"error": {...}}``, the shape of
``gradekit.protocol.run_case``) as one JSON line to a pipe: data between two trusted processes.
"""

from __future__ import annotations

import io
import json
import os
import selectors
import signal
import sys
import time

from gradekit.drivers import ContractError
from gradekit.protocol import driver_function, loop_error, plain

from autograder.channel import CallError, Channel, remote_function
from autograder.gate import clean_data

STOPPED = ("the Python process running your functions for this case stopped before it finished (os._exit, sys.exit "
           "in a thread, a crash or too much memory?)")
GONE = "the notebook's Python process is gone: it no longer answers calls"


def run_case(channel: Channel, driver, functions: tuple[str, ...], case: dict) -> dict:
    """The driver on one case with stand-ins for the student's functions: its records, or the error that stopped it
    (the student's own exception as the kernel described it, a broken contract, or the trusted loop's own error on
    values the student's functions returned, such as a NaN loss)."""
    run = driver_function(driver)
    in_place = getattr(sys.modules[run.__module__], "IN_PLACE", {})
    stand_ins = [remote_function(channel, name, in_place=in_place.get(name, ())) for name in functions]
    try:
        return {"ok": run(*stand_ins, dict(case))}
    except CallError as exc:
        if exc.kind == "Closed":
            return {"error": {"type": "ProcessExit", "message": STOPPED, "where": "", "function": exc.function}}
        return {"error": exc.as_dict() | {"kind": exc.kind}}
    except ContractError as exc:
        return {"error": {"type": "ContractError", "message": str(exc)[:500], "where": ""}}
    except Exception as exc:  # noqa: BLE001 - the trusted loop failing on the student's values: that case's error
        cause = exc.__context__ if isinstance(exc.__context__, CallError) else None
        if cause is not None:  # a CallError inside torch's backward comes out wrapped
            return {"error": cause.as_dict() | {"kind": cause.kind}}
        return {"error": loop_error(exc)}


def worker(path: str, driver, functions: tuple[str, ...], cases: list[tuple[int, dict]], limit: float,
           out: int) -> None:
    """In a forked copy of the grader: run ``cases`` (index, case) in order on one connection, write each answer."""
    import torch  # lazy: 1.7 s a grade's start does without (tests/test_startup.py); preloaded before the fork

    sys.stdout = sys.stderr = io.StringIO()  # the grader's streams are not this copy's to write to
    torch.set_num_threads(1)  # a forked torch forgets the parent's setting
    channel = None
    for index, case in cases:
        if channel is None or channel.closed is not None:  # the copy serving the last case stopped: a fresh copy
            try:
                channel = Channel(path, max(0.1, limit - time.monotonic()), connect_timeout=5.0)
            except CallError:
                write_all(out, [index, {"error": {"type": "KernelGone", "message": GONE, "where": ""}}])
                continue
        channel.timeout = max(0.1, limit - time.monotonic())
        try:
            write_all(out, [index, plain(run_case(channel, driver, functions, case))])
        except (TypeError, ValueError) as exc:  # records a driver made that are not plain data: the grader's bug
            write_all(out, [index, {"error": {"type": "GraderError", "where": "", "message":
                                              f"the records of this run could not be written ({exc!s:.200})"}}])


def write_all(out: int, answer: list) -> None:
    """One answer as one JSON line, all of it (a pipe may take a long line in several writes)."""
    data = memoryview((json.dumps(answer, allow_nan=False) + "\n").encode())
    while data:
        data = data[os.write(out, data):]


preloaded: set[str] = set()
cpu_seconds = 0.0  # CPU time of every worker this process has collected: the grade's trusted side


def preload(driver, cases: list[dict] = (), holds=lambda check: True) -> None:
    """Import the driver's module and what it imports when it runs (its ``preload()``: Gymnasium, MuJoCo) once in the
    grader, before it forks, rather than in every worker; then let the module compute what the cases share whoever's
    functions answer (its ``prepare(driver, cases, holds)``, which keeps it: an expert's demonstrations, say), so that
    every worker forked after it has it. ``holds(check)`` says whether ``check(*student's functions)`` runs without an
    error (``probe``): a module asks it first, so that a function that breaks its contract (a blank release's) does not
    cost what only a working one needs."""
    function = driver_function(driver)
    module = sys.modules[function.__module__]
    if module.__name__ not in preloaded:
        getattr(module, "preload", lambda: None)()
        preloaded.add(module.__name__)
    getattr(module, "prepare", lambda driver, cases, holds: None)(function, list(cases), holds)


PROBE_SECONDS = 10.0  # a probe makes a call or two: a slower function only loses the head start (the cases run as ever)


def probe(path: str, driver, functions: tuple[str, ...], limit: float):
    """``holds(check)`` for a module's ``prepare``: whether ``check(*stand-ins)`` returns without an error, run as a
    driver of one case (``execute``: a forked worker, its own copy of the kernel) within ``PROBE_SECONDS`` and
    ``limit``. Only a head start hangs on it: the cases then run and answer as they would without it."""
    module = driver_function(driver).__module__

    def holds(check) -> bool:
        def contract(*args) -> dict:  # the stand-ins, then the (empty) case
            check(*args[:-1])
            return {}

        contract.__module__ = module  # (its stand-ins write back what the drivers' IN_PLACE allows, as the cases')
        status, answers = execute(path, contract, functions, [{}], 1, min(limit, time.monotonic() + PROBE_SECONDS))
        return status == "ok" and answers == [{"ok": {}}]
    return holds


def collect(pid: int) -> None:
    """Wait for a worker, and add its CPU time to ``cpu_seconds``."""
    global cpu_seconds
    _, _, usage = os.wait4(pid, 0)
    cpu_seconds += usage.ru_utime + usage.ru_stime


def run(path: str, driver, functions, cases: list[dict], workers: int, limit: float) -> tuple[str, list[dict]]:
    """Run ``driver`` on every case, until all are answered or ``limit`` (``time.monotonic()``) passes. Returns the
    status ("ok", "timeout", or "died" if the kernel stopped answering altogether) and the answers of the cases up to
    the first one unanswered."""
    functions = tuple(functions)
    preload(driver, cases, probe(path, driver, functions, limit))
    return execute(path, driver, functions, cases, workers, limit)


def execute(path: str, driver, functions: tuple[str, ...], cases: list[dict], workers: int,
            limit: float) -> tuple[str, list[dict]]:
    """``run`` without the preload: fork the workers, collect their answers, stop them at ``limit``."""
    groups = ([[(i, c)] for i, c in enumerate(cases)] if workers > 1 else [list(enumerate(cases))])
    answers: dict[int, dict] = {}
    running: dict[int, tuple[int, bytearray]] = {}  # read end -> (pid, bytes so far)
    status = "ok"
    with selectors.DefaultSelector() as selector:
        try:
            while groups or running:
                while groups and len(running) < max(1, workers):
                    read, write = os.pipe()
                    group = groups.pop(0)
                    pid = os.fork()
                    if pid == 0:
                        try:
                            os.close(read)
                            worker(path, driver, functions, group, limit, write)
                        finally:
                            os._exit(0)
                    os.close(write)
                    running[read] = (pid, bytearray())
                    selector.register(read, selectors.EVENT_READ)
                left = limit - time.monotonic()
                events = selector.select(timeout=max(0.0, left)) if left > 0 else []
                if not events:
                    status = "timeout"
                    break
                for key, _ in events:
                    pid, data = running[key.fd]
                    chunk = os.read(key.fd, 1 << 16)
                    data += chunk
                    *lines, rest = data.split(b"\n")
                    data[:] = rest
                    for line in lines:  # every string cleaned and cut as the gate does a kernel's messages: an
                        index, answer = json.loads(line)  # error's text and a table's keys are the student's
                        answers[index] = clean_data(answer)
                    if not chunk:
                        selector.unregister(key.fd)
                        os.close(key.fd)
                        del running[key.fd]
                        collect(pid)
        finally:
            for read, (pid, _) in running.items():  # the limit, or an interruption: stop the workers still running
                os.kill(pid, signal.SIGKILL)
                collect(pid)
                os.close(read)
    done = []
    for index in range(len(cases)):
        if index not in answers:
            break
        done.append(answers[index])
    errors = [a["error"] for a in done if "error" in a]
    if any(e.get("type") == "KernelGone" for e in errors):
        status = "died"
    elif status == "ok" and any(e.get("kind") == "Timeout" for e in errors):
        status = "timeout"
    elif status == "ok" and len(done) < len(cases):  # a worker of ours stopped without answering (memory?)
        done += [{"error": {"type": "GraderError", "message": "the grader's run of this case stopped", "where": ""}}
                 ] * (len(cases) - len(done))
    return status, done
