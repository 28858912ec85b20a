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
from autograder.sandbox.levels import strategy
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


@functools.cache
def probe() -> Isolation:
    """The best level this machine gives (once per process), lowered by AUTOGRADER_ISOLATION."""
    forced = os.environ.get(FORCE_ENV, "")
    if forced and forced not in LEVELS:
        raise IsolationError(f"{FORCE_ENV}={forced!r}: use one of {', '.join(LEVELS)}")
    cgroups = _writable_cgroups() if sys.platform.startswith("linux") else ()
    if sys.platform.startswith("linux"):
        sweep_stale()
    reasons = []
    bwrap = os.environ[BWRAP_ENV] if BWRAP_ENV in os.environ else shutil.which("bwrap") or ""
    if forced in ("fallback", "none"):
        reasons.append(f"{FORCE_ENV}={forced}")
    elif not sys.platform.startswith("linux"):
        reasons.append("not Linux")
    elif not bwrap or not os.access(bwrap, os.X_OK):
        reasons.append("bubblewrap (bwrap) is not installed")
    else:
        disable = not _bwrap_works(bwrap, True)
        if disable or not _bwrap_works(bwrap, False):
            why = _bwrap_works(bwrap, disable, fallback_uid()) if os.geteuid() == 0 else ""
            if not why:
                return Isolation("full", strategy("full").covers(cgroups, disable, os.geteuid() == 0),
                                 strategy("full").missing(cgroups, disable), bwrap=bwrap, disable_userns=disable,
                                 cgroups=cgroups, own_uid=os.geteuid() == 0)
            # as root, the kernel is never root on the host: no full level unless an unprivileged uid can run it
            reasons.append(f"bwrap could not run the interpreter as an unprivileged uid ({why})")
        else:
            reasons.append("bwrap cannot create namespaces here (user namespaces disabled?)")
    if forced != "none" and sys.platform.startswith("linux"):
        why = _fallback_works()
        if not why:
            return Isolation("fallback", strategy("fallback").covers(cgroups), strategy("fallback").missing(cgroups),
                             reason="; ".join(reasons), cgroups=cgroups, own_uid=True)
        reasons.append(why)
    return Isolation("none", strategy("none").covers(cgroups), strategy("none").missing(cgroups),
                     reason="; ".join(reasons), cgroups=cgroups)
