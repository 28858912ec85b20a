"""Hostile submissions against the kernel's sandbox: one attack per category, each checked by its post-conditions.

Every attack runs at a graded cell's top level (once per kernel) and reports what it got through its function's error
message ("LEAKS n=<count> ..."), which is what a student would do to get it into the feedback. The tests assert that
the count is 0 and that the secret's text is in neither results.json nor feedback.html, plus the attack's own
post-condition (no process left, nothing in /tmp or /dev/shm, nothing received by a listener...).
Runs as root (the machine's CI) and, for one test, as an ordinary user created here; a last test forces the fallback.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest

from autograder import feedback, sandbox
from autograder.batch import grade_all
from autograder.execute import KernelSession
from autograder.grade import grade
from autograder.results import gradescope
from autograder.sandbox import bwrap, caches
from tests.conftest import fill_release, results_by_name

ROOT = Path(__file__).resolve().parent.parent
CELL_SECONDS = 20
CORRECT = "discounted_returns_exact"
LINUX_ROOT = sys.platform.startswith("linux") and os.geteuid() == 0
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# The attack's report: what it read, as the message of the exception the graded function raises.
REPORT = '''
def _report(found):
    first = next(iter(found.items()), ("", ""))
    return f"LEAKS n={len(found)} first={first[0]}:{str(first[1])[:80]!r}"


def _read(path, found):
    try:
        with open(path, "rb") as f:
            data = f.read(4096)
        found[str(path)] = data.decode(errors="replace")
    except Exception:
        pass
'''


def pg_loss_reporting(attack: str) -> str:
    return (REPORT + attack + "\n\ndef pg_loss(action_probs, action, reward):\n"
            "    raise RuntimeError(_REPORT)\n")


@pytest.fixture(scope="module")
def strict(assignment):
    limits = dataclasses.replace(assignment.limits, cell_seconds=CELL_SECONDS, submission_seconds=180)
    return dataclasses.replace(assignment, limits=limits)


def grade_files(strict, tmp_path, answers, only, workers=1):
    """Grade in this process; write results.json and feedback.html as ``grade`` does; return the report and the
    text of both files."""
    path = fill_release(strict, tmp_path / "hostile.ipynb", answers)
    report = grade(path, strict, only=set(only), workers=workers)
    results = json.dumps(gradescope(report))
    (tmp_path / "results.json").write_text(results)
    feedback.write(tmp_path / "feedback.html", report, strict)
    return report, results, (tmp_path / "feedback.html").read_text()


def leaks(report, check="pg_loss_exact") -> str:
    output = results_by_name(report)[check].output
    assert "LEAKS n=" in output, output
    return output[output.index("LEAKS n="):]


def processes_with(marker: str) -> list[str]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if marker.encode() in f.read():
                    found.append(pid)
        except OSError:
            pass
    return found


# --- filesystem -----------------------------------------------------------------------------------------------------

GRADER_ONLY_ATTACK = '''
import glob, os, subprocess, time
_found = {{}}
_root = {root!r}
for _path in [{source!r}, _root + "/course.toml", _root + "/tests/conftest.py", _root + "/.git", _root + "/.git/HEAD",
              {gitdir!r} + "/HEAD", _root + "/docs/calibration.md", "/proc/1/root" + {source!r},
              "/proc/self/root" + {source!r}, "/proc/1/cwd/course.toml", "/grading/../course.toml",
              "/grading/autograder/../course.toml", "/grading/autograder/../source/" + {rel!r}]:
    _read(_path, _found)
for _path in glob.glob(_root + "/*/*/*.ipynb") + glob.glob("/proc/*/cwd/course.toml"):
    _read(_path, _found)
try:
    _out = subprocess.run(["git", "-C", _root, "show", "HEAD:source/" + {rel!r}], capture_output=True, timeout=10)
    if _out.returncode == 0:
        _found["git show"] = _out.stdout[:200]
except Exception:
    pass
try:
    import autograder.config, autograder.notebook
    _found["import"] = autograder.notebook.reference_functions(autograder.config.load().assignment())
except Exception:
    pass
_start = time.monotonic()
for _top in ["/work", "/home", "/root", "/srv", "/opt", "/autograder", "/mnt", "/tmp", "/var"]:
    for _dir, _dirs, _files in os.walk(_top):
        if time.monotonic() - _start > 5:
            break
        _dirs[:] = [d for d in _dirs if d not in (".venv", "site-packages", ".pyenv", "node_modules")]
        for _name in _files:
            if _name in ("course.toml", {name!r}) or _name.endswith(".ipynb"):
                _read(os.path.join(_dir, _name), _found)
_found = {{k: v for k, v in _found.items() if "BEGIN SOLUTION" in str(v) or "assignments" in str(v)
          or "ref:" in str(v) or "Fixtures" in str(v) or "gitdir" in str(v) or "calibrat" in str(v)
          or k in ("git show", "import")}}
_REPORT = _report(_found)
'''


def grader_only_attack(assignment) -> str:
    root = assignment.root
    git = root / ".git"
    gitdir = git.read_text().split(":", 1)[1].strip() if git.is_file() else str(git)
    rel = f"{assignment.id}/{assignment.notebook}"
    return GRADER_ONLY_ATTACK.format(root=str(root), source=str(assignment.source), gitdir=gitdir, rel=rel,
                                     name=assignment.notebook)


def test_grader_only_files_are_unreachable(strict, tmp_path):
    """The reference (source/), .git, tests/, docs and course.toml, by any path, by git, by import: nothing."""
    report, results, page = grade_files(strict, tmp_path, {"pg_loss": pg_loss_reporting(grader_only_attack(strict))},
                                        ["pg_loss_exact", CORRECT])
    assert leaks(report).startswith("LEAKS n=0 "), leaks(report)
    for text in (results, page):
        assert "BEGIN SOLUTION" not in text and "ENN585 course configuration" not in text
    assert results_by_name(report)[CORRECT].passed
    assert report.extra["isolation"]["level"] == "full"


def test_planted_home_file_never_reaches_feedback(strict, tmp_path):
    """A secret in the grading user's home (an SSH key, a token) stays out of results.json and feedback.html."""
    home = Path(pwd.getpwuid(os.getuid()).pw_dir)
    secret = f"PLANTED-{uuid.uuid4().hex}"
    planted = home / f".autograder-planted-{uuid.uuid4().hex[:8]}"
    attack = f'''
import glob, os, pwd
_found = {{}}
for _path in [{str(planted)!r}, {str(home)!r} + "/.ssh/id_rsa"] + glob.glob({str(home)!r} + "/.*") + \\
        glob.glob("/home/*/.*") + glob.glob("/root/.*"):
    if os.path.isfile(_path):
        _read(_path, _found)
for _user in pwd.getpwall():
    _read(os.path.join(_user.pw_dir, {planted.name!r}), _found)
_found = {{k: v for k, v in _found.items() if "PLANTED-" in v}}
_REPORT = _report(_found)
'''
    planted.write_text(secret)
    try:
        report, results, page = grade_files(strict, tmp_path, {"pg_loss": pg_loss_reporting(attack)},
                                            ["pg_loss_exact"])
    finally:
        planted.unlink()
    assert leaks(report).startswith("LEAKS n=0 "), leaks(report)
    assert secret not in results and secret not in page


