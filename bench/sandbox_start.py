"""How much the sandbox adds to a kernel's start: N kernels started with it and N without, alternating, medians.

    .venv/bin/python bench/sandbox_start.py --kernels 10
    OMP_NUM_THREADS=1 .venv/bin/python bench/sandbox_start.py --forked 5   # what a template kernel could save

A start is measured as the grader sees it: from ``KernelSession.__enter__`` until a first cell (``1 + 1``) has run and
its reply came back, then the session is stopped (the kill and clean-up are timed separately). "without" is the
isolation level ``none`` (the same kernel, rlimits and Unix sockets, no sandbox), or ``fallback`` with ``--without``.
The level is probed before the clock starts (once per grading process). Run it on a quiet machine before quoting it.

``--forked N`` measures only the bound of a design not built (a template kernel forked per student): the CPU of a
grading kernel's imports (torch, numpy, pyplot and animation, ipykernel's kernel) done in a fresh process, against N
children forked from a process that has done them, each running a little torch and pyplot (its copy-on-write page
faults included), no sandbox either way.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from autograder import config, sandbox  # noqa: E402
from autograder.sandbox import bwrap  # noqa: E402
from autograder.execute import KernelSession  # noqa: E402


def one(limits, visible, level: str) -> tuple[float, float]:
    os.environ.pop(sandbox.FORCE_ENV, None)
    if level != "full":
        os.environ[sandbox.FORCE_ENV] = level
    sandbox.probe.cache_clear()
    sandbox.probe()  # probed once per grading process: not part of a kernel's start
    start = time.perf_counter()
    kernel = KernelSession(limits, visible).__enter__()
    run = kernel.run("1 + 1")
    started = time.perf_counter()
    assert run.status == "ok", run
    assert kernel.isolation["level"] == level, kernel.isolation
    kernel.__exit__(None, None, None)
    return started - start, time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kernels", type=int, default=10, help="kernels started per variant (default 10)")
    parser.add_argument("--without", default="none", choices=("none", "fallback"),
                        help="the level to compare with (default none)")
    parser.add_argument("--forked", type=int, default=0, metavar="N",
                        help="only: a kernel's imports against N children forked after them (no sandbox)")
    args = parser.parse_args()
    if args.forked:
        return forked(args.forked)
    assignment = config.load().assignment()
    visible = {"autograder": Path(config.ROOT, "autograder")}
    times: dict[str, list[tuple[float, float]]] = {"full": [], args.without: []}
    one(assignment.limits, visible, "full")  # warm the page cache for both
    for _ in range(args.kernels):
        for level in times:
            times[level].append(one(assignment.limits, visible, level))
    print(f"{args.kernels} kernels each, alternating; start = until a first cell has run; seconds")
    print(f"{'level':<10}{'start median':>14}{'min':>8}{'max':>8}{'stop median':>14}")
    for level, rows in times.items():
        starts = [s for s, _ in rows]
        print(f"{level:<10}{statistics.median(starts):>14.3f}{min(starts):>8.3f}{max(starts):>8.3f}"
              f"{statistics.median([s for _, s in rows]):>14.3f}")
    added = statistics.median(s for s, _ in times["full"]) - statistics.median(s for s, _ in times[args.without])
    print(f"sandbox adds {added:+.3f} s per kernel start (median difference)")
    print(f"bwrap alone: {bwrap_alone():.4f} s (median of 20 `bwrap ... true`)")
    return 0


IMPORTS = ("import torch, numpy; import matplotlib; matplotlib.use('Agg'); from matplotlib import pyplot, animation; "
           "import ipykernel.kernelapp, ipykernel.ipkernel")


def forked(n: int) -> int:
    import subprocess

    code = (f"import os, time\nc0 = time.process_time()\n{IMPORTS}\ntorch.set_num_threads(1)\n"
            "print(f'imports, in a fresh process: {time.process_time() - c0:.3f} CPU-s', flush=True)\n"
            f"for _ in range({n}):\n"
            "    pid = os.fork()\n"
            "    if pid == 0:\n"
            "        x = torch.linspace(-2.0, -0.1, 200, requires_grad=True)\n"
            "        for _ in range(10):\n"
            "            (-(x * torch.ones(200)).mean()).backward()\n"
            "        pyplot.figure(); pyplot.plot([1, 2, 3]); pyplot.close()\n"
            "        os._exit(0)\n"
            "    _, _, ru = os.wait4(pid, 0)\n"
            "    print(f'a child forked after them: {ru.ru_utime + ru.ru_stime:.3f} CPU-s, {ru.ru_minflt} page faults')\n")
    return subprocess.run([sys.executable, "-c", code], check=False).returncode


def bwrap_alone() -> float:
    import subprocess

    os.environ.pop(sandbox.FORCE_ENV, None)
    sandbox.probe.cache_clear()
    isolation = sandbox.probe()
    if isolation.level != "full":
        return float("nan")
    cmd = [isolation.bwrap, *bwrap.namespace_args(isolation.disable_userns), *bwrap.system_binds(),
           "--proc", "/proc", "--dev", "/dev", "--", "true"]
    times = []
    for _ in range(20):
        start = time.perf_counter()
        subprocess.run(cmd, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


if __name__ == "__main__":
    sys.exit(main())
