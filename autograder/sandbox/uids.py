"""The kernel's own unprivileged uid (when the grader is root) and the processes of a uid: listing, killing."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from autograder.sandbox.isolation import SLOTS

FALLBACK_UID_BASE = 2_000_000_000  # own uids: this + 2 × the grader's pid + slot (no account uses this range)
FALLBACK_SMALL = 60000  # or this + 2 × (pid % 1000) + slot where only uids below 65536 are mapped


def fallback_uid(slot: int = 0) -> int:
    """A kernel's uid of its own: unique to this grading process and ``slot`` (0 or 1), inside the uid range this
    machine maps."""
    if not 0 <= slot < SLOTS:
        raise ValueError(f"slot must be 0 or 1, got {slot}")
    uid = FALLBACK_UID_BASE + SLOTS * os.getpid() + slot
    try:
        for line in Path("/proc/self/uid_map").read_text().splitlines():
            inside, _, count = map(int, line.split())
            if inside <= uid < inside + count:
                return uid
    except (OSError, ValueError):
        pass
    return FALLBACK_SMALL + SLOTS * (os.getpid() % 1000) + slot  # a remapped container (uids 0-65535)


def is_own_uid(uid: int) -> bool:
    """Whether ``uid`` is one ``fallback_uid`` hands out (never an account's)."""
    return uid >= FALLBACK_UID_BASE or FALLBACK_SMALL <= uid < FALLBACK_SMALL + SLOTS * 1000


def as_uid(uid: int) -> None:
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)


def kill_until_gone(pids, seconds: float) -> None:
    """SIGKILL every process that ``pids()`` lists, again, until none is left or ``seconds`` have passed (a fork
    may land between a listing and its kill)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        found = pids()
        if not found:
            return
        for pid in found:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.02)


def pids_of_uid(uid: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    pids.append(int(entry))
            except OSError:
                pass
    return pids


def alive(pid: int) -> bool:
    """Whether ``pid`` is running (a zombie is not: a PID namespace's init turns zombie only once every process in
    its namespace is gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return False


def tasks_of_own_uid() -> int:
    """Threads of the grader's uid now (RLIMIT_NPROC counts them all at level none)."""
    uid, count = os.getuid(), 0
    for pid in pids_of_uid(uid):
        try:
            count += len(os.listdir(f"/proc/{pid}/task"))
        except OSError:
            pass
    return count
