"""What this machine offers the sandbox (bubblewrap, user namespaces, an unprivileged uid, writable cgroups, the
syscall filter's description), and so the best isolation level it gives (``probe``, once per process)."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from autograder.sandbox.bwrap import namespace_args, python_binds, scratch_mounts, seccomp_fd, system_binds
from autograder.sandbox.cgroups import CONTROLLERS, own_cgroup, sweep_stale
from autograder.sandbox.isolation import BWRAP_ENV, FORCE_ENV, LEVELS, Isolation, IsolationError
from autograder.sandbox.levels import STRATEGIES
from autograder.sandbox.stage import Stage, enter
from autograder.sandbox.uids import as_uid, fallback_uid


def _writable_cgroups() -> tuple:
    found = []
    for controller in CONTROLLERS:
        base = own_cgroup(controller)
        if base is None or not base.is_dir():
            continue
        probe = base / f"autograder-probe-{os.getpid()}"
        try:
            probe.mkdir()
            probe.rmdir()
            found.append(controller)
        except OSError:
            pass
    return tuple(found)


def _bwrap_works(bwrap: str, disable_userns: bool, uid: int | None = None) -> str:
    """'' if bwrap starts with our options, else why not; with ``uid``, whether it does as that uid (the paths it
    cannot reach staged as a kernel's are) and runs the kernel's interpreter and packages under the syscall filter."""
    args = [bwrap, *namespace_args(disable_userns), *system_binds(), *scratch_mounts()]
    stage, fds = Stage(), []
    if uid is None:
        args += ["--", "true"]
    else:  # the kernel's own mounts (its /tmp first, then the interpreter, which may live under /tmp), its view
        folder = Path(tempfile.mkdtemp(prefix=f"autograder-probe-{os.getpid()}-"))
        os.chown(folder, uid, uid)
        stage = Stage(folder, uid)
        args += [*python_binds(stage), "--remount-ro", "/", "--chdir", "/tmp"]
        filter_fd = seccomp_fd(folder)
        if filter_fd is not None:
            fds.append(filter_fd)
            args += ["--seccomp", str(filter_fd)]
        args += ["--", sys.executable, "-c", "import ipykernel"]
    try:
        proc = subprocess.run(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              preexec_fn=None if uid is None else functools.partial(enter, stage, None, uid),
                              pass_fds=fds, timeout=60)
        return "" if proc.returncode == 0 else (proc.stderr.decode(errors="replace").strip()[-300:] or
                                                f"exit code {proc.returncode}")
    except (OSError, subprocess.SubprocessError) as exc:
        return str(exc)
    finally:
        for fd in fds:
            os.close(fd)
        if stage.folder is not None:
            stage.remove()


def _fallback_works() -> str:
    """'' if a process of the fallback uid can run this interpreter, else why not."""
    if os.geteuid() != 0:
        return "the grader is not root, so the kernel cannot get a uid of its own"
    try:
        proc = subprocess.run([sys.executable, "-c", "import ipykernel"], preexec_fn=functools.partial(
            as_uid, fallback_uid()), cwd="/", env={"PATH": os.defpath}, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"a process of an unprivileged uid could not be started ({exc})"
    if proc.returncode != 0:
        return (f"an unprivileged uid cannot run {sys.executable} and its packages: make the interpreter and the "
                "environment world-readable")
    return ""


class Machine:
    """What this machine offers, for each level's ``available``: the platform, the writable cgroups and the bwrap
    binary (found once), and the probes that start a process (run when a level asks)."""

    def __init__(self, cgroups: tuple):
        self.linux = sys.platform.startswith("linux")
        self.cgroups = cgroups
        self.bwrap = os.environ[BWRAP_ENV] if BWRAP_ENV in os.environ else shutil.which("bwrap") or ""

    bwrap_works = staticmethod(_bwrap_works)
    fallback_works = staticmethod(_fallback_works)


@functools.cache
def probe() -> Isolation:
    """The best level this machine gives (once per process), lowered by AUTOGRADER_ISOLATION: each level's strategy,
    best first, says whether the machine gives it, and why not."""
    forced = os.environ.get(FORCE_ENV, "")
    if forced and forced not in LEVELS:
        raise IsolationError(f"{FORCE_ENV}={forced!r}: use one of {', '.join(LEVELS)}")
    cgroups = _writable_cgroups() if sys.platform.startswith("linux") else ()
    if sys.platform.startswith("linux"):
        sweep_stale()
    machine = Machine(cgroups)
    reasons = [f"{FORCE_ENV}={forced}"] if forced in ("fallback", "none") else []
    for level in STRATEGIES.values():  # best first; the last (none) is always available
        if forced and LEVELS.index(level.name) > LEVELS.index(forced):
            continue
        found = level.available(machine, reasons)
        if found is not None:
            disable = found.get("disable_userns", False)
            return Isolation(level.name, level.covers(cgroups, disable, found.get("own_uid", False)),
                             level.missing(cgroups, disable), reason="; ".join(reasons), cgroups=cgroups, **found)
    raise IsolationError("no isolation level is available")  # (none always is)