def test_classmates_stay_out_in_grade_all(strict, tmp_path):
    """During grade-all, bob's kernel looks for the class through /proc and at known paths: it finds nothing of
    alice's notebook or results."""
    course = tmp_path / "course"
    secret = f"ALICE-{uuid.uuid4().hex}"
    alice = course / "submitted" / "alice" / strict.id
    bob = course / "submitted" / "bob" / strict.id
    alice.mkdir(parents=True)
    bob.mkdir(parents=True)
    fill_release(strict, alice / strict.notebook, {"discounted_returns": (
        f"# {secret}\ndef discounted_returns(rewards, gamma):\n    out, g = [], 0.0\n    for r in reversed(rewards):\n"
        "        g = r + gamma * g\n        out.append(g)\n    return out[::-1]\n")})
    attack = f'''
import glob, os, time
_found = {{}}
_end = time.monotonic() + 8
while time.monotonic() < _end:
    _paths = set(glob.glob({str(course)!r} + "/*/*/*/*")) | set(glob.glob({str(course)!r} + "/*/*/*/*/*"))
    for _cmd in glob.glob("/proc/*/cmdline"):
        try:
            _args = open(_cmd, "rb").read().split(b"\\0")
        except OSError:
            continue
        for _arg in _args:
            _arg = _arg.decode(errors="replace")
            if _arg.endswith((".ipynb", ".json", ".toml")):
                _paths.add(_arg)
                _paths |= set(glob.glob(os.path.dirname(os.path.dirname(os.path.dirname(_arg))) + "/*/*/*"))
    for _path in _paths:
        if os.path.isfile(_path):
            _read(_path, _found)
    _found = {{k: v for k, v in _found.items() if "ALICE-" in v or v.startswith('{{' + chr(10) + '  "score"')}}
    if _found:
        break
    time.sleep(0.5)
_REPORT = _report(_found)
'''
    fill_release(strict, bob / strict.notebook, {"pg_loss": pg_loss_reporting(attack)})
    grade_all(course, strict, ROOT / "course.toml", jobs=2, only=["pg_loss_exact", CORRECT], progress=False)
    results = (course / "results" / "bob" / strict.id / "results.json").read_text()
    page = (course / "results" / "bob" / strict.id / "feedback.html")
    output = next(t["output"] for t in json.loads(results)["tests"] if "pg_loss" in t["name"] or "loss" in t["name"])
    assert "LEAKS n=0 " in results, output
    assert secret not in results and (not page.exists() or secret not in page.read_text())
    assert json.loads((course / "results" / "alice" / strict.id / "results.json").read_text())["score"] > 0


