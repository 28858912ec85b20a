"""Level ``fallback`` (no usable namespaces, the grader is root: e.g. Gradescope's Docker image): the kernel runs as
an unprivileged uid of its own, in a private 0700 folder, with rlimits including a process count; at the end every
process of that uid is killed and its files in shared scratch removed (``Box``)."""

from __future__ import annotations

from autograder import seccomp
from autograder.sandbox.isolation import PIDS_MAX
from autograder.sandbox.levels.base import limits_described, missing_at_every_level
from autograder.sandbox.levels.host import OnTheHost


class Fallback(OnTheHost):
    name = "fallback"

    def available(self, machine, reasons: list[str]) -> dict | None:
        if not machine.linux:
            return None
        why = machine.fallback_works()
        if not why:
            return {"own_uid": True}
        reasons.append(why)
        return None

    def covers(self, cgroups: tuple, disable_userns: bool = False, own_uid: bool = False) -> dict:
        processes, memory, cpu = limits_described(cgroups)
        return {
            "filesystem": "own unprivileged uid: reads only world-readable files (grader-only files must be "
                          "owner-only)",
            "processes": f"every process of the kernel's uid killed at the end; {processes}",
            "memory": memory,
            "cpu": cpu,
            "scratch": "private 0700 folder; the uid's files in /tmp, /var/tmp and /dev/shm removed at the end",
            "privileges": "an unprivileged uid of its own",
            "kernel interfaces": "an unprivileged uid's: no sysctl or core_pattern writes" + (
                f"; {seccomp.describe()}" if seccomp.describe() else ""),
            "environment": "allow-list",
        }

    def missing(self, cgroups: tuple, disable_userns: bool = False) -> tuple:
        return tuple(["network", "PID namespace", *missing_at_every_level(cgroups)])

    def launcher_nproc(self, box) -> int | None:
        return None  # set before exec instead, as the kernel's own uid (``rlimit_nproc``)

    def rlimit_nproc(self, box) -> int | None:
        return None if "pids" in box.cgroups.controllers else PIDS_MAX
