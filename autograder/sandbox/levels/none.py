"""Level ``none`` (no namespaces and not root): rlimits and the process group only; the kernel can read whatever the
grader's user can. (As root, no kernel runs at this level: ``isolation.require``.)"""

from __future__ import annotations

from autograder import seccomp
from autograder.sandbox.levels.base import limits_described, missing_at_every_level, nproc
from autograder.sandbox.levels.host import OnTheHost
from autograder.sandbox.uids import tasks_of_own_uid


class NoIsolation(OnTheHost):
    name = "none"

    def available(self, machine, reasons: list[str]) -> dict | None:
        return {}  # always

    def covers(self, cgroups: tuple, disable_userns: bool = False, own_uid: bool = False) -> dict:
        processes, memory, cpu = limits_described(cgroups)
        return {"processes": f"process group killed at the end; {processes}", "memory": memory, "cpu": cpu,
                "privileges": "the grader's own uid (never root: as root, no student code runs at this level)",
                "kernel interfaces": seccomp.describe() or "the grader's user's", "environment": "allow-list"}

    def missing(self, cgroups: tuple, disable_userns: bool = False) -> tuple:
        return tuple(["network", "PID namespace", "filesystem", "scratch size",
                      *([] if "pids" in cgroups else ["processes started in a new session"]),
                      *missing_at_every_level(cgroups)])

    def launcher_nproc(self, box) -> int | None:
        limit = nproc(box)  # RLIMIT_NPROC counts every process of the grader's user: theirs now, and the cap
        return None if limit is None else limit + tasks_of_own_uid()