# --- network --------------------------------------------------------------------------------------------------------

def test_no_network_reaches_the_host(strict, tmp_path):
    """A TCP listener on the host (loopback and its own address) and an abstract Unix socket receive nothing."""
    listener = socket.socket()
    listener.bind(("0.0.0.0", 0))
    listener.listen(16)
    listener.settimeout(0.2)
    port = listener.getsockname()[1]
    abstract = f"\0autograder-test-{uuid.uuid4().hex}"
    unix = socket.socket(socket.AF_UNIX)
    unix.bind(abstract)
    unix.listen(16)
    unix.settimeout(0.2)
    received, stop = [], threading.Event()

    def accept():
        while not stop.is_set():
            for sock in (listener, unix):
                try:
                    conn, _ = sock.accept()
                    conn.settimeout(1)
                    received.append(conn.recv(100) or b"(connected)")
                    conn.close()
                except OSError:
                    pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        host_ip = socket.gethostbyname(socket.gethostname())
    except OSError:
        host_ip = "127.0.0.1"
    attack = f'''
import socket
_found = {{}}
for _address in [("127.0.0.1", {port}), ({host_ip!r}, {port}), ("localhost", {port})]:
    try:
        with socket.create_connection(_address, timeout=2) as _s:
            _s.sendall(b"hello from the kernel")
            _found[str(_address)] = "connected"
    except OSError:
        pass
try:
    with socket.socket(socket.AF_UNIX) as _s:
        _s.settimeout(2)
        _s.connect({abstract!r})
        _s.sendall(b"hello from the kernel")
        _found["abstract"] = "connected"
except OSError:
    pass
_REPORT = _report(_found)
'''
    try:
        report, _, _ = grade_files(strict, tmp_path, {"pg_loss": pg_loss_reporting(attack)}, ["pg_loss_exact"])
    finally:
        stop.set()
        thread.join(5)
        listener.close()
        unix.close()
    assert received == []
    assert leaks(report).startswith("LEAKS n=0 "), leaks(report)


# --- processes, scratch, floods -------------------------------------------------------------------------------------

def test_no_process_of_the_submission_survives(strict, tmp_path):
    """500 children in their own sessions, and a setsid double fork: none is alive once the grade returns."""
    marker = str(900000 + os.getpid() % 99999)
    attack = f'''
import os, subprocess
_started = 0
for _i in range(500):
    try:
        subprocess.Popen(["sleep", "{marker}"], start_new_session=True, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
        _started += 1
    except OSError:
        break
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execvp("sleep", ["sleep", "{marker}1"])
    os._exit(0)
_REPORT = _report({{}}) + f" started={{_started}}"
'''
    report, _, _ = grade_files(strict, tmp_path, {"pg_loss": pg_loss_reporting(attack)}, ["pg_loss_exact", CORRECT])
    assert processes_with(marker) == []
    assert results_by_name(report)[CORRECT].passed


def test_scratch_is_private_capped_and_gone(strict, tmp_path):
    """Files written to /tmp, /dev/shm and /var/tmp are not on the host after the grade, and big writes hit a cap."""
    marker = f"autograder-test-{uuid.uuid4().hex}"
    shm_before = shutil.disk_usage("/dev/shm").used
    attack = f'''
import os
_sizes = {{}}
for _dir, _mb in (("/tmp", 300), ("/dev/shm", 100), ("/var/tmp", 1)):
    _written = 0
    try:
        with open(os.path.join(_dir, "{marker}"), "wb") as _f:
            for _ in range(_mb):
                _f.write(b"x" * 2**20)
                _f.flush()
                _written += 1
    except OSError:
        pass
    _sizes[_dir] = _written
import json as _json
_REPORT = _report({{}}) + " written_mb=" + _json.dumps(_sizes)
'''
    report, _, _ = grade_files(strict, tmp_path, {"pg_loss": pg_loss_reporting(attack)}, ["pg_loss_exact"])
    written = json.loads(leaks(report).split("written_mb=")[1].split("}")[0] + "}")
    for folder in ("/tmp", "/dev/shm", "/var/tmp"):
        assert not (Path(folder) / marker).exists(), f"{folder}/{marker} was left on the host"
    assert shutil.disk_usage("/dev/shm").used - shm_before < 32 << 20
    assert written["/tmp"] < 300 and written["/dev/shm"] < 100, f"no size cap: {written}"


