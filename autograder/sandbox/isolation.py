"""The isolation record (the level in force, what it covers and what not), the minimum a course requires, and the
constants the sandbox's modules share."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

LEVELS = ("none", "fallback", "full")
FORCE_ENV, BWRAP_ENV = "AUTOGRADER_ISOLATION", "AUTOGRADER_BWRAP"
SANDBOX_UID = 65534  # the kernel's uid and gid inside the namespaces ("nobody")
PIDS_MAX = 128  # processes and threads of one kernel's whole tree (a grading kernel uses ~20 with 2 forked seeds)
TMP_MB, SHM_MB, RUN_KB = 256, 64, 256  # the kernel's private /tmp (home, working folder), /dev/shm, socket folder
SLOTS = 2  # kernels one grading process may run at once: the student's, and the next one's starting
INSIDE_RUN = "/run/kernel"  # inside the sandbox: the connection file and the kernel's Unix sockets
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")

INSTALL = ("install bubblewrap (Debian/Ubuntu: `apt-get install bubblewrap`) and allow unprivileged user namespaces "
           "(Ubuntu 24.04: `sysctl kernel.apparmor_restrict_unprivileged_userns=0`; Docker: run privileged or with a "
           "seccomp profile that allows clone(CLONE_NEWUSER)), or run the grader as root for the fallback level")


class IsolationError(RuntimeError):
    """The isolation level in force is below the minimum course.toml requires: student code is not run."""


@dataclass(frozen=True)
class Isolation:
    level: str  # "full", "fallback" or "none"
    covers: dict = field(default_factory=dict)  # category -> how it is contained
    missing: tuple = ()  # what this level does not contain
    reason: str = ""  # why the level is not higher
    bwrap: str = ""
    disable_userns: bool = False
    cgroups: tuple = ()  # writable cgroup v1 hierarchies of cgroups.CONTROLLERS
    own_uid: bool = False  # grader is root: the kernel (full: bwrap) runs as an unprivileged uid of its own

    def as_dict(self) -> dict:
        return {"level": self.level, "covers": dict(self.covers), "missing": list(self.missing),
                **({"reason": self.reason} if self.reason else {})}

    def at_least(self, minimum: str) -> bool:
        return LEVELS.index(self.level) >= LEVELS.index(minimum)


def require(isolation: Isolation, minimum: str) -> None:
    """Raise IsolationError (with what to install) when ``isolation`` is below ``minimum``, and as root at level
    none, where the kernel would be root on the host."""
    if not isolation.at_least(minimum):
        raise IsolationError(
            f"the sandbox for student code is at level {isolation.level!r} on this machine "
            f"({isolation.reason or 'forced'}), below course.toml's min_isolation = {minimum!r}, so no student code "
            f"was run. To get level 'full', {INSTALL}.")
    if isolation.level == "none" and os.geteuid() == 0:
        raise IsolationError(
            "the grader is root and no unprivileged uid can run the kernel here "
            f"({isolation.reason or 'forced'}), so no student code was run: a kernel never runs as root on the host. "
            "Make the interpreter and its environment readable by other users (not under a 0700 home such as "
            "/root), or install bubblewrap for level 'full'.")
