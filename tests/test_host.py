"""The grading machine against a hostile notebook: nothing host-global, and nothing the kernel sends, is the student's.

Each test is an attack a graded cell can make. Run as root on this machine, the interpreter lives under root's 0700
home (pyenv), the case in which the kernel used to be host root (kuid 0): host sysctls were writable, a
``kernel.core_pattern`` handler ran as host root, a key planted in root's keyring was read by the next student.
The message attacks (a comm flood, a 4 MB message full of terminal escapes and lone surrogates) crashed or bloated
the grader's outputs and stopped an nbgrader class. Each test states what the attack got before and after.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from autograder import gate, sandbox, seccomp
from autograder.execute import KernelSession
from tests.conftest import fill_release
from tests.test_nbgrader_course import ASSIGNMENT, ON_TIME, nbgrader, ours, submit
from tests.test_sandbox import (CORRECT, LINUX_ROOT, ROOT, SYSTEM_PATH, UidWatcher, grade_files, gradescope_like_copy,
                                headless_grade, leaks, pg_loss_reporting, strict, student_user)  # noqa: F401 - fixtures

# --- host-global interfaces -----------------------------------------------------------------------------------------

# Writes the value a sysctl already has (never a real change, never a core_pattern handler), adds a key named after
# this grade to the user and session keyrings, and looks for the key a previous grade added.
HOST_ATTACK = '''
import ctypes, subprocess
_found = {{}}
for _path in ("/proc/sys/fs/lease-break-time", "/proc/sys/kernel/core_pattern"):
    try:
        _value = open(_path).read()
        with open(_path, "w") as _f:
            _f.write(_value)
        _found[_path] = "written"
    except OSError:
        pass
_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_errnos = []
for _ring in (-4, -3):  # KEY_SPEC_USER_KEYRING, KEY_SPEC_SESSION_KEYRING
    _key = _libc.syscall(248, b"user", b"{marker}", b"planted", 7, ctypes.c_long(_ring))  # add_key
    _errnos.append(ctypes.get_errno())
    if _key >= 0:
        _found["add_key %d" % _ring] = _key
    _seen = _libc.syscall(250, 10, ctypes.c_long(_ring), b"user", b"{previous}", 0)  # keyctl(KEYCTL_SEARCH)
    if _seen >= 0:
        _found["previous grade's key"] = _seen
subprocess.Popen(["sleep", "{marker}"])
__import__("time").sleep(1)  # (for the test's watcher of host uids)
_REPORT = _report(_found) + " errnos=" + ",".join(map(str, _errnos))
'''


def host_attack(marker: str, previous: str) -> str:
    return pg_loss_reporting(HOST_ATTACK.format(marker=marker, previous=previous))


def test_the_syscall_filter_uses_this_machines_numbers():
    """The refused calls' numbers are the installed kernel headers' (x86_64)."""
    header = Path("/usr/include/x86_64-linux-gnu/asm/unistd_64.h")
    if seccomp.program() is None or not header.exists():
        pytest.skip("no x86_64 kernel headers here")
    numbers = dict(re.findall(r"#define __NR_(\w+) (\d+)", header.read_text()))
    assert {name: str(number) for name, number in seccomp.REFUSED_X86_64.items()} == {
        name: numbers[name] for name in seccomp.REFUSED_X86_64}
    assert len(seccomp.program()) % 8 == 0


@pytest.mark.skipif(not LINUX_ROOT, reason="the grader as root is the case that gave host root")
def test_as_root_a_graded_cell_changes_nothing_host_global(strict, tmp_path):
    """Graded as root with the interpreter under root's 0700 home: the kernel runs as an unprivileged host uid of its
    own (its interpreter staged for it), /proc/sys is read-only and keyrings are refused, so no sysctl write and no key
    reaches the host or the next student. (Before: full level as kuid 0; both sysctl writes succeeded, add_key
    returned a key, and the next grade found it.)"""
    first, second = (str(500000 + os.getpid() % 99999 + i) for i in (0, 1))
    outputs = []
    for marker, previous in ((first, "none-yet"), (second, first)):
        with UidWatcher(marker) as watcher:
            report, results, page = grade_files(strict, tmp_path, {"pg_loss": host_attack(marker, previous)},
                                                ["pg_loss_exact", CORRECT])
        outputs.append(leaks(report))
        isolation = report.extra["isolation"]
        assert isolation["level"] == "full"
        assert isolation["host_uid"] not in (0, os.getuid()) and watcher.uids == {isolation["host_uid"]}, (
            isolation, watcher.uids)
        assert "seccomp" in isolation["covers"]["kernel interfaces"]
        assert next(r for r in report.results if r.name == CORRECT).passed
    for output in outputs:
        assert output.startswith("LEAKS n=0 ") and "errnos=1,1" in output, output  # EPERM from the filter


def test_as_an_ordinary_user_keyrings_are_refused(strict, student_user, tmp_path):
    """As an ordinary user the sandbox is that user (no other uid to take), and kernel keyrings are not namespaced:
    the filter refuses them, so no key goes into the grader user's keyring. (Before: add_key returned a key.)"""
    folder = Path(tempfile_dir(student_user))
    try:
        marker = str(400000 + os.getpid() % 99999)
        env = {"PATH": SYSTEM_PATH, "HOME": str(folder), "PYTHONPATH": str(ROOT), "LANG": "C.UTF-8"}
        proc, results, uids = headless_grade(strict, folder, ROOT, HOST_ATTACK.format(marker=marker, previous=marker),
                                             env, student_user, marker)
        assert proc.returncode == 0, proc.stderr[-2000:]
        data = json.loads(results.read_text())
        output = next(t["output"] for t in data["tests"] if "LEAKS" in t["output"])
        assert "LEAKS n=0 " in output and "errnos=1,1" in output, output
        assert data["extra_data"]["isolation"]["host_uid"] == uids.pop() != 0
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.skipif(not LINUX_ROOT, reason="the fallback needs root to give the kernel its own uid")
def test_at_the_fallback_level_keyrings_are_refused(strict, tmp_path):
    """Without namespaces (Gradescope's container) the kernel's own uid is reused by a worker's later students, and
    its user keyring with it: the filter, loaded by the kernel's process before exec, refuses keyrings there too.
    (Before: add_key returned a key, which the slot's next student could read.)"""
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="autograder-fallback-host-"))
    try:
        course = gradescope_like_copy(strict, folder)
        marker = str(300000 + os.getpid() % 99999)
        env = {"PATH": SYSTEM_PATH, "HOME": "/root", "PYTHONPATH": str(course), "LANG": "C.UTF-8",
               sandbox.BWRAP_ENV: ""}
        proc, results, uids = headless_grade(strict, folder, course, HOST_ATTACK.format(marker=marker,
                                             previous=marker), env, None, marker)
        assert proc.returncode == 0, proc.stderr[-2000:]
        data = json.loads(results.read_text())
        output = next(t["output"] for t in data["tests"] if "LEAKS" in t["output"])
        assert "LEAKS n=0 " in output and "errnos=1,1" in output, output
        assert data["extra_data"]["isolation"]["level"] == "fallback" and 0 not in uids
        assert "seccomp" in data["extra_data"]["isolation"]["covers"]["kernel interfaces"]
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def tempfile_dir(owner: str) -> str:
    import tempfile

    folder = tempfile.mkdtemp(prefix="autograder-host-test-")
    shutil.chown(folder, owner)
    return folder


