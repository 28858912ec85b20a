"""The student's kernel in a default-deny sandbox: it sees only what it needs, and nothing it starts outlives it.

Three levels, probed once per grading process and named in results.json (``extra_data.isolation``):

``full`` (bubblewrap, ``bwrap``; works for root and for ordinary users where user namespaces are allowed)
    An empty tmpfs root, made read-only, with read-only binds of only: ``/usr`` (``/bin``, ``/lib``... as their
    symlinks), the interpreter's prefix, its site-packages, ``/etc/ld.so.cache``, a generated ``/etc/passwd``, the
    ``visible`` folders at ``/grading/<name>`` (the kernel's ``PYTHONPATH``), the kernel's connection file and the
    grader's matplotlib font list (``font_lists``; below level full, the kernel gets a copy in its home). A
    private, size-capped ``/tmp`` (its home and working folder; mounted before the binds, so an interpreter that lives
    under the host's /tmp stays bound there, read-only) and ``/dev/shm``, its own ``/proc`` and ``/dev``.
    Every namespace unshared (mount, PID, network, IPC, UTS, cgroup, user): no network at all, the grader talks to
    the kernel over Unix sockets (ZeroMQ ``ipc``) reached through ``/proc/<pid>/root``. uid 65534 inside, no
    capabilities, no new user namespaces, an environment made from an allow-list. Killing the sandbox kills its PID
    namespace: no process of the submission survives, whatever ``setsid`` or double fork it used.
``fallback`` (no usable namespaces, grader is root: e.g. Gradescope's Docker image)
    The kernel runs as its own unprivileged uid (one per grading process, unused by anyone else), in a private
    0700 folder, with the environment allow-list and rlimits including a process count. Grader-only files must be
    owner-only (mode 0700/0600, owned by root): the deployment rule this level relies on. At the end every process
    of that uid is killed and its files in ``/tmp``, ``/var/tmp`` and ``/dev/shm`` are removed.
``none`` (no namespaces and not root)
    rlimits and the process group only: the kernel can read whatever the grader's user can.

At every level, cgroup v1 ``pids`` and ``memory`` hierarchies that the grader may write (root here) cap the whole
tree's processes and memory, and are swept at the end. ``AUTOGRADER_ISOLATION=fallback|none`` forces a lower level
and ``AUTOGRADER_BWRAP`` names the bwrap binary (tests; an empty value means "not installed").
"""

from __future__ import annotations

import functools
import hashlib
import ctypes
import importlib.util
import json
import os
import resource
import select
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from autograder import seccomp

LEVELS = ("none", "fallback", "full")
FORCE_ENV, BWRAP_ENV = "AUTOGRADER_ISOLATION", "AUTOGRADER_BWRAP"
SANDBOX_UID = 65534  # the kernel's uid and gid inside the namespaces ("nobody")
PIDS_MAX = 128  # processes and threads of one kernel's whole tree (a grading kernel uses ~20 with 2 forked seeds)
TMP_MB, SHM_MB, RUN_KB = 256, 64, 256  # the kernel's private /tmp (home, working folder), /dev/shm, socket folder
FALLBACK_UID_BASE = 2_000_000_000  # own uids: this + 2 × the grader's pid + slot (no account uses this range)
FALLBACK_SMALL = 60000  # or this + 2 × (pid % 1000) + slot where only uids below 65536 are mapped
CONTROLLERS = ("pids", "memory", "cpu", "cpuacct")  # cgroup v1: process, memory and CPU caps; CPU time measured
CPU_PERIOD_US = 100_000  # cpu.cfs_period_us; a kernel's quota is its cores (the seeds it runs at once) × this
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
    cgroups: tuple = ()  # writable cgroup v1 hierarchies of CONTROLLERS
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


# --- probing --------------------------------------------------------------------------------------------------------

def _own_cgroup(controller: str) -> Path | None:
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, names, path = line.split(":", 2)
            if controller in names.split(","):
                return Path("/sys/fs/cgroup", controller) / path.lstrip("/")
    except OSError:
        pass
    return None