class Sampler:
    """Peak host process count and lowest MemAvailable while a grade runs."""

    def __init__(self):
        self.peak_processes, self.low_memory, self._stop = 0, 1 << 62, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.peak_processes = max(self.peak_processes, sum(1 for p in os.listdir("/proc") if p.isdigit()))
            with open("/proc/meminfo") as f:
                available = next(int(line.split()[1]) << 10 for line in f if line.startswith("MemAvailable"))
            self.low_memory = min(self.low_memory, available)
            time.sleep(0.05)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self.thread.join(5)


FORK_FLOOD = '''
import os, time
_children = 0
for _i in range(2000):
    try:
        _pid = os.fork()
    except OSError:
        break
    if _pid == 0:
        time.sleep(60)
        os._exit(0)
    _children += 1
_REPORT = _report({}) + f" children={_children}"
'''

MEMORY_FLOOD = '''
import os, time
_pids = []
for _i in range(6):
    _pid = os.fork()
    if _pid == 0:  # 1 GB each in anonymous in-memory files, which RLIMIT_AS does not count
        try:
            _files = [os.memfd_create(f"flood{_j}") for _j in range(16)]
            for _fd in _files:
                for _ in range(60):
                    os.write(_fd, b"x" * 2**20)
            time.sleep(15)
        finally:
            os._exit(0)
    _pids.append(_pid)
for _pid in _pids:
    os.waitpid(_pid, 0)


def reinforce_loss(log_probs, returns, baseline=0.0):
    raise RuntimeError("flooded")
'''


def test_fork_and_memory_floods_are_contained(strict, tmp_path):
    """2000 sleeping forks, and 6 forked processes filling 1 GB each: capped (processes, whole-tree memory), and
    the untouched function is still graded."""
    processes_before = sum(1 for p in os.listdir("/proc") if p.isdigit())
    with open("/proc/meminfo") as f:
        memory_before = next(int(line.split()[1]) << 10 for line in f if line.startswith("MemAvailable"))
    with Sampler() as sampler:
        report, _, _ = grade_files(strict, tmp_path, {"pg_loss": pg_loss_reporting(FORK_FLOOD),
                                                      "reinforce_loss": MEMORY_FLOOD},
                                   ["pg_loss_exact", "reinforce_loss_exact", CORRECT])
    results = results_by_name(report)
    assert results[CORRECT].passed, "the other checks are still graded"
    assert not results["reinforce_loss_exact"].passed
    assert sampler.peak_processes - processes_before < 300, f"{sampler.peak_processes} processes at the peak"
    assert memory_before - sampler.low_memory < 4 << 30, "more than 4 GB taken from the host"


# --- as an ordinary user, and the fallback --------------------------------------------------------------------------

EXPOSE_INTERPRETER = r'''
set -e
# The interpreter lives under /root (mode 0700) on this machine: make only it reachable, in a private mount namespace,
# as a deployment would install it. /root becomes a 0711 tmpfs holding the interpreter and a planted 0600 secret.
t=$(mktemp -d)
mkdir "$t/pyenv"
mount --bind /root/.pyenv "$t/pyenv"
mount -t tmpfs -o mode=711,size=16m tmpfs /root
mkdir /root/.pyenv
mount --move "$t/pyenv" /root/.pyenv
rmdir "$t/pyenv" "$t"
printf '%s' "$PLANTED" > /root/.planted-secret
chmod 600 /root/.planted-secret
exec "$@"
'''


def run_exposed(cmd: list[str], env: dict, user: str | None = None, timeout: float = 300):
    """Run ``cmd`` (as ``user`` when given) where an unprivileged uid can run this machine's interpreter."""
    wrapped = ["runuser", "-u", user, "--", *cmd] if user else cmd
    if not sys.base_prefix.startswith("/root/"):
        return subprocess.run(wrapped, env=env, capture_output=True, text=True, timeout=timeout)
    return subprocess.run(["unshare", "--mount", "--propagation", "private", "bash", "-c", EXPOSE_INTERPRETER,
                           "bash", *wrapped], env=env, capture_output=True, text=True, timeout=timeout)


HEADLESS_ATTACK = '''
import glob, os, subprocess
_found = {{}}
for _path in [{secret_paths}] + glob.glob({course!r} + "/source/*/*") + [{course!r} + "/course.toml"]:
    _read(_path, _found)
for _i in range(200):
    try:
        subprocess.Popen(["sleep", "{marker}"], start_new_session=True)
    except OSError:
        break
for _dir in ("/tmp", "/dev/shm"):
    try:
        open(os.path.join(_dir, "{marker}"), "w").write("x")
    except OSError:
        pass
_found = {{k: v for k, v in _found.items() if "PLANTED-" in v or "BEGIN SOLUTION" in v or "assignments" in v}}
_REPORT = _report(_found)
'''