# --- CPU: a kernel's share ------------------------------------------------------------------------------------------

BUSY = "import time\n_t = time.perf_counter()\nsum(i * i for i in range({n}))\nprint(time.perf_counter() - _t)"
HOG = '''
import os, time
for _ in range(24):
    if os.fork() == 0:
        os.setsid()  # a session each: the scheduler's autogroups would otherwise share them out per sandbox
        _end = time.monotonic() + 60
        while time.monotonic() < _end:
            pass
        os._exit(0)
'''
def seconds(run) -> float:
    """What the BUSY cell printed (its stream may come in several outputs)."""
    return float("".join(o.get("text", "") for o in run.outputs if o.get("output_type") == "stream"))


SLOWDOWN = 2.0  # a classmate's check with a hog beside it, at most this times slower than alone (before: ~7x)


@pytest.mark.serial  # a CPU share: measured with no other test beside it
@pytest.mark.skipif(not LINUX_ROOT or "cpu" not in sandbox.probe().cgroups, reason="needs a writable cpu cgroup")
def test_a_cpu_hog_does_not_starve_a_classmate(assignment):
    """Two kernels of one grade-all worker pair (1 core each, as grade-all gives them on this 2-core machine): 24
    busy processes in one slow the other's work by at most ``SLOWDOWN``. Without the CPU quota the hog took ~24/25
    of both cores."""
    limits = assignment.limits
    with KernelSession(limits, assignment.kernel_packages, slot=0, cpus=1) as hog, \
            KernelSession(limits, assignment.kernel_packages, slot=1, cpus=1) as classmate:
        assert "1 core " in classmate.isolation["covers"]["cpu"]
        n = 3_000_000
        alone = min(seconds(classmate.run(BUSY.format(n=n))) for _ in range(2))
        assert hog.run(HOG).status == "ok"
        time.sleep(1)
        loaded = min(seconds(classmate.run(BUSY.format(n=n))) for _ in range(2))
    assert loaded <= SLOWDOWN * alone, (alone, loaded)


