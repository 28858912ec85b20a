"""One kernel's box: its folder, cgroups, uid and command (its level's strategy, ``levels/``), and the kill that
leaves nothing."""

from __future__ import annotations

import os
import resource
import shutil
import signal
import stat
import tempfile
import time
from pathlib import Path

from autograder.sandbox.cgroups import Cgroups
from autograder.sandbox.isolation import Isolation
from autograder.sandbox.levels import strategy
from autograder.sandbox.uids import alive, as_uid, fallback_uid, kill_until_gone, pids_of_uid


class Box:
    """Everything one kernel start needs: its folder, its cgroups, its command, and the kill that leaves nothing."""

    def __init__(self, isolation: Isolation, limits, visible: dict[str, Path], slot: int = 0, cpus: int = 1):
        self.isolation, self.limits = isolation, limits
        self.level = strategy(isolation.level)
        self.visible = {name: Path(path).resolve() for name, path in visible.items()}
        self.folder = Path(tempfile.mkdtemp(prefix=f"autograder-kernel-{os.getpid()}-"))  # 0700, the grader's
        self.cgroups = Cgroups(isolation.cgroups, int(limits.memory_mb) << 20, cpus)
        # the grader is root: the kernel's (fallback) or bwrap's (full) uid is an unprivileged one of its own
        self.uid = fallback_uid(slot) if isolation.own_uid else None
        self.host_uid = os.geteuid() if self.uid is None else self.uid  # what the kernel's processes are outside
        self.stage = self.level.stage(self.folder, self.uid)
        self.filter = self.level.syscall_filter()  # None where the sandbox loads it (full: bwrap)
        self.child_pid = 0  # full: the sandbox's PID 1, whose /proc/<pid>/root is the sandbox's filesystem
        self.info_read = self.info_write = self.filter_fd = -1  # full: bwrap's info pipe, its filter's descriptor
        self._sockets: dict[int, int] = {}  # port -> descriptor of the kernel's socket file (``socket``)
        if self.uid is not None:
            os.chown(self.folder, self.uid, self.uid)

    # what the kernel manager needs
    @property
    def connection_file(self) -> str:
        return str(self.folder / "kernel.json")

    @property
    def kernel_ip(self) -> str:
        """The ipc socket prefix written into the connection file (the kernel's view)."""
        return self.level.kernel_path(self, "ipc")

    def client_ip(self) -> str:
        """The same sockets from the grader's side."""
        return self.level.client_path(self, "ipc")

    def paths(self, name: str) -> tuple[str, str]:
        """The kernel's file ``name`` (a socket it listens on): (its own path, the grader's path to it)."""
        return self.level.kernel_path(self, name), self.level.client_path(self, name)

    def socket(self, port: int, timeout: float = 60) -> str:
        """The path the grader connects to for the kernel's socket ``port``: the socket file pinned by a descriptor at
        the first connection, during the kernel's start, before any student code runs (``/proc/self/fd/<n>``). The
        kernel can write the folder its sockets are in; a symlink it put there later would be followed in the
        grader's filesystem (another kernel's socket, a listener of its own) when ZeroMQ reconnects."""
        if port not in self._sockets:
            path, end = f"{self.client_ip()}-{port}", time.monotonic() + timeout
            while True:
                try:
                    fd = os.open(path, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
                    break
                except FileNotFoundError:
                    if time.monotonic() > end or (self.child_pid and not alive(self.child_pid)):
                        raise RuntimeError(f"the kernel did not make its socket {path}") from None
                    time.sleep(0.005)
            if not stat.S_ISSOCK(os.fstat(fd).st_mode):
                os.close(fd)
                raise RuntimeError(f"the kernel's {path} is not a socket")
            self._sockets[port] = fd
        return f"/proc/self/fd/{self._sockets[port]}"

    def command(self, extra_arguments: list[str]) -> list[str]:
        return self.level.command(self, extra_arguments)

    def popen_kwargs(self) -> dict:
        """For Popen, after ``command``: bwrap gets a bare environment (it sets the kernel's), other levels the
        kernel's allow-list."""
        return self.level.popen_kwargs(self)

    def preexec(self) -> None:
        """In the kernel's (or bwrap's) process, between fork and exec: staged binds, cgroups, rlimits, the uid, and
        below level full the syscall filter (at full, bwrap loads it)."""
        self.stage.mount()
        self.cgroups.enter()
        memory = int(self.limits.memory_mb) << 20
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        cpu = int(self.limits.cpu_seconds)
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 << 20, 64 << 20))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if self.uid is not None:
            nproc = self.level.rlimit_nproc(self)
            if nproc is not None:
                resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
            as_uid(self.uid)
        if self.filter is not None:
            self.filter.load()

    def started(self, timeout: float = 30) -> None:
        """After the launch (full level): read the sandbox's PID 1 from bwrap's info pipe."""
        self.level.started(self, timeout)

    def kill(self, pid: int) -> None:
        """Kill the kernel (``pid``: its process group's leader; 0 if none started) and everything it started; return
        when they are gone."""
        if pid > 0:  # (killpg(0) is the grader's own group)
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if self.child_pid:  # bwrap's --die-with-parent takes the PID namespace down with its PID 1; wait for that
            end = time.monotonic() + 10
            while alive(self.child_pid) and time.monotonic() < end:
                try:
                    os.kill(self.child_pid, signal.SIGKILL)
                except OSError:
                    pass
                time.sleep(0.005)
        if self.uid is not None:
            # (a zombie is gone: bwrap's or the kernel's, which the kernel manager reaps)
            kill_until_gone(lambda: [p for p in pids_of_uid(self.uid) if alive(p)], 2.0)
        for p in self.cgroups.pids():
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass

    def close(self) -> None:
        """After the last kill: remove the cgroups, the folder and (fallback) the uid's files in shared scratch."""
        for fd in (self.info_read, self.info_write, self.filter_fd, *self._sockets.values()):
            if fd >= 0:
                os.close(fd)
        self.info_read = self.info_write = self.filter_fd = -1
        self._sockets = {}
        self.cgroups.kill_all()
        shutil.rmtree(self.folder, ignore_errors=True)
        if self.uid is not None:
            for shared in ("/tmp", "/var/tmp", "/dev/shm"):
                try:
                    entries = list(os.scandir(shared))
                except OSError:
                    continue
                for entry in entries:
                    try:
                        if entry.stat(follow_symlinks=False).st_uid != self.uid:
                            continue
                        if entry.is_dir(follow_symlinks=False):
                            shutil.rmtree(entry.path, ignore_errors=True)
                        else:
                            os.unlink(entry.path)
                    except OSError:
                        pass