def _writable_cgroups() -> tuple:
    found = []
    for controller in CONTROLLERS:
        base = _own_cgroup(controller)
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
    args = [bwrap, *_namespace_args(disable_userns), *_system_binds(), *_scratch_mounts()]
    stage, fds = Stage(), []
    if uid is None:
        args += ["--", "true"]
    else:  # the kernel's own mounts (its /tmp first, then the interpreter, which may live under /tmp), its view
        folder = Path(tempfile.mkdtemp(prefix=f"autograder-probe-{os.getpid()}-"))
        os.chown(folder, uid, uid)
        stage = Stage(folder, uid)
        args += [*_python_binds(stage), "--remount-ro", "/", "--chdir", "/tmp"]
        filter_fd = _seccomp_fd(folder)
        if filter_fd is not None:
            fds.append(filter_fd)
            args += ["--seccomp", str(filter_fd)]
        args += ["--", sys.executable, "-c", "import ipykernel"]
    try:
        proc = subprocess.run(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              preexec_fn=None if uid is None else functools.partial(_enter, stage, None, uid),
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


def _is_own_uid(uid: int) -> bool:
    """Whether ``uid`` is one ``fallback_uid`` hands out (never an account's)."""
    return uid >= FALLBACK_UID_BASE or FALLBACK_SMALL <= uid < FALLBACK_SMALL + SLOTS * 1000


def _as_uid(uid: int) -> None:
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)


_libc = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None
CLONE_NEWNS, MS_BIND, MS_REC, MS_PRIVATE = 0x00020000, 4096, 16384, 1 << 18


def _reachable(path: Path, uid: int) -> bool:
    """Whether a process of ``uid`` (no groups) can look up ``path``: every folder above it lets it search."""
    for folder in reversed(Path(path).parents):
        try:
            info = os.stat(folder)
        except OSError:
            return False
        if not info.st_mode & (0o100 if info.st_uid == uid else 0o001):
            return False
    return True


class Stage:
    """Folders a kernel's unprivileged uid cannot look up (an interpreter under root's 0700 home): bound, by root, in
    a mount namespace of bwrap's own, at ``<folder>/stage/<n>``, from where bwrap (as that uid) binds them at their
    own paths. Nothing changes in the host's mounts: the namespace goes with bwrap."""

    def __init__(self, folder: Path | None = None, uid: int | None = None):
        self.folder, self.uid = folder, uid
        self.pairs: list[tuple[str, str]] = []  # (host folder, staged path)

    def source(self, path: Path | str) -> str:
        """The path bwrap should bind ``path`` from."""
        if self.uid is None or _reachable(Path(path), self.uid):
            return str(path)
        for host, staged in self.pairs:
            if host == str(path):
                return staged
        staged = self.folder / "stage" / str(len(self.pairs))
        staged.mkdir(parents=True)
        os.chmod(staged.parent, 0o755)
        self.pairs.append((str(path), str(staged)))
        return str(staged)

    def mount(self) -> None:
        """In bwrap's process, as root, before the uid changes: its own mount namespace, the staged binds."""
        if not self.pairs:
            return
        if _libc.unshare(CLONE_NEWNS) != 0 or _libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None) != 0:
            raise OSError(ctypes.get_errno(), "a mount namespace for the kernel's staged folders")
        for host, staged in self.pairs:
            if _libc.mount(host.encode(), staged.encode(), None, MS_BIND | MS_REC, None) != 0:
                raise OSError(ctypes.get_errno(), f"binding {host} for the kernel's uid")

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def _enter(stage: Stage, cgroups, uid: int | None) -> None:
    """Between fork and exec of bwrap (or a kernel): staged binds, cgroups, then the unprivileged uid."""
    stage.mount()
    if cgroups is not None:
        cgroups.enter()
    if uid is not None:
        _as_uid(uid)


def _seccomp_fd(folder: Path) -> int | None:
    """A file descriptor of the kernel's syscall filter, for ``bwrap --seccomp`` (None where none is described)."""
    program = seccomp.program()
    if program is None:
        return None
    path = folder / "seccomp.bpf"
    path.write_bytes(program)
    return os.open(path, os.O_RDONLY)