# --- what the kernel sends ------------------------------------------------------------------------------------------

def test_the_gate_cleans_and_bounds_text():
    dirty = "\x1b[2J\x1b[H\x1b]0;title\x07ok\ud800\x00\x07\r\n\tline\u202e" + "A" * 10_000
    clean = gate.clean_text(dirty)
    assert clean.startswith("ok\ufffd\n\tline") and len(clean) <= gate.STRING_CHARS + len(gate.TRUNCATED)
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\u202e]", clean)
    clean.encode("utf-8")  # no lone surrogate left
    deep = current = []
    for _ in range(1000):
        current.append([])
        current = current[0]
    assert json.dumps(gate.clean_data({"a": deep})).count("[") <= gate.DEPTH + 1


def test_the_gate_keeps_only_the_kinds_a_grade_reads():
    g = gate.Gate(stream_bytes=100, cell_bytes=1000, session_bytes=5000)
    comm = {"msg_type": "comm_msg", "content": {"comm_id": "x", "data": {}}, "buffers": [b"x" * 100]}
    assert g.admit(comm, []) is None
    assert g.admit({"msg_type": "update_display_data", "content": {"data": {}}}, []) is None
    shown = g.admit({"msg_type": "display_data", "content": {"data": {"text/plain": "hi"}, "metadata": {},
                                                             "transient": {"display_id": "d"}}}, [])
    assert "transient" not in shown["content"]
    assert g.admit({"msg_type": "stream", "content": {"name": "stdout", "text": "x" * 500}}, [])["content"][
        "text"].startswith("x" * 100)
    big = {"msg_type": "display_data", "content": {"data": {"text/plain": "y" * 1500}, "metadata": {}}}
    assert g.admit(big, []) is None  # over the cell's bytes
    for _ in range(10):
        g.admit({"msg_type": "display_data", "content": {"data": {"text/plain": "z" * 900}, "metadata": {}}}, [])
    assert g.kept <= 5000  # the session's bytes


HUGE = '''
import json
import gradekit.protocol as _protocol
get_ipython().kernel.session.pack = lambda o: json.dumps(o, default=str).encode()  # lets lone surrogates through
_DIRTY = "\\x1b[2J\\x1b[H\\x1b]0;pwned\\x07 Week 3: 21 / 21 points \\ud800 \\x00\\x07\\r"
_protocol.describe = lambda exc, drivers=None: {"type": _DIRTY, "message": _DIRTY + "A" * 100_000,
                                                "where": _DIRTY * 1000, "function": _DIRTY}
print(_DIRTY * 100)


def pg_loss(action_probs, action, reward):
    raise ValueError(_DIRTY)
'''


