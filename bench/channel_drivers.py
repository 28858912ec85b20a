"""The lecture's behaviour drivers run on the trusted side, the reference functions answering from a sandboxed kernel
through the channel: same records as in-process, and what it costs, side by side in one run.

    OMP_NUM_THREADS=1 .venv/bin/python bench/channel_drivers.py [--seeds 2]

Each driver of ``assignments/week03_policy_gradients/drivers.py`` (unchanged) is called in this process twice per
seed: with the reference functions themselves (from the source notebook), and with ``autograder.channel``'s
``remote_function`` stand-ins for them, whose calls the same functions answer in a real grading kernel (the probed
isolation level; the instructor's setup cell and the reference's graded cells run there). The records (learning
curves, losses, variance sums) must be equal to the bit. Reported per driver run: calls made, wall time and CPU of
both sides in-process and through the channel, and the difference per call. A prototype of issue 22's wiring, not the
wiring: the seeds are still those of the drivers' own ``seed_everything``.

``--parallel N`` then runs each driver's first N seeds at once, as the grader runs seeds today: N forked trusted
workers, each with its own connection to a forked copy of the kernel (``serve(fork=True)``), against N forked workers
calling the reference in-process; wall time of each batch, records compared with the sequential in-process ones.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from autograder import channel as client  # noqa: E402
from autograder import config  # noqa: E402
from autograder.execute import KernelSession  # noqa: E402
from autograder.grade import setup_code  # noqa: E402
from autograder.notebook import reference_functions  # noqa: E402
from tests.conftest import reference_answers  # noqa: E402

IN_PLACE = config.load().assignment().checks[0].driver.__globals__.get("IN_PLACE", {})


def runs(assignment) -> list[tuple[str, object, tuple[str, ...], dict]]:
    """(label, driver, graded functions, case without seed) of every behaviour check, from the catalogue's settings."""
    out = []
    for check in assignment.checks:
        settings = getattr(check, "settings", None)
        if settings is None or not hasattr(check, "driver"):
            continue
        case = dict(settings())
        out.append((type(check).__name__, check.driver, tuple(check.functions), case))
    return out


class Counting:
    def __init__(self, chan):
        self.chan, self.calls = chan, 0

    def function(self, name):
        remote = client.remote_function(self.chan, name, in_place=IN_PLACE.get(name, ()))

        def call(*args):
            self.calls += 1
            return remote(*args)
        return call


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=2, help="seeds per driver (default 2)")
    parser.add_argument("--parallel", type=int, default=2, help="seeds at once in the parallel runs (0: none)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    assignment = config.load().assignment()
    reference = reference_functions(assignment)
    answers = reference_answers(assignment)
    load_before = os.getloadavg()[0]
    rows, parallel, records = [], [], {}
    with KernelSession(assignment.limits, assignment.kernel_packages) as kernel:
        level = kernel.isolation["level"]
        for code in (setup_code(assignment), *answers.values()):
            run = kernel.run(code)
            assert run.status == "ok", run.error
        cgroup_cpu = kernel.box.cgroups.cpu_seconds if kernel.cpu_seconds is not None else (lambda: 0.0)
        with client.start(kernel, timeout=60) as chan:
            counting = Counting(chan)
            for label, driver, names, case in runs(assignment):
                for seed in range(args.seeds):
                    seeded = dict(case, seed=1000 + seed)
                    c0, w0 = time.process_time(), time.perf_counter()
                    local = driver(*(reference[n] for n in names), dict(seeded))
                    local_wall, local_cpu = time.perf_counter() - w0, time.process_time() - c0
                    calls0, k0 = counting.calls, cgroup_cpu()
                    c0, w0 = time.process_time(), time.perf_counter()
                    remote = driver(*(counting.function(n) for n in names), dict(seeded))
                    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
                    calls, kernel_cpu = counting.calls - calls0, cgroup_cpu() - k0
                    records[label, seed] = json.dumps(local, sort_keys=True)
                    same = records[label, seed] == json.dumps(remote, sort_keys=True)
                    rows.append((label, seed, calls, local_wall, local_cpu, wall, cpu, kernel_cpu, same))
        if args.parallel:
            with client.start(kernel, "forked.sock", timeout=60, fork=True) as first:
                path = first.path
            for label, driver, names, case in runs(assignment):
                seeds = range(min(args.parallel, args.seeds))
                cases = [dict(case, seed=1000 + seed) for seed in seeds]
                local_wall, local = forked(lambda c: driver(*(reference[n] for n in names), c), cases)
                wall, remote = forked(lambda c: driver(*(client.remote_function(client.Channel(path, 60), n,
                                                                                 in_place=IN_PLACE.get(n, ()))
                                                         for n in names), c), cases)
                same = all(json.dumps(r, sort_keys=True) == records[label, s] for r, s in zip(remote, seeds))
                same = same and all(json.dumps(r, sort_keys=True) == records[label, s] for r, s in zip(local, seeds))
                parallel.append((label, len(cases), local_wall, wall, same))
    print(f"load average before {load_before:.2f}, after {os.getloadavg()[0]:.2f} (2 cores); kernel at level {level}")
    print(f"{'driver run':<28}{'calls':>7}{'in-process s':>14}{'CPU-s':>7}{'channel s':>11}{'CPU-s trusted':>15}"
          f"{'kernel':>8}{'extra CPU µs/call':>19}{'same':>6}")
    for label, seed, calls, lw, lc, w, c, k, same in rows:
        extra = (c + k - lc) / max(calls, 1) * 1e6
        print(f"{label + f' #{seed}':<28}{calls:>7}{lw:>14.2f}{lc:>7.2f}{w:>11.2f}{c:>15.2f}{k:>8.2f}{extra:>19.0f}"
              f"{'yes' if same else 'NO':>6}")
    total_calls = sum(r[2] for r in rows)
    extra_cpu = sum(r[6] + r[7] - r[4] for r in rows)
    print(f"all: {total_calls} calls, {sum(r[3] for r in rows):.2f} s in-process, {sum(r[5] for r in rows):.2f} s "
          f"through the channel; extra CPU {extra_cpu:.2f} s = {extra_cpu / max(total_calls, 1) * 1e6:.0f} µs a call; "
          f"median extra per call by driver: "
          f"{statistics.median((r[6] + r[7] - r[4]) / max(r[2], 1) * 1e6 for r in rows):.0f} µs")
    if parallel:
        print(f"{'seeds at once':<28}{'n':>7}{'in-process s':>14}{'channel s':>11}{'same':>6}")
        for label, n, local_wall, wall, same in parallel:
            print(f"{label:<28}{n:>7}{local_wall:>14.2f}{wall:>11.2f}{'yes' if same else 'NO':>6}")
    return 0 if all(r[-1] for r in rows) and all(r[-1] for r in parallel) else 1


def forked(run, cases: list[dict]) -> tuple[float, list]:
    """``run(case)`` for every case at once, each in a forked copy of this process (one thread each); the wall time
    until all are done, and their records (JSON through a pipe, between two trusted processes)."""
    start, children = time.perf_counter(), []
    for case in cases:
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read)
            try:
                torch.set_num_threads(1)
                data = json.dumps(run(case)).encode()
                with os.fdopen(write, "wb") as out:
                    out.write(data)
            finally:
                os._exit(0)
        os.close(write)
        children.append((pid, read))
    records = []
    for pid, read in children:
        with os.fdopen(read, "rb") as data:
            records.append(json.loads(data.read()))
        os.waitpid(pid, 0)
    return time.perf_counter() - start, records


if __name__ == "__main__":
    sys.exit(main())