def _fallback_works() -> str:
    """'' if a process of the fallback uid can run this interpreter, else why not."""
    if os.geteuid() != 0:
        return "the grader is not root, so the kernel cannot get a uid of its own"
    try:
        proc = subprocess.run([sys.executable, "-c", "import ipykernel"], preexec_fn=functools.partial(
            _as_uid, fallback_uid()), cwd="/", env={"PATH": os.defpath}, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"a process of an unprivileged uid could not be started ({exc})"
    if proc.returncode != 0:
        return (f"an unprivileged uid cannot run {sys.executable} and its packages: make the interpreter and the "
                "environment world-readable")
    return ""


def sweep_stale() -> None:
    """Remove what graders killed with SIGKILL left: their (empty) cgroups and kernel folders, named after the
    grader's pid. Their sandboxes died with them (bwrap's --die-with-parent)."""
    def dead(name: str, prefix: str) -> bool:
        pid = name[len(prefix):].split("-")[0]
        return pid.isdigit() and not os.path.exists(f"/proc/{pid}")

    for controller in CONTROLLERS:
        base = _own_cgroup(controller)
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
            if os.geteuid() == 0 and _is_own_uid(uid):
                for pid in _pids_of_uid(uid):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except OSError:
                        pass
            shutil.rmtree(path, ignore_errors=True)


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
                return Isolation("full", _covers("full", cgroups, disable, os.geteuid() == 0),
                                 _missing("full", cgroups, disable), bwrap=bwrap, disable_userns=disable,
                                 cgroups=cgroups, own_uid=os.geteuid() == 0)
            # as root, the kernel is never root on the host: no full level unless an unprivileged uid can run it
            reasons.append(f"bwrap could not run the interpreter as an unprivileged uid ({why})")
        else:
            reasons.append("bwrap cannot create namespaces here (user namespaces disabled?)")
    if forced != "none" and sys.platform.startswith("linux"):
        why = _fallback_works()
        if not why:
            return Isolation("fallback", _covers("fallback", cgroups), _missing("fallback", cgroups),
                             reason="; ".join(reasons), cgroups=cgroups, own_uid=True)
        reasons.append(why)
    return Isolation("none", _covers("none", cgroups), _missing("none", cgroups), reason="; ".join(reasons),
                     cgroups=cgroups)


def _covers(level: str, cgroups: tuple, disable_userns: bool = False, own_uid: bool = False) -> dict:
    processes = f"cgroup pids.max {PIDS_MAX}" if "pids" in cgroups else f"RLIMIT_NPROC {PIDS_MAX}"
    memory = ("cgroup memory limit on the whole tree (incl. /tmp and /dev/shm) and RLIMIT_AS per process"
              if "memory" in cgroups else "RLIMIT_AS per process")
    cpu = ("cgroup CPU quota (cpu.cfs_quota_us): as many cores as the seeds it runs at once; RLIMIT_CPU per process"
           if "cpu" in cgroups else "RLIMIT_CPU per process only (no writable cpu cgroup): not capped in cores")
    outside = "an unprivileged uid of its own outside" if own_uid else "the grader's own uid outside (not root)"
    if level == "full":
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
    if level == "fallback":
        return {
            "filesystem": "own unprivileged uid: reads only world-readable files (grader-only files must be "
                          "owner-only)",
            "processes": f"every process of the kernel's uid killed at the end; {processes}",
            "memory": memory,
            "cpu": cpu,
            "scratch": "private 0700 folder; the uid's files in /tmp, /var/tmp and /dev/shm removed at the end",
            "privileges": "an unprivileged uid of its own",
            "kernel interfaces": "an unprivileged uid's: no sysctl or core_pattern writes" + (
                f"; {seccomp.describe()}" if seccomp.describe() else ""),
            "environment": "allow-list",
        }
    return {"processes": f"process group killed at the end; {processes}", "memory": memory, "cpu": cpu,
            "privileges": "the grader's own uid (never root: as root, no student code runs at this level)",
            "kernel interfaces": seccomp.describe() or "the grader's user's", "environment": "allow-list"}


def _missing(level: str, cgroups: tuple, disable_userns: bool = False) -> tuple:
    missing = []
    if level != "full":
        missing += ["network", "PID namespace"] + (["filesystem"] if level == "none" else [])
    if level == "none":
        missing += ["scratch size"] + ([] if "pids" in cgroups else ["processes started in a new session"])
    if seccomp.program() is None:
        missing.append(f"syscall filter (not described for {os.uname().machine})")
    if "memory" not in cgroups:
        missing.append("memory of the whole process tree (no writable memory cgroup)")
    if "cpu" not in cgroups:
        missing.append("CPU share in cores (no writable cpu cgroup)")
    if level == "full" and not disable_userns:
        missing.append("nested user namespaces (bwrap without --disable-userns)")
    return tuple(missing)


# --- the bwrap command ----------------------------------------------------------------------------------------------

def _namespace_args(disable_userns: bool) -> list[str]:
    args = ["--unshare-all", "--unshare-user", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID),
            "--hostname", "sandbox", "--die-with-parent", "--new-session", "--cap-drop", "ALL", "--clearenv"]
    return args + (["--disable-userns"] if disable_userns else [])