def test_a_huge_dirty_message_gives_small_clean_outputs(strict, tmp_path):
    """Error messages of 100 KB a case (3.6 MB an answer) with terminal escapes, control characters and lone
    surrogates, and as much printed, through the command line:
    exit 0, a small valid results.json, a well-formed JUnit file, a feedback page, a clean terminal. (Before:
    results.json 11.7 MB, JUnit not well-formed, escapes on the terminal; with a surrogate, exit 1 and nothing.)"""
    path = fill_release(strict, tmp_path / "dirty.ipynb", {"pg_loss": HUGE})
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "autograder", "grade", str(path), "--results",
                           str(out / "results.json"), "--junit", str(out / "junit.xml"), "--check", "pg_loss_exact",
                           "--check", CORRECT, "--workers", "1"], capture_output=True, text=True, timeout=600,
                          cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f]", proc.stdout + proc.stderr), proc.stdout[-500:]
    text = (out / "results.json").read_text()
    data = json.loads(text)
    assert len(text) < 64_000 and "\\ud800" not in text and "\\u001b" not in text
    failed = next(t for t in data["tests"] if t["status"] == "failed")
    assert "Week 3: 21 / 21 points" in failed["output"], failed  # the student's text, shown as plain text
    ET.parse(out / "junit.xml")
    page = (out / "feedback.html").read_text()
    assert len(page) < 400_000 and "\ud800" not in page and "\x1b" not in page


FLOOD = '''
import time
from comm import create_comm
_comms = [create_comm(target_name="flood") for _ in range(4)]
for _i in range(48):
    _comms[_i % 4].send(data={{"method": "update", "state": {{"i": _i}}, "buffer_paths": [["b%d" % _i]]}},
                        buffers=[bytes(64 << 20)])  # widget state: nbclient keeps every buffer
    time.sleep(0.3)  # the kernel's IOPub thread sends each before the next: the kernel stays small
'''
GRADER_PEAK_GB = 1.5  # the grader's peak resident memory through a comm flood (before: 4.25 GB)


def test_a_comm_flood_leaves_the_grader_small(strict, tmp_path):
    """48 widget messages with 64 MB buffers each: the grader's peak memory stays under ``GRADER_PEAK_GB`` (before:
    4.45 GB) and the grade is normal: the messages are dropped, the grader reconnects to the same kernel."""
    path = fill_release(strict, tmp_path / "flood.ipynb", {"pg_loss": FLOOD.format() + "\n" + pg_loss_source(strict)})
    script = (f"import json, sys; sys.path.insert(0, {str(ROOT)!r})\n"
              "from autograder import config\nfrom autograder.grade import grade\n"
              f"a = config.load().assignment({strict.id!r})\nimport dataclasses\n"
              f"a = dataclasses.replace(a, limits=dataclasses.replace(a.limits, cell_seconds=120))\n"
              f"r = grade({str(path)!r}, a, only={{'pg_loss_exact', {CORRECT!r}}})\n"
              "peak = next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1]\n"
              "print(json.dumps({'peak_kb': int(peak), 'passed': [x.name for x in r.results if x.passed]}))")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    found = json.loads(proc.stdout.strip().splitlines()[-1])
    assert found["peak_kb"] < GRADER_PEAK_GB * (1 << 20), found
    assert set(found["passed"]) == {CORRECT, "pg_loss_exact"}, found  # the flooding cell's function is defined


def pg_loss_source(strict) -> str:
    from tests.conftest import reference_answers

    return reference_answers(strict)["pg_loss"]


