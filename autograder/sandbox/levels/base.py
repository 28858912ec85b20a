"""What every isolation level provides (``Level``): what it contains and what not, for the isolation record, and how
a kernel is started and reached in it, for ``Box``. A level is a file of this folder with a subclass of ``Level``,
listed in ``levels/__init__.py``; ``probing.probe`` decides which level a machine gives."""

from __future__ import annotations

import os
from pathlib import Path

from autograder import seccomp
from autograder.sandbox.isolation import PIDS_MAX
from autograder.sandbox.stage import Stage


class Level:
    """One isolation level's strategy. Stateless: what one kernel's start holds (its folder, uid, descriptors, the
    environment it was given) is the ``Box``'s, passed to each method."""

    name = ""

    def available(self, machine, reasons: list[str]) -> dict | None:
        """The ``Isolation`` fields this level sets (``bwrap``, ``disable_userns``, ``own_uid``) when ``machine``
        (``probing.Machine``) gives it; else None, with why not appended to ``reasons``."""
        raise NotImplementedError

    def covers(self, cgroups: tuple, disable_userns: bool = False, own_uid: bool = False) -> dict:
        """Category -> how this level contains it (``Isolation.covers``)."""
        raise NotImplementedError

    def missing(self, cgroups: tuple, disable_userns: bool = False) -> tuple:
        """What this level does not contain (``Isolation.missing``)."""
        raise NotImplementedError

    def stage(self, folder: Path, uid: int | None) -> Stage:
        """The folders root binds for the kernel's uid before it starts (none unless the level binds folders)."""
        return Stage()

    def syscall_filter(self) -> seccomp.Loader | None:
        """The syscall filter the kernel's process loads itself before exec; None where the sandbox loads it."""
        return seccomp.Loader()

    def kernel_path(self, box, name: str) -> str:
        """Where the kernel's file ``name`` (a socket) is, as the kernel sees it."""
        raise NotImplementedError

    def client_path(self, box, name: str) -> str:
        """The same file from the grader's side."""
        raise NotImplementedError

    def home(self, box) -> str:
        """The kernel's home, as the kernel sees it."""
        raise NotImplementedError

    def command(self, box, extra_arguments: list[str]) -> list[str]:
        """The kernel's command (sets ``box.env``, the kernel's environment)."""
        raise NotImplementedError

    def popen_kwargs(self, box) -> dict:
        """For Popen, after ``command``."""
        raise NotImplementedError

    def rlimit_nproc(self, box) -> int | None:
        """RLIMIT_NPROC to set between fork and exec, as the kernel's own uid (None: none, or set otherwise)."""
        return None

    def started(self, box, timeout: float) -> None:
        """After the launch: what the level learns from it."""


def nproc(box) -> int | None:
    """The kernel tree's process cap when no pids cgroup caps it."""
    return None if "pids" in box.cgroups.controllers else PIDS_MAX


def limits_described(cgroups: tuple) -> tuple[str, str, str]:
    """How processes, memory and CPU are capped, at every level."""
    processes = f"cgroup pids.max {PIDS_MAX}" if "pids" in cgroups else f"RLIMIT_NPROC {PIDS_MAX}"
    memory = ("cgroup memory limit on the whole tree (incl. /tmp and /dev/shm) and RLIMIT_AS per process"
              if "memory" in cgroups else "RLIMIT_AS per process")
    cpu = ("cgroup CPU quota (cpu.cfs_quota_us): as many cores as the seeds it runs at once; RLIMIT_CPU per process"
           if "cpu" in cgroups else "RLIMIT_CPU per process only (no writable cpu cgroup): not capped in cores")
    return processes, memory, cpu


def missing_at_every_level(cgroups: tuple) -> list[str]:
    """What no level contains without the syscall filter's description or writable cgroups."""
    missing = []
    if seccomp.program() is None:
        missing.append(f"syscall filter (not described for {os.uname().machine})")
    if "memory" not in cgroups:
        missing.append("memory of the whole process tree (no writable memory cgroup)")
    if "cpu" not in cgroups:
        missing.append("CPU share in cores (no writable cpu cgroup)")
    return missing
