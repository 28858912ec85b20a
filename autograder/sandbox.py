"""A filesystem jail for the notebook's process, built from Linux namespaces (no extra tools, no image).

Between fork and exec, the kernel's process gets its own mount namespace in which the whole root filesystem is
read-only, the instructor's ``source/`` (the reference solutions) is covered by an empty tmpfs, and only the kernel's
temporary directory is writable. It then moves into a new user namespace: the mounts it inherited become locked, so even
as "root" in there it can neither remount them writable nor uncover ``source/``. A student's code can therefore not
read the reference from disk, nor change the grader, other students' results or anything else on the machine.

Where the kernel does not allow namespaces (an unprivileged container), ``available()`` is False and kernels run
without the jail; the results say so (``extra_data.sandbox``).
"""

from __future__ import annotations

import ctypes
import functools
import os
import subprocess
import sys

CLONE_NEWNS, CLONE_NEWUSER = 0x00020000, 0x10000000
MS_RDONLY, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 32, 4096, 16384, 1 << 18

_libc = ctypes.CDLL(None, use_errno=True)


def _call(rc: int, what: str) -> None:
    if rc != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    enc = lambda s: s.encode() if s is not None else None  # noqa: E731
    _call(_libc.mount(enc(source), enc(target), enc(fstype), flags, enc(data)), f"mount {target}")


def enter(hidden: list[str], writable: list[str]) -> None:
    """Jail the calling process (call it between fork and exec). Raises OSError if the kernel refuses."""
    uid, gid = os.getuid(), os.getgid()
    _call(_libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    for path in writable:  # bind before the root goes read-only: a bind copies its source's flags
        _mount(path, path, None, MS_BIND)
    for path in hidden:
        if os.path.isdir(path):
            _mount("tmpfs", path, "tmpfs", MS_RDONLY, "size=4k,mode=555")
    _mount(None, "/", None, MS_REMOUNT | MS_BIND | MS_RDONLY)
    _call(_libc.unshare(CLONE_NEWUSER | CLONE_NEWNS), "unshare(CLONE_NEWUSER)")
    for name, text in (("setgroups", "deny"), ("uid_map", f"0 {uid} 1"), ("gid_map", f"0 {gid} 1")):
        with open(f"/proc/self/{name}", "w") as f:
            f.write(text)


@functools.cache
def available() -> bool:
    """Whether this machine lets us build the jail (tried once, in a throwaway child)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        proc = subprocess.run(["true"], preexec_fn=functools.partial(enter, [], []), timeout=30)
    except (OSError, subprocess.SubprocessError):
        return False
    return proc.returncode == 0