@pytest.mark.slow
def test_an_nbgrader_class_finishes_whatever_one_student_sends(assignment, tmp_path):
    """An nbgrader course with a hostile student (the dirty message above) and a student whose autograded notebook
    cannot be written: every student is in the gradebook, the CSV and the report; the failure is named on stderr and
    leaves no temporary file. (Before: a lone surrogate stopped grade-all for the whole class: the next student
    missing from the gradebook, no CSV, no report, a 0-byte autograded notebook.)"""
    root = tmp_path / "course"
    root.mkdir()
    (root / "nbgrader_config.py").write_text('c = get_config()\nc.CourseDirectory.course_id = "ENN585"\n')
    assert ours(root, "nbgrader-source", str(root)).returncode == 0
    for student in ("ada", "eve", "zoe"):
        nbgrader(root, "db", "student", "add", student)
    nbgrader(root, "generate_assignment", ASSIGNMENT)
    submit(root, assignment, "ada", ON_TIME)
    submit(root, assignment, "eve", ON_TIME, {"pg_loss": HUGE})
    submit(root, assignment, "zoe", ON_TIME)
    blocked = root / "autograded" / "zoe" / ASSIGNMENT
    blocked.parent.mkdir(parents=True)
    blocked.write_text("")  # a file where zoe's autograded folder goes: writing her notebook fails
    graded = ours(root, "grade-all", str(root), "--jobs", "2")
    assert graded.returncode == 0, graded.stderr[-3000:]
    assert "zoe: gradebook or autograded notebook not written" in graded.stderr
    rows = (root / "results" / f"grades-{ASSIGNMENT}.csv").read_text()
    assert all(student in rows for student in ("ada", "eve", "zoe"))
    assert (root / "results" / f"report-{ASSIGNMENT}.html").exists()
    for student in ("ada", "eve"):
        written = root / "autograded" / student / ASSIGNMENT / assignment.notebook
        json.loads(written.read_text(encoding="utf-8"))  # whole, valid JSON in UTF-8 (no lone surrogate)
    assert not list((root / "autograded").rglob("*.tmp")) and not list((root / "results").rglob("*.tmp"))
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}", "ENN585") as gb:
        for student in ("ada", "eve", "zoe"):
            assert gb.find_submission(ASSIGNMENT, student).score >= 0


@pytest.mark.skipif(not LINUX_ROOT, reason="as root only")
def test_as_root_without_an_unprivileged_uid_the_level_drops_and_says_why(monkeypatch, tmp_path):
    """A bwrap that works as root but not as another uid (as bwrap did with an interpreter under root's 0700 home):
    the level is never full with the kernel as root; it drops and the record says why. (Before: "full", the kernel
    kuid 0.)"""
    wrapper = tmp_path / "bwrap"
    wrapper.write_text(f'#!/bin/sh\n[ "$(id -u)" = 0 ] && exec {shutil.which("bwrap")} "$@"\nexit 1\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv(sandbox.BWRAP_ENV, str(wrapper))
    found = sandbox.probe.__wrapped__()
    assert found.level != "full" and "could not run the interpreter as an unprivileged uid" in found.reason
    if found.level == "none":  # this machine: no other uid can run the interpreter, so no kernel runs at all
        with pytest.raises(sandbox.IsolationError, match="never runs as root"):
            sandbox.require(found, "none")


SOCKET_SWAP = '''
import json, os
_kernel = get_ipython().kernel
_info = json.load(open("/run/kernel/kernel.json"))
_path = "/run/kernel/ipc-%d" % _info["iopub_port"]
os.unlink(_path)
os.symlink({listener!r}, _path)  # followed in the grader's filesystem, were the grader to look the path up again
_kernel.session.send(_kernel.iopub_socket, "stream", {{"name": "stdout", "text": "x" * (9 << 20)}},
                     parent=_kernel.get_parent("shell"))  # over the grader's MAXMSGSIZE: it reconnects
'''


@pytest.mark.skipif(sandbox.probe().level != "full", reason="the socket folder of level full")
def test_a_kernel_cannot_redirect_the_graders_connections(strict, tmp_path):
    """The kernel can write the folder its sockets are in. It replaces its IOPub socket by a symlink to a listener on
    the host (it could be another student's kernel) and forces a reconnection: the grader reconnects to the socket it
    pinned at the kernel's start, never to the symlink's target, and the grade is normal. (Before: ZeroMQ's
    reconnection looked the path up again and connected to the listener.)"""
    import socket

    listener_path = tmp_path / "listener.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(listener_path))
    listener.listen(8)
    listener.setblocking(False)
    try:
        attack = SOCKET_SWAP.format(listener=str(listener_path)) + "\n" + pg_loss_source(strict)
        report, _, _ = grade_files(strict, tmp_path, {"pg_loss": attack}, ["pg_loss_exact", CORRECT])
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody connected
        assert all(r.passed for r in report.results), [r.output for r in report.results]
    finally:
        listener.close()