@pytest.fixture(scope="module")
def student_user():
    """An ordinary account created for these tests (removed after)."""
    if not LINUX_ROOT or not shutil.which("useradd"):
        pytest.skip("needs root on Linux to create an account")
    name = f"agsbx{os.getpid() % 100000}"
    subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh", name], check=True)
    yield name
    subprocess.run(["pkill", "-KILL", "-u", name], check=False)  # noqa: S607 - only this test's own account
    subprocess.run(["userdel", "--remove", name], check=False, capture_output=True)


class UidWatcher:
    """The host uids of the processes whose command line holds ``marker``, seen while a grade runs."""

    def __init__(self, marker: str):
        self.marker, self.uids, self._stop = marker, set(), threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            for pid in processes_with(self.marker):
                try:
                    self.uids.add(os.stat(f"/proc/{pid}").st_uid)
                except OSError:
                    pass
            time.sleep(0.1)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self.thread.join(5)


def headless_grade(strict, folder: Path, course: Path, attack: str, env: dict, user: str | None, marker: str):
    """Grade with the ``grade`` command; return the process, results.json and the host uids the submission's
    processes ran as."""
    submission = fill_release(strict, folder / "hostile.ipynb", {"pg_loss": pg_loss_reporting(attack)})
    results = folder / "out" / "results.json"
    cmd = [sys.executable, "-m", "autograder", "--config", str(course / "course.toml"), "grade", str(submission),
           "--results", str(results), "--check", "pg_loss_exact", "--check", CORRECT, "--workers", "1"]
    with UidWatcher(marker) as watcher:
        proc = run_exposed(cmd, env, user)
    return proc, results, watcher.uids


def test_as_an_ordinary_user(strict, student_user, tmp_path):
    """The same containment for a grade run by an unprivileged account: level full without root."""
    folder = Path(tempfile.mkdtemp(prefix="autograder-user-test-"))
    try:
        shutil.chown(folder, student_user)
        marker = str(800000 + os.getpid() % 99999)
        home = Path(pwd.getpwnam(student_user).pw_dir)
        secret = f"PLANTED-{uuid.uuid4().hex}"
        (home / ".token").write_text(secret)
        shutil.chown(home / ".token", student_user)
        os.chmod(home / ".token", 0o600)
        attack = HEADLESS_ATTACK.format(secret_paths=f"{str(home / '.token')!r}, '/root/.planted-secret'",
                                        course=str(ROOT), marker=marker)
        env = {"PATH": SYSTEM_PATH, "HOME": str(home), "PYTHONPATH": str(ROOT), "PLANTED": secret, "LANG": "C.UTF-8"}
        proc, results, uids = headless_grade(strict, folder, ROOT, attack, env, student_user, marker)
        assert proc.returncode == 0, proc.stderr[-2000:]
        data = json.loads(results.read_text())
        text = results.read_text() + (results.parent / "feedback.html").read_text()
        assert "LEAKS n=0 " in text and secret not in text and "BEGIN SOLUTION" not in text
        assert processes_with(marker) == []
        assert not any(Path(d, marker).exists() for d in ("/tmp", "/dev/shm"))
        assert next(t for t in data["tests"] if "discounted" in t["name"].lower())["status"] == "passed"
        assert data["extra_data"]["isolation"]["level"] == "full"
        assert "RLIMIT_NPROC" in data["extra_data"]["isolation"]["covers"]["processes"]
        assert uids == {pwd.getpwnam(student_user).pw_uid}, uids
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.skipif(not LINUX_ROOT, reason="needs root")
def test_as_root_the_sandbox_runs_as_a_uid_of_its_own(strict, tmp_path):
    """Grading as root where other uids can run the interpreter (a deployment's /usr or world-readable venv): bwrap
    runs as an unprivileged uid of its own, so even an escape from the namespaces would not be root."""
    folder = Path(tempfile.mkdtemp(prefix="autograder-root-test-"))
    try:
        os.chmod(folder, 0o755)
        marker = str(600000 + os.getpid() % 99999)
        secret = f"PLANTED-{uuid.uuid4().hex}"
        attack = HEADLESS_ATTACK.format(secret_paths="'/root/.planted-secret'", course=str(ROOT), marker=marker)
        env = {"PATH": SYSTEM_PATH, "HOME": "/root", "PYTHONPATH": str(ROOT), "PLANTED": secret, "LANG": "C.UTF-8"}
        proc, results, uids = headless_grade(strict, folder, ROOT, attack, env, None, marker)
        assert proc.returncode == 0, proc.stderr[-2000:]
        data = json.loads(results.read_text())
        text = results.read_text() + (results.parent / "feedback.html").read_text()
        assert "LEAKS n=0 " in text and secret not in text
        assert processes_with(marker) == []
        assert len(uids) == 1 and uids.pop() not in (0, os.getuid()), "bwrap and the kernel ran as root"
        assert data["extra_data"]["isolation"]["level"] == "full"
        assert "of its own" in data["extra_data"]["isolation"]["covers"]["privileges"]
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def gradescope_like_copy(strict, folder: Path) -> Path:
    """The course as the fallback's deployment rule wants it: the engine, the kit and the content world-readable,
    everything grader-only (course.toml, source/, release/) owner-only, as root."""
    course = folder / "autograder"
    course.mkdir()
    for package in ("autograder", "gradekit", "assignments"):
        shutil.copytree(ROOT / package, course / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "course.toml", course / "course.toml")
    os.chmod(course / "course.toml", 0o600)
    for sub in ("source", "release"):
        shutil.copytree(ROOT / sub / strict.id, course / sub / strict.id)
        os.chmod(course / sub, 0o700)
    os.chmod(folder, 0o755)
    return course