def _system_binds() -> list[str]:
    """/usr read-only, and the top-level folders that are symlinks into it (/bin, /lib, /lib64 on Debian 12)."""
    args = ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = Path("/", name)
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    return args


def _scratch_mounts() -> list[str]:
    """The sandbox's own /proc (read-only: sysctls such as kernel.core_pattern are the host's), /dev and size-capped
    tmpfs: mounted before any bind, so that binds of host folders
    under /tmp (a venv in a temporary folder, pytest's) land on the private /tmp instead of being hidden by it."""
    return ["--proc", "/proc", "--remount-ro", "/proc", "--dev", "/dev",
            "--size", str(TMP_MB << 20), "--tmpfs", "/tmp",
            "--size", str(SHM_MB << 20), "--tmpfs", "/dev/shm",
            "--size", str(RUN_KB << 10), "--tmpfs", INSIDE_RUN]


def _python_folders() -> list[Path]:
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
            "; the sandbox bound for it: " + ", ".join(map(str, _python_folders())) +
            ". A venv made from a symlinked interpreter needs the interpreter's real folder among them")


def _python_binds(stage: Stage) -> list[str]:
    return [arg for path in _python_folders() for arg in ("--ro-bind", stage.source(path), str(path))]


def _passwd_files(folder: Path) -> list[str]:
    (folder / "passwd").write_text(f"student:x:{SANDBOX_UID}:{SANDBOX_UID}:student:/tmp:/usr/sbin/nologin\n")
    (folder / "group").write_text(f"student:x:{SANDBOX_UID}:\n")
    return ["--ro-bind", str(folder / "passwd"), "/etc/passwd", "--ro-bind", str(folder / "group"), "/etc/group"]


def kernel_env(home: str, pythonpath: str) -> dict:
    """The kernel's whole environment: an allow-list, nothing of the grader's."""
    path = os.pathsep.join(dict.fromkeys([os.path.dirname(sys.executable), "/usr/local/bin", "/usr/bin", "/bin"]))
    env = {var: "1" for var in THREAD_VARS}
    env.update(PATH=path, HOME=home, TMPDIR=f"{home}" if home.startswith("/tmp") else f"{home}/tmp",
               LANG="C.UTF-8", LC_ALL="C.UTF-8", USER="student", LOGNAME="student", MPLBACKEND="Agg",
               PYTHONHASHSEED="0", PYTHONPATH=pythonpath, PYTHONDONTWRITEBYTECODE="1",
               IPYTHONDIR=f"{home}/.ipython", MPLCONFIGDIR=f"{home}/.mpl", PYTHONNOUSERSITE="1")
    return env


def launcher(nproc: int | None) -> list[str]:
    """``python -m ipykernel_launcher``, with RLIMIT_NPROC set from inside (in the sandbox's user namespace it counts
    the sandbox's processes only; set before, it would count all of the grader's user's processes)."""
    if nproc is None:
        return ["-m", "ipykernel_launcher"]
    code = (f"import resource, runpy, sys; resource.setrlimit(resource.RLIMIT_NPROC, ({nproc}, {nproc})); "
            "sys.argv[0] = 'ipykernel_launcher'; runpy.run_module('ipykernel_launcher', run_name='__main__', "
            "alter_sys=True)")
    return ["-c", code]


# --- matplotlib's font list -----------------------------------------------------------------------------------------

# Run by this interpreter in a kernel's environment (an empty home): matplotlib's font list, of the fonts a sandboxed
# kernel sees at the same paths (its own fonts; system fonts under the folders the sandbox binds, through no symlink),
# written under matplotlib's own name into the folder argv[1].
FONT_LIST_BUILDER = """
import os, sys
import matplotlib
from matplotlib import font_manager

data, roots = matplotlib.get_data_path(), sys.argv[2:]

def visible(path):
    return path.startswith(data + os.sep) or (
        os.path.realpath(path) == path and any(path.startswith(root + os.sep) for root in roots))

manager = font_manager.fontManager
manager.ttflist = [font for font in manager.ttflist if visible(font.fname)]
manager.afmlist = [font for font in manager.afmlist if visible(font.fname)]
font_manager.json_dump(manager, os.path.join(sys.argv[1], f"fontlist-v{font_manager.FontManager.__version__}.json"))
"""
_font_lists_lock = threading.Lock()


