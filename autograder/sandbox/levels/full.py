"""Level ``full`` (bubblewrap): an empty read-only root with read-only binds of only what the kernel needs, every
namespace unshared, no network; the grader reaches the kernel's sockets through ``/proc/<pid>/root``, and killing
the sandbox's PID 1 kills everything the kernel started."""

from __future__ import annotations

import json
import os
import select
import sys
import time
from pathlib import Path

from autograder import seccomp
from autograder.sandbox import bwrap
from autograder.sandbox.caches import font_lists
from autograder.sandbox.isolation import INSIDE_RUN, SANDBOX_UID, SHM_MB, TMP_MB
from autograder.sandbox.kernel import kernel_env, launcher
from autograder.sandbox.levels.base import Level, limits_described, missing_at_every_level, nproc
from autograder.sandbox.stage import Stage
from autograder.sandbox.uids import fallback_uid


class Full(Level):
    name = "full"

    def available(self, machine, reasons: list[str]) -> dict | None:
        if not machine.linux:
            reasons.append("not Linux")
        elif not machine.bwrap or not os.access(machine.bwrap, os.X_OK):
            reasons.append("bubblewrap (bwrap) is not installed")
        else:
            bwrap_path = machine.bwrap
            disable = not machine.bwrap_works(bwrap_path, True)
            if disable or not machine.bwrap_works(bwrap_path, False):
                why = machine.bwrap_works(bwrap_path, disable, fallback_uid()) if os.geteuid() == 0 else ""
                if not why:
                    return {"bwrap": bwrap_path, "disable_userns": disable, "own_uid": os.geteuid() == 0}
                # as root, the kernel is never root on the host: no full level unless an unprivileged uid can run it
                reasons.append(f"bwrap could not run the interpreter as an unprivileged uid ({why})")
            else:
                reasons.append("bwrap cannot create namespaces here (user namespaces disabled?)")
        return None

    def covers(self, cgroups: tuple, disable_userns: bool = False, own_uid: bool = False) -> dict:
        processes, memory, cpu = limits_described(cgroups)
        outside = "an unprivileged uid of its own outside" if own_uid else "the grader's own uid outside (not root)"
        return {
            "filesystem": "empty read-only root; read-only binds of the interpreter, its packages, /usr and the "
                          "visible folders only",
            "network": "none (own network namespace)",
            "processes": f"own PID namespace, all killed with the sandbox; {processes}",
            "memory": memory,
            "cpu": cpu,
            "scratch": f"private /tmp ({TMP_MB} MB) and /dev/shm ({SHM_MB} MB), gone with the sandbox",
            "privileges": f"uid {SANDBOX_UID} inside, {outside}, no capabilities" +
                          (", no new user namespaces" if disable_userns else ""),
            "kernel interfaces": "/proc read-only (sysctls included)" + (
                f"; {seccomp.describe()}" if seccomp.describe() else ""),
            "environment": "allow-list",
        }

    def missing(self, cgroups: tuple, disable_userns: bool = False) -> tuple:
        return tuple([*missing_at_every_level(cgroups),
                      *([] if disable_userns else ["nested user namespaces (bwrap without --disable-userns)"])])

    def stage(self, folder: Path, uid: int | None) -> Stage:
        return Stage(folder, uid)

    def syscall_filter(self) -> None:
        return None  # bwrap loads it (``--seccomp``)

    def kernel_path(self, box, name: str) -> str:
        return f"{INSIDE_RUN}/{name}"

    def client_path(self, box, name: str) -> str:
        return f"/proc/{box.child_pid}/root{INSIDE_RUN}/{name}"

    def home(self, box) -> str:
        return "/tmp"

    def command(self, box, extra_arguments: list[str]) -> list[str]:
        limit = nproc(box)
        box.env = kernel_env("/tmp", "/grading")
        args = [box.isolation.bwrap, *bwrap.namespace_args(box.isolation.disable_userns), *bwrap.system_binds(),
                *bwrap.scratch_mounts(), *bwrap.python_binds(box.stage)]
        for name in ("ld.so.cache", "fonts"):
            args += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
        for path in font_lists():  # matplotlib's font list: the grader's, read-only
            args += ["--ro-bind-try", box.stage.source(path), f"{box.env['MPLCONFIGDIR']}/{path.name}"]
        args += bwrap.passwd_files(box.folder)
        if box.uid is not None:  # bwrap runs as the kernel's own uid: what it binds from the folder is that uid's
            for name in ("passwd", "group", "kernel.json"):
                os.chown(box.folder / name, box.uid, box.uid)
        for name, path in box.visible.items():
            args += ["--ro-bind", box.stage.source(path), f"/grading/{name}"]
        args += ["--ro-bind", box.connection_file, f"{INSIDE_RUN}/kernel.json",
                 "--remount-ro", "/", "--chdir", "/tmp"]
        filter_fd = bwrap.seccomp_fd(box.folder)
        if filter_fd is not None:
            box.filter_fd = filter_fd
            args += ["--seccomp", str(filter_fd)]
        for key, value in box.env.items():
            args += ["--setenv", key, value]
        box.info_read, box.info_write = os.pipe()
        args += ["--info-fd", str(box.info_write)]
        return [*args, "--", sys.executable, *launcher(limit), "-f", f"{INSIDE_RUN}/kernel.json", *extra_arguments]

    def popen_kwargs(self, box) -> dict:
        """bwrap gets a bare environment (it sets the kernel's) and the descriptors of its info pipe and filter."""
        return {"env": {"PATH": os.defpath}, "cwd": str(box.folder),
                "pass_fds": tuple(fd for fd in (box.info_write, box.filter_fd) if fd >= 0)}

    def started(self, box, timeout: float) -> None:
        """Read the sandbox's PID 1 from bwrap's info pipe."""
        os.close(box.info_write)
        box.info_write = -1
        data, end = b"", time.monotonic() + timeout
        try:
            while b"}" not in data and time.monotonic() < end:
                ready, _, _ = select.select([box.info_read], [], [], max(0.0, end - time.monotonic()))
                chunk = os.read(box.info_read, 4096) if ready else b""
                if not chunk:
                    break
                data += chunk
        finally:
            os.close(box.info_read)
            box.info_read = -1
        try:
            box.child_pid = int(json.loads(data)["child-pid"])
        except (ValueError, KeyError) as exc:
            raise RuntimeError(f"the sandbox did not start (bwrap said {data!r})") from exc