@pytest.mark.skipif(not LINUX_ROOT, reason="the fallback needs root to give the kernel its own uid")
def test_fallback_without_namespaces(strict, tmp_path):
    """bwrap unavailable (forced): the kernel runs as its own uid; owner-only grader files, the grader's home and
    its processes and scratch files are contained; the level is named and warned about."""
    folder = Path(tempfile.mkdtemp(prefix="autograder-fallback-test-"))
    try:
        course = gradescope_like_copy(strict, folder)
        marker = str(700000 + os.getpid() % 99999)
        secret = f"PLANTED-{uuid.uuid4().hex}"
        attack = HEADLESS_ATTACK.format(secret_paths="'/root/.planted-secret'", course=str(course), marker=marker)
        env = {"PATH": SYSTEM_PATH, "HOME": "/root", "PYTHONPATH": str(course), "PLANTED": secret,
               "LANG": "C.UTF-8", sandbox.BWRAP_ENV: ""}
        proc, results, uids = headless_grade(strict, folder, course, attack, env, None, marker)
        assert proc.returncode == 0, proc.stderr[-2000:]
        data = json.loads(results.read_text())
        text = results.read_text() + (results.parent / "feedback.html").read_text()
        assert "LEAKS n=0 " in text and secret not in text and "BEGIN SOLUTION" not in text
        assert processes_with(marker) == []
        assert not any(Path(d, marker).exists() for d in ("/tmp", "/dev/shm"))
        assert next(t for t in data["tests"] if "discounted" in t["name"].lower())["status"] == "passed"
        assert data["extra_data"]["isolation"]["level"] == "fallback"
        assert len(uids) == 1 and 0 not in uids, uids
        assert "warning" in proc.stderr and "'fallback'" in proc.stderr
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# --- matplotlib's font list: the grader's, never a kernel's ----------------------------------------------------------

FONT_LIST_USE = r"""
import hashlib, io, json, logging, os
messages = []
handler = logging.Handler()
handler.emit = lambda record: messages.append(record.getMessage())
logging.getLogger("matplotlib.font_manager").addHandler(handler)
logging.getLogger("matplotlib.font_manager").setLevel(logging.DEBUG)
from matplotlib import font_manager, pyplot
path = os.path.join(os.environ["MPLCONFIGDIR"], {name!r})
fonts = font_manager.fontManager.ttflist + font_manager.fontManager.afmlist
figure, axes = pyplot.subplots()
axes.plot([0, 1, 4])
axes.set_title("learning curve")
png = io.BytesIO()
figure.savefig(png, format="png")
try:
    with open(path, "a") as f:  # a kernel changing the font list for the next one
        f.write("planted")
    wrote = True
except OSError:
    wrote = False
print(json.dumps({{"messages": messages, "sha": hashlib.sha256(open(path, "rb").read()).hexdigest(), "wrote": wrote,
                  "fonts": len(fonts), "missing": [f.fname for f in fonts if not os.path.isfile(f.fname)],
                  "png": png.getvalue()[:4].hex()}}))
"""


@pytest.mark.parametrize("level", ["probed", "none"])
def test_kernels_read_the_graders_font_list(assignment, monkeypatch, level):
    """matplotlib's font list is built once by the grader and given to every kernel: read-only at level full, a copy
    of the kernel's own below it. The kernel's matplotlib reads it (no rebuild at every start: a fifth of a second),
    every font it lists is there in the sandbox, a figure renders, and what a kernel writes never reaches the
    grader's list (nor so the next kernel)."""
    (path,) = sandbox.font_lists()
    assert path.name.startswith("fontlist-v") and path.stat().st_uid == os.geteuid()
    original = path.read_bytes()
    if level == "none":
        if os.geteuid() == 0:  # (tests/test_host.py: as root, level none refuses to run any kernel)
            pytest.skip("as root no kernel runs at level none; the copy below full is tested as an ordinary user")
        none = dataclasses.replace(sandbox.probe(), level="none")
        monkeypatch.setattr(sandbox, "probe", lambda: none)
    session = KernelSession(assignment.limits, assignment.kernel_packages)
    with session:
        run = session.run(FONT_LIST_USE.format(name=path.name))
        found = session.isolation["level"]
    assert run.status == "ok", run.error
    data = json.loads(run.outputs[-1]["text"])
    assert any(m.startswith("Using fontManager instance from") for m in data["messages"]), data["messages"]
    assert not any("generated new fontManager" in m for m in data["messages"]), data["messages"]
    assert data["fonts"] > 0 and data["missing"] == []
    assert data["png"] == b"\x89PNG".hex()
    assert data["wrote"] == (found != "full")  # read-only at level full; below it, the kernel's own copy
    assert data["sha"] == hashlib.sha256(original + (b"planted" if data["wrote"] else b"")).hexdigest()
    assert path.read_bytes() == original


