"""One kernel's cgroup v1 groups (processes, memory, CPU), and what graders killed with SIGKILL left behind."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
import uuid
from pathlib import Path

from autograder.sandbox.isolation import PIDS_MAX
from autograder.sandbox.uids import is_own_uid, kill_until_gone, pids_of_uid

CONTROLLERS = ("pids", "memory", "cpu", "cpuacct")  # cgroup v1: process, memory and CPU caps; CPU time measured
CPU_PERIOD_US = 100_000  # cpu.cfs_period_us; a kernel's quota is its cores (the seeds it runs at once) × this


def own_cgroup(controller: str) -> Path | None:
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, names, path = line.split(":", 2)
            if controller in names.split(","):
                return Path("/sys/fs/cgroup", controller) / path.lstrip("/")
    except OSError:
        pass
    return None


class Cgroups:
    """One kernel's cgroup v1 groups (pids, memory, cpu, cpuacct) under the grader's own, where writable. ``cpus``:
    the kernel's CPU quota in cores (cpu.cfs_quota_us), the seeds it runs at once: a kernel that starts more busy
    processes shares those cores among them, not a classmate's."""

    def __init__(self, controllers: tuple, memory_bytes: int, cpus: int = 1):
        self.paths: list[Path] = []
        self.controllers: list[str] = []
        self.cpus = max(1, int(cpus))
        name = f"autograder-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        for controller in controllers:
            path = own_cgroup(controller) / name
            try:
                path.mkdir(exist_ok=path in self.paths)  # cpu and cpuacct may be one hierarchy ("cpu,cpuacct")
                if controller == "pids":
                    (path / "pids.max").write_text(str(PIDS_MAX))
                elif controller == "memory":
                    (path / "memory.limit_in_bytes").write_text(str(memory_bytes))
                    self._try_write(path / "memory.swappiness", "0")
                elif controller == "cpu":
                    (path / "cpu.cfs_period_us").write_text(str(CPU_PERIOD_US))
                    (path / "cpu.cfs_quota_us").write_text(str(self.cpus * CPU_PERIOD_US))
                if path not in self.paths:
                    self.paths.append(path)
                self.controllers.append(controller)
            except OSError:
                pass

    @staticmethod
    def _try_write(path: Path, text: str) -> None:
        try:
            path.write_text(text)
        except OSError:
            pass

    def enter(self) -> None:
        """In the child, before exec: move this process (and so all it starts) into the groups."""
        for path in self.paths:
            with open(path / "cgroup.procs", "w") as f:
                f.write(str(os.getpid()))

    def cpu_seconds(self) -> float | None:
        """CPU time of every process that ran in the group so far (user + sys), if a cpuacct group measures it."""
        if "cpuacct" not in self.controllers:
            return None
        try:
            return int((own_cgroup("cpuacct") / self.paths[0].name / "cpuacct.usage").read_text()) / 1e9
        except (OSError, ValueError):
            return None

    def pids(self) -> set[int]:
        found = set()
        for path in self.paths:
            try:
                found |= {int(p) for p in (path / "cgroup.procs").read_text().split()}
            except OSError:
                pass
        return found

    def kill_all(self, timeout: float = 10) -> None:
        kill_until_gone(self.pids, timeout)
        for path in self.paths:
            for _ in range(50):
                try:
                    path.rmdir()
                    break
                except OSError:
                    time.sleep(0.02)


def sweep_stale() -> None:
    """Remove what graders killed with SIGKILL left: their (empty) cgroups and kernel folders, named after the
    grader's pid. Their sandboxes died with them (bwrap's --die-with-parent)."""
    def dead(name: str, prefix: str) -> bool:
        pid = name[len(prefix):].split("-")[0]
        return pid.isdigit() and not os.path.exists(f"/proc/{pid}")

    for controller in CONTROLLERS:
        base = own_cgroup(controller)
        for path in base.glob("autograder-*-*") if base and base.is_dir() else ():
            if dead(path.name, "autograder-"):
                try:
                    path.rmdir()  # fails while a process is in it
                except OSError:
                    pass
    for path in Path(tempfile.gettempdir()).glob("autograder-kernel-*-*"):
        if dead(path.name, "autograder-kernel-"):
            try:
                uid = path.stat().st_uid  # a uid of its own (fallback, or bwrap as root): nothing else runs as it
            except OSError:
                continue
            if os.geteuid() == 0 and is_own_uid(uid):
                for pid in pids_of_uid(uid):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except OSError:
                        pass
            shutil.rmtree(path, ignore_errors=True)
