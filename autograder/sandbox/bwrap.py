"""bubblewrap's command line: the namespaces, the read-only binds of the system and the interpreter, the kernel's
private scratch mounts, its /etc/passwd, and the syscall filter bwrap loads."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from autograder import seccomp
from autograder.sandbox.isolation import INSIDE_RUN, RUN_KB, SANDBOX_UID, SHM_MB, TMP_MB
from autograder.sandbox.stage import Stage

def namespace_args(disable_userns: bool) -> list[str]:
    args = ["--unshare-all", "--unshare-user", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID),
            "--hostname", "sandbox", "--die-with-parent", "--new-session", "--cap-drop", "ALL", "--clearenv"]
    return args + (["--disable-userns"] if disable_userns else [])


def system_binds() -> list[str]:
    """/usr read-only, and the top-level folders that are symlinks into it (/bin, /lib, /lib64 on Debian 12)."""
    args = ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = Path("/", name)
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    return args


def scratch_mounts() -> list[str]:
    """The sandbox's own /proc (read-only: sysctls such as kernel.core_pattern are the host's), /dev and size-capped
    tmpfs: mounted before any bind, so that binds of host folders
    under /tmp (a venv in a temporary folder, pytest's) land on the private /tmp instead of being hidden by it."""
    return ["--proc", "/proc", "--remount-ro", "/proc", "--dev", "/dev",
            "--size", str(TMP_MB << 20), "--tmpfs", "/tmp",
            "--size", str(SHM_MB << 20), "--tmpfs", "/dev/shm",
            "--size", str(RUN_KB << 10), "--tmpfs", INSIDE_RUN]


def python_folders() -> list[Path]:
    """The interpreter's folders bound at their own paths (besides /usr): its prefix (its real prefix too, when the
    venv's python is a symlink to it) and its site-packages."""
    paths = {Path(sys.prefix), Path(sys.base_prefix), Path(os.path.realpath(sys.executable)).parent.parent}
    paths |= {Path(p) for p in sys.path if p.endswith(("site-packages", "dist-packages")) and os.path.isdir(p)}
    keep = sorted(p for p in paths if p.is_dir() and not any(q != p and q in p.parents for q in paths))
    return [path for path in keep if path != Path("/usr") and Path("/usr") not in path.parents]


def needs(said: str) -> str:
    """What a kernel that could not start needed, from what its process said: the interpreter's paths, the folders
    the sandbox bound for it."""
    if "execvp" not in said and "No such file" not in said and "Permission denied" not in said:
        return ""
    real = os.path.realpath(sys.executable)
    return (f". The kernel runs {sys.executable}" + (f" (really {real})" if real != sys.executable else "") +
            "; the sandbox bound for it: " + ", ".join(map(str, python_folders())) +
            ". A venv made from a symlinked interpreter needs the interpreter's real folder among them")


def python_binds(stage: Stage) -> list[str]:
    return [arg for path in python_folders() for arg in ("--ro-bind", stage.source(path), str(path))]


def passwd_files(folder: Path) -> list[str]:
    (folder / "passwd").write_text(f"student:x:{SANDBOX_UID}:{SANDBOX_UID}:student:/tmp:/usr/sbin/nologin\n")
    (folder / "group").write_text(f"student:x:{SANDBOX_UID}:\n")
    return ["--ro-bind", str(folder / "passwd"), "/etc/passwd", "--ro-bind", str(folder / "group"), "/etc/group"]


def seccomp_fd(folder: Path) -> int | None:
    """A file descriptor of the kernel's syscall filter, for ``bwrap --seccomp`` (None where none is described)."""
    program = seccomp.program()
    if program is None:
        return None
    path = folder / "seccomp.bpf"
    path.write_bytes(program)
    return os.open(path, os.O_RDONLY)