def font_lists() -> tuple[Path, ...]:
    """matplotlib's font list (``fontlist-v*.json``) for the kernels' MPLCONFIGDIR, so that a kernel's ``import
    matplotlib`` reads it instead of building it (a fifth of a second at every start): the grader's own, built once per
    machine and matplotlib (in ``grader_cache()``; the first kernel waits the ~0.6 s) by a
    subprocess of this interpreter, and used only while nothing but the grader's uid can change it: never a file a
    kernel wrote. Empty if matplotlib is not installed or the build failed: kernels then build their own, as without
    it. Once per process."""
    with _font_lists_lock:  # the kernels of one grading process start in threads of their own
        return _font_lists()


@functools.cache
def _font_lists() -> tuple[Path, ...]:
    spec = importlib.util.find_spec("matplotlib")  # not imported here: that takes half a second
    if spec is None or not spec.submodule_search_locations:
        return ()
    package = Path(next(iter(spec.submodule_search_locations)))
    dist = next(package.parent.glob("matplotlib-*.dist-info"), None)
    version = dist.name[len("matplotlib-"):-len(".dist-info")] if dist else "unknown"
    where = hashlib.sha256(str(package).encode()).hexdigest()[:12]  # another environment's matplotlib: its own list
    cache = grader_cache()
    if cache is None:
        return ()
    folder = cache / f"matplotlib-{version}-{where}"
    try:
        found = sorted(folder.glob("fontlist-v*.json")) if _grader_only(folder.parent, folder) else []
        if not found or not _grader_only(*found):  # (a list others could have changed is built again)
            found = _build_font_list(folder)
    except (OSError, subprocess.SubprocessError):
        return ()
    return tuple(found) if _grader_only(*found) else ()