@pytest.mark.skipif(not LINUX_ROOT, reason="needs root to give the cache to another uid")
def test_a_font_list_another_uid_could_change_is_never_used(monkeypatch, tmp_path):
    """The font list is used only while nothing but the grader's uid can change it (its folders and the file); one
    that others could write is built again, and in a folder of another uid's none is used."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    caches._font_lists.cache_clear()
    try:
        (path,) = sandbox.font_lists()
        assert tmp_path / f"autograder-cache-{os.geteuid()}" in path.parents
        built = path.read_bytes()
        path.write_text("planted")
        os.chmod(path, 0o666)
        caches._font_lists.cache_clear()
        assert sandbox.font_lists() == (path,) and path.read_bytes() == built  # built again
        os.chown(path.parent, 65534, 65534)
        caches._font_lists.cache_clear()
        assert sandbox.font_lists() == ()
    finally:
        caches._font_lists.cache_clear()


def test_below_the_minimum_level_no_student_code_runs(assignment, tmp_path):
    """course.toml's min_isolation: below it, an "Autograder error" result, exit code 3, and what to install."""
    results = tmp_path / "results.json"
    env = dict(os.environ, **{sandbox.FORCE_ENV: "none", "PYTHONPATH": str(ROOT)})
    proc = subprocess.run([sys.executable, "-m", "autograder", "grade", str(assignment.release), "--results",
                           str(results)], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 3
    data = json.loads(results.read_text())
    assert data["tests"][0]["name"] == "Autograder error" and data["score"] == 0
    assert "bubblewrap" in proc.stderr and "min_isolation" in proc.stderr


def test_min_isolation_is_validated(tmp_path):
    from autograder import config

    text = (ROOT / "course.toml").read_text().replace('min_isolation = "fallback"', 'min_isolation = "strong"')
    (tmp_path / "course.toml").write_text(text)
    with pytest.raises(config.ConfigError, match=r"course\.min_isolation must be one of"):
        config.load(tmp_path / "course.toml")


GRADER_KILLED = '''
import os, sys
from pathlib import Path
sys.path.insert(0, {root!r})
from autograder import config
from autograder.execute import KernelSession
kernel = KernelSession(config.load().assignment().limits, {{"autograder": Path({root!r}) / "autograder"}}).__enter__()
kernel.run("import subprocess\\nfor _ in range(5): subprocess.Popen(['sleep', '{marker}'], start_new_session=True)")
print(kernel.box.folder, flush=True)
os.kill(os.getpid(), 9)
'''


def test_a_grader_killed_with_sigkill_leaves_nothing_running(tmp_path):
    """grade-all kills a grader that overruns with SIGKILL: its sandbox dies with it (bwrap --die-with-parent), and
    the next grade sweeps the folder and cgroups it left."""
    marker = str(500000 + os.getpid() % 99999)
    proc = subprocess.run([sys.executable, "-c", GRADER_KILLED.format(root=str(ROOT), marker=marker)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9, proc.stderr[-2000:]
    folder = Path(proc.stdout.strip())
    time.sleep(0.5)
    assert processes_with(marker) == []
    sandbox.sweep_stale()
    assert not folder.exists()


NEIGHBOUR_ATTACK = '''
import os, signal
_got = []
for _pid in filter(str.isdigit, os.listdir("/proc")):
    if int(_pid) in (os.getpid(), os.getppid()):
        continue
    try:
        if b"ipykernel" not in open(f"/proc/{_pid}/cmdline", "rb").read():
            continue
        open(f"/proc/{_pid}/environ", "rb").read()
        os.kill(int(_pid), 0)
        _got.append(_pid)
    except OSError:
        pass
print(f"NEIGHBOURS {len(_got)}")
'''

TWO_KERNELS = '''
import json, sys
sys.path.insert(0, {course!r})
from autograder import config
from autograder.execute import KernelThread
assignment = config.load({toml!r}).assignment()
kernels = [KernelThread(assignment.limits, assignment.kernel_packages, "fallback", "import os", slot) for slot in (0, 1)]
with kernels[0], kernels[1]:
    attack = kernels[1].run({attack!r})
    alive = kernels[0].run("print('alive')")
    uids = [k.box.uid for k in kernels]
print(json.dumps({{"attack": attack.outputs, "alive": alive.outputs, "uids": uids}}))
'''


@pytest.mark.skipif(not LINUX_ROOT, reason="the fallback needs root to give the kernel its own uid")
def test_fallback_kernels_of_one_worker_cannot_reach_each_other(strict, tmp_path):
    """A grade-all worker starts the next student's kernel while it grades the current one: at the fallback level
    the two kernels have uids of their own, so the next student's kernel can neither read the environment of the
    current one nor signal it."""
    folder = Path(tempfile.mkdtemp(prefix="autograder-fallback-test-"))
    try:
        course = gradescope_like_copy(strict, folder)
        script = TWO_KERNELS.format(course=str(course), toml=str(course / "course.toml"), attack=NEIGHBOUR_ATTACK)
        env = {"PATH": SYSTEM_PATH, "HOME": "/root", "LANG": "C.UTF-8", sandbox.BWRAP_ENV: "",
               sandbox.FORCE_ENV: "fallback"}
        proc = run_exposed([sys.executable, "-c", script], env)
        assert proc.returncode == 0, proc.stderr[-2000:]
        data = json.loads(proc.stdout.strip().splitlines()[-1])
        uids = data["uids"]
        assert None not in uids and len(set(uids)) == 2, uids
        assert "NEIGHBOURS 0" in json.dumps(data["attack"]), data["attack"]
        assert "alive" in json.dumps(data["alive"])
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_a_kernel_is_ready_once_it_has_answered(assignment, monkeypatch):
    """jupyter_client's wait for a new kernel ends with 0.2 s of listening to a silent IOPub channel; ours drops what
    IOPub holds and goes on (0.2 s of every kernel start). Nothing is lost by it: the first cell's outputs are its own,
    nothing of the kernel's start in them."""
    from jupyter_client.channels import AsyncZMQSocketChannel

    waits, get_msg = [], AsyncZMQSocketChannel.get_msg

    async def spy(self, timeout=None):
        waits.append(timeout)
        return await get_msg(self, timeout=timeout)

    monkeypatch.setattr(AsyncZMQSocketChannel, "get_msg", spy)
    with KernelSession(assignment.limits, assignment.kernel_packages) as session:
        started = list(waits)
        run = session.run("print('first')")
    assert run.outputs == [{"output_type": "stream", "name": "stdout", "text": "first\n"}]
    assert started.count(0.2) <= 1 and started[-1] == 0  # IOPub's connection checked once, then drained at once


def test_a_planted_grader_cache_is_never_read(assignment, monkeypatch, tmp_path):
    """The grader caches the reference's learning curves (and matplotlib's font list) under the temporary folder, in a
    folder of its uid's own. On a shared /tmp another user can make that folder first, or plant curves where the
    grader would look: nothing there is read (nor written); the curves are computed instead."""
    from autograder import feedback

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(feedback, "recorded_runs", lambda *args: None)  # not the release's: the cache is asked
    name = "bandit_table_learns"
    planted = json.dumps({"runs": [], "feedback_runs": [], "planted": True})
    key = feedback.reference_runs_key(assignment, name)
    for folder in (tmp_path / "autograder-cache", tmp_path / f"autograder-cache-{os.geteuid()}"):
        folder.mkdir()
        os.chmod(folder, 0o777)  # anybody's to write
        (folder / f"{name}-{key}.json").write_text(planted)
    feedback.reference_runs.cache_clear()
    try:
        runs = feedback.reference_runs(assignment, name)
    finally:
        feedback.reference_runs.cache_clear()
    assert "planted" not in runs and len(runs["runs"]) == len(assignment.check(name).seeds)
    assert sandbox.grader_cache() is None
    assert [p.name for p in (tmp_path / f"autograder-cache-{os.geteuid()}").iterdir()] == [f"{name}-{key}.json"]


@pytest.mark.skipif(sandbox.probe().level != "full", reason="the binds of level full")
def test_a_kernel_that_cannot_start_says_which_path_it_needed(assignment, monkeypatch):
    """A kernel whose interpreter the sandbox did not bind (a venv made from a symlinked interpreter outside /usr):
    the error says what bwrap said and which paths the kernel needed, and the grader survives its failed start.
    (Before: "Kernel died before replying to kernel_info", and the failed start's kill was killpg(0): the grader's
    own process group.)"""
    sandbox.probe()
    monkeypatch.setattr(bwrap, "python_folders", lambda: [])
    with pytest.raises(RuntimeError) as failed:
        with KernelSession(assignment.limits, assignment.kernel_packages):
            pass
    message = str(failed.value)
    assert "execvp" in message and os.path.realpath(sys.executable) in message, message