def _build_font_list(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    for path in (folder.parent, folder):  # readable by bwrap when it runs as the kernel's own uid
        if os.lstat(path).st_uid == os.geteuid():
            os.chmod(path, 0o755)
    if not _grader_only(folder.parent, folder):
        return []
    with tempfile.TemporaryDirectory(dir=folder, prefix=".build-") as build:
        home, out = Path(build, "home"), Path(build, "out")
        for path in (home / "tmp", out):
            path.mkdir(parents=True)
        roots = ["/usr", *map(str, _python_folders())]  # what the sandbox binds at the same paths
        subprocess.run([sys.executable, "-c", FONT_LIST_BUILDER, str(out), *roots], env=kernel_env(str(home), ""),
                       cwd=home, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=60, check=True)
        for path in out.glob("fontlist-v*.json"):
            os.chmod(path, 0o644)
            os.replace(path, folder / path.name)
    return sorted(folder.glob("fontlist-v*.json"))


def grader_cache() -> Path | None:
    """The grader's cache folder (the reference's learning curves, matplotlib's font list): one per uid under the
    temporary folder, used only while nothing but this uid can change it (None otherwise: then nothing is cached). On
    a shared /tmp, another user's folder of the same name is never read, nor one planted for this uid."""
    folder = Path(tempfile.gettempdir()) / f"autograder-cache-{os.geteuid()}"
    try:
        folder.mkdir(mode=0o755, exist_ok=True)
    except OSError:
        return None
    return folder if _grader_only(folder) else None


def _grader_only(*paths: Path) -> bool:
    """Whether only the grader's uid can change each of ``paths``: its own, no symlink, not group or other writable."""
    for path in paths:
        try:
            info = os.lstat(path)
        except OSError:
            return False
        if info.st_uid != os.geteuid() or stat.S_ISLNK(info.st_mode) or info.st_mode & 0o022:
            return False
    return True


# --- cgroups --------------------------------------------------------------------------------------------------------

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
            path = _own_cgroup(controller) / name
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
            return int((_own_cgroup("cpuacct") / self.paths[0].name / "cpuacct.usage").read_text()) / 1e9
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
        _kill_until_gone(self.pids, timeout)
        for path in self.paths:
            for _ in range(50):
                try:
                    path.rmdir()
                    break
                except OSError:
                    time.sleep(0.02)


def _kill_until_gone(pids, seconds: float) -> None:
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


def _pids_of_uid(uid: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    pids.append(int(entry))
            except OSError:
                pass
    return pids


def _alive(pid: int) -> bool:
    """Whether ``pid`` is running (a zombie is not: a PID namespace's init turns zombie only once every process in
    its namespace is gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return False


def _tasks_of_own_uid() -> int:
    """Threads of the grader's uid now (RLIMIT_NPROC counts them all at level none)."""
    uid, count = os.getuid(), 0
    for pid in _pids_of_uid(uid):
        try:
            count += len(os.listdir(f"/proc/{pid}/task"))
        except OSError:
            pass
    return count


# --- one kernel's box -----------------------------------------------------------------------------------------------

class Box:
    """Everything one kernel start needs: its folder, its cgroups, its command, and the kill that leaves nothing."""

    def __init__(self, isolation: Isolation, limits, visible: dict[str, Path], slot: int = 0, cpus: int = 1):
        self.isolation, self.limits = isolation, limits
        self.visible = {name: Path(path).resolve() for name, path in visible.items()}
        self.folder = Path(tempfile.mkdtemp(prefix=f"autograder-kernel-{os.getpid()}-"))  # 0700, the grader's
        self.cgroups = Cgroups(isolation.cgroups, int(limits.memory_mb) << 20, cpus)
        # the grader is root: the kernel's (fallback) or bwrap's (full) uid is an unprivileged one of its own
        self.uid = fallback_uid(slot) if isolation.own_uid else None
        self.host_uid = os.geteuid() if self.uid is None else self.uid  # what the kernel's processes are outside
        self.stage = Stage(self.folder, self.uid) if isolation.level == "full" else Stage()
        self.filter = seccomp.Loader() if isolation.level != "full" else None  # full: bwrap loads it
        self.child_pid = 0  # full: the sandbox's PID 1, whose /proc/<pid>/root is the sandbox's filesystem
        self._info_read = self._info_write = self._filter_fd = -1
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
        return f"{INSIDE_RUN}/ipc" if self.isolation.level == "full" else str(self.folder / "ipc")

    def client_ip(self) -> str:
        """The same sockets from the grader's side."""
        if self.isolation.level == "full":
            return f"/proc/{self.child_pid}/root{INSIDE_RUN}/ipc"
        return self.kernel_ip

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
                    if time.monotonic() > end or (self.child_pid and not _alive(self.child_pid)):
                        raise RuntimeError(f"the kernel did not make its socket {path}") from None
                    time.sleep(0.005)
            if not stat.S_ISSOCK(os.fstat(fd).st_mode):
                os.close(fd)
                raise RuntimeError(f"the kernel's {path} is not a socket")
            self._sockets[port] = fd
        return f"/proc/self/fd/{self._sockets[port]}"

    def _home(self) -> str:
        return "/tmp" if self.isolation.level == "full" else str(self.folder / "home")

    def command(self, extra_arguments: list[str]) -> list[str]:
        level = self.isolation.level
        nproc = None if "pids" in self.cgroups.controllers else PIDS_MAX
        if level == "none":
            nproc = None if nproc is None else nproc + _tasks_of_own_uid()
        if level != "full":
            grading = self.folder / "grading"
            grading.mkdir(exist_ok=True)
            for name, path in self.visible.items():
                (grading / name).symlink_to(path)
            self.env = kernel_env(self._home(), str(grading))
            home, mpl = Path(self._home()), Path(self.env["MPLCONFIGDIR"])
            owned = [home, home / "tmp", mpl]
            for path in owned:
                path.mkdir(exist_ok=True)
            for path in font_lists():  # matplotlib's font list: a copy of the grader's, the kernel's own to change
                try:
                    shutil.copyfile(path, mpl / path.name)
                    owned.append(mpl / path.name)
                except OSError:
                    pass
            if self.uid is not None:
                for path in (*owned, self.connection_file):
                    os.chown(path, self.uid, self.uid)
            return [sys.executable, *launcher(nproc if level != "fallback" else None), "-f", self.connection_file,
                    *extra_arguments]
        self.env = kernel_env("/tmp", "/grading")
        args = [self.isolation.bwrap, *_namespace_args(self.isolation.disable_userns), *_system_binds(),
                *_scratch_mounts(), *_python_binds(self.stage)]
        for name in ("ld.so.cache", "fonts"):
            args += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
        for path in font_lists():  # matplotlib's font list: the grader's, read-only
            args += ["--ro-bind-try", self.stage.source(path), f"{self.env['MPLCONFIGDIR']}/{path.name}"]
        args += _passwd_files(self.folder)
        if self.uid is not None:  # bwrap runs as the kernel's own uid: what it binds from the folder is that uid's
            for name in ("passwd", "group", "kernel.json"):
                os.chown(self.folder / name, self.uid, self.uid)
        for name, path in self.visible.items():
            args += ["--ro-bind", self.stage.source(path), f"/grading/{name}"]
        args += ["--ro-bind", self.connection_file, f"{INSIDE_RUN}/kernel.json",
                 "--remount-ro", "/", "--chdir", "/tmp"]
        filter_fd = _seccomp_fd(self.folder)
        if filter_fd is not None:
            self._filter_fd = filter_fd
            args += ["--seccomp", str(filter_fd)]
        for key, value in self.env.items():
            args += ["--setenv", key, value]
        self._info_read, self._info_write = os.pipe()
        args += ["--info-fd", str(self._info_write)]
        return [*args, "--", sys.executable, *launcher(nproc), "-f", f"{INSIDE_RUN}/kernel.json", *extra_arguments]

    def popen_kwargs(self) -> dict:
        """For Popen, after ``command``: bwrap gets a bare environment (it sets the kernel's), other levels the
        kernel's allow-list."""
        kwargs = {"env": {"PATH": os.defpath}, "cwd": str(self.folder)}
        if self.isolation.level == "full":
            kwargs["pass_fds"] = tuple(fd for fd in (self._info_write, self._filter_fd) if fd >= 0)
        else:
            kwargs["env"] = self.env
        return kwargs

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
            if "pids" not in self.cgroups.controllers and self.isolation.level == "fallback":
                resource.setrlimit(resource.RLIMIT_NPROC, (PIDS_MAX, PIDS_MAX))
            _as_uid(self.uid)
        if self.filter is not None:
            self.filter.load()

    def started(self, timeout: float = 30) -> None:
        """After the launch (full level): read the sandbox's PID 1 from bwrap's info pipe."""
        if self.isolation.level != "full":
            return
        os.close(self._info_write)
        self._info_write = -1
        data, end = b"", time.monotonic() + timeout
        try:
            while b"}" not in data and time.monotonic() < end:
                ready, _, _ = select.select([self._info_read], [], [], max(0.0, end - time.monotonic()))
                chunk = os.read(self._info_read, 4096) if ready else b""
                if not chunk:
                    break
                data += chunk
        finally:
            os.close(self._info_read)
            self._info_read = -1
        try:
            self.child_pid = int(json.loads(data)["child-pid"])
        except (ValueError, KeyError) as exc:
            raise RuntimeError(f"the sandbox did not start (bwrap said {data!r})") from exc

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
            while _alive(self.child_pid) and time.monotonic() < end:
                try:
                    os.kill(self.child_pid, signal.SIGKILL)
                except OSError:
                    pass
                time.sleep(0.005)
        if self.uid is not None:
            # (a zombie is gone: bwrap's or the kernel's, which the kernel manager reaps)
            _kill_until_gone(lambda: [p for p in _pids_of_uid(self.uid) if _alive(p)], 2.0)
        for p in self.cgroups.pids():
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass

    def close(self) -> None:
        """After the last kill: remove the cgroups, the folder and (fallback) the uid's files in shared scratch."""
        for fd in (self._info_read, self._info_write, self._filter_fd, *self._sockets.values()):
            if fd >= 0:
                os.close(fd)
        self._info_read = self._info_write = self._filter_fd = -1
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


if __name__ == "__main__":  # ``python -m autograder.sandbox``: the level this machine gives, and what it covers
    found = probe()
    print(f"sandbox: isolation level {found.level!r}" + (f" ({found.reason})" if found.reason else ""))
    print(f"  host uid of the kernel: {fallback_uid(0) if found.own_uid else os.geteuid()}" + (
        " (unprivileged, its own; the next kernel of a worker gets the next uid)" if found.own_uid else ""))
    for what, how in found.covers.items():
        print(f"  {what}: {how}")
    for what in found.missing:
        print(f"  not contained: {what}")
    if found.level != "full":
        print(f"  for level 'full': {INSTALL}")
