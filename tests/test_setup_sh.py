"""Gradescope's setup.sh, run here: how it gets Python (with stand-ins for curl, uv and apt, since Gradescope's
network cannot be reached from here), and a whole run on this machine's Python and package indexes (slow)."""

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest

from autograder import pins
from autograder.__main__ import main

BASE_PYTHON = getattr(sys, "_base_executable", sys.executable)


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("zip")
    assert main(["gradescope-zip", "--out", str(tmp / "autograder.zip")]) == 0
    with zipfile.ZipFile(tmp / "autograder.zip") as archive:
        archive.extractall(tmp / "source")
    return tmp / "source"


def stub(folder: Path, name: str, script: str) -> None:
    path = folder / name
    path.write_text("#!/usr/bin/env bash\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def run_setup(source: Path, root: Path, stubs: dict[str, str], **env) -> subprocess.CompletedProcess:
    """setup.sh in <root>/autograder with only stand-ins and the shell's basics on PATH, stopping once Python is
    found. Every stand-in logs its arguments to <root>/calls."""
    shutil.copytree(source, root / "autograder" / "source")
    bin_ = root / "bin"
    bin_.mkdir()
    for name, script in stubs.items():
        stub(bin_, name, f'echo "{name} $*" >> "{root}/calls"\n{script}')
    for tool in ("bash", "sh", "env", "tail", "cat", "mkdir", "chmod"):
        (bin_ / tool).symlink_to(shutil.which(tool))
    return subprocess.run(["bash", str(root / "autograder" / "source" / "setup.sh")], capture_output=True, text=True,
                          env={"PATH": str(bin_), "HOME": str(root), "AUTOGRADER_ROOT": str(root / "autograder"),
                               "AUTOGRADER_SETUP_ONLY_PYTHON": "1", **env}, timeout=60)


def test_python_comes_from_uv_whatever_apt_ships(source, tmp_path):
    """curl gets uv's installer (here: one that writes a stand-in uv), uv installs CPython 3.11 and finds it."""
    uv = f'case "$1 $2" in "python find") echo "{BASE_PYTHON}";; esac\n'
    installer = (f'mkdir -p "$UV_UNMANAGED_INSTALL"\ncat > "$UV_UNMANAGED_INSTALL/uv" <<"EOS"\n#!/usr/bin/env bash\n'
                 f'echo "uv $* UV_PYTHON_INSTALL_DIR=$UV_PYTHON_INSTALL_DIR" >> "{tmp_path}/calls"\n{uv}EOS\n'
                 'chmod +x "$UV_UNMANAGED_INSTALL/uv"\n')
    proc = run_setup(source, tmp_path, {"curl": f"cat <<'EOF'\n{installer}EOF\n", "apt-get": "exit 1"})
    assert proc.returncode == 0, proc.stderr
    assert f"setup.sh: Python {sys.version.split()[0]} {BASE_PYTHON}" in proc.stdout
    calls = (tmp_path / "calls").read_text().splitlines()
    assert calls[0] == "curl -LsSf https://astral.sh/uv/0.13.9/install.sh"
    python_dir = tmp_path / "autograder" / "python"
    assert calls[1:] == [f"uv python install 3.11 UV_PYTHON_INSTALL_DIR={python_dir}",
                         f"uv python find --python-preference only-managed 3.11 UV_PYTHON_INSTALL_DIR={python_dir}"]


def test_deadsnakes_when_uv_cannot_be_had(source, tmp_path):
    """No uv (curl fails): the deadsnakes PPA through apt, whose python3.11 is then checked."""
    stubs = {"curl": "exit 6", "apt-get": "exit 0", "add-apt-repository": "exit 0",
             "python3.11": f'exec "{BASE_PYTHON}" "$@"'}
    proc = run_setup(source, tmp_path, stubs)
    assert proc.returncode == 0, proc.stderr
    assert "get_python_uv did not give a final CPython 3.11" in proc.stderr
    calls = (tmp_path / "calls").read_text()
    assert "add-apt-repository -y ppa:deadsnakes/ppa" in calls
    assert "apt-get install -y --no-install-recommends python3.11 python3.11-venv" in calls


def test_a_release_candidate_or_no_python_stops_the_build(source, tmp_path):
    """Ubuntu 22.04's python3.11 is 3.11.0rc1: refused (a stand-in that fails the version check), and the build
    stops with a message instead of installing the lock on it."""
    stubs = {"curl": "exit 6", "apt-get": "exit 100", "python3.11": "exit 1"}
    proc = run_setup(source, tmp_path, stubs)
    assert proc.returncode == 1
    assert "setup.sh: no final CPython 3.11 with venv could be installed" in proc.stderr


def python_for_fallback() -> str | None:
    """A final CPython 3.11 with venv on this machine that an unprivileged uid can run (Debian's /usr/bin/python3.11;
    pyenv's lies under /root, mode 0700)."""
    from autograder.setup_check import blocking_folders

    for python in ("/usr/bin/python3.11", BASE_PYTHON):
        ok = subprocess.run([python, "-c", "import sys, venv, ensurepip; sys.exit(sys.version_info[:2] != (3, 11) or "
                             "sys.version_info.releaselevel != 'final')"], capture_output=True).returncode == 0
        if os.path.exists(python) and ok and not blocking_folders(python):
            return python
    return None


@pytest.mark.slow
def test_whole_setup_installs_what_grading_needs_and_grades_the_reference(source):
    """setup.sh for real at Gradescope's level, fallback (forced: the kernel runs as an unprivileged uid of its own),
    on a Python 3.11 of this machine that uid can run (AUTOGRADER_SETUP_PYTHON) and with pip's own indexes (torch's
    CPU wheel is on this machine's disk), in a folder other users may enter, as /autograder: the interpreter checked,
    a venv from the zip's requirements.txt (exactly that), checked again, then the reference graded full marks at
    level fallback by the image's venv. About 2-4 minutes and 1.2 GB in the temporary folder."""
    python = python_for_fallback()
    if os.geteuid() != 0 or python is None:
        pytest.skip("level fallback needs a root grader and a Python 3.11 an unprivileged uid can run")
    folder = Path(tempfile.mkdtemp(prefix="gradescope-", dir="/tmp"))
    try:
        folder.chmod(0o755)
        root = folder / "autograder"
        shutil.copytree(source, root / "source")
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env |= {"AUTOGRADER_ROOT": str(root), "AUTOGRADER_SETUP_PYTHON": python, "AUTOGRADER_TORCH_INDEX": "",
                "AUTOGRADER_ISOLATION": "fallback"}
        proc = subprocess.run(["bash", str(root / "source" / "setup.sh")], capture_output=True, text=True, env=env,
                              timeout=1800)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "setup.sh: torch 2.13.0+cpu" in proc.stdout
        assert f"as the kernel's at level 'fallback') can run {python}\n" in proc.stdout
        assert f"can run {root}/venv/bin/python and import ipykernel\n" in proc.stdout
        assert "setup.sh: student code will run at isolation level 'fallback'" in proc.stdout
        got = re.search(r"setup\.sh: the reference solution got (\d+) / (\d+) at isolation level 'fallback'\n",
                        proc.stdout)
        assert got and got[1] == got[2] and int(got[2]) > 0, proc.stdout[-2000:]
        venv = root / "venv" / "bin" / "python"
        freeze = subprocess.run([str(venv), "-m", "pip", "freeze", "--all"], capture_output=True, text=True).stdout
        installed = {pins.normalise(name): version for name, _, version in
                     (line.partition("==") for line in freeze.splitlines()) if version and name != "pip"}
        assert installed == pins.read_pins(root / "source" / "requirements.txt")  # what grading needs, no more
        assert installed["torch"] == "2.13.0+cpu" and not {"jupyterlab", "pytest", "mujoco"} & set(installed)
    finally:
        shutil.rmtree(folder)


def test_an_interpreter_the_kernels_uid_cannot_run_stops_the_build_with_the_fix(source, tmp_path):
    """At level fallback (forced here; Gradescope's container has no user namespaces) the kernel runs as an
    unprivileged uid of its own. An interpreter under a 0700 folder (a venv there, like one under /root/.pyenv) cannot
    be run by that uid: setup.sh stops before installing anything, names the folder and the fix, and does not advise
    running as root, which it is."""
    if os.geteuid() != 0:
        pytest.skip("level fallback needs a root grader")
    private = Path(tempfile.mkdtemp(prefix="private-home-", dir="/tmp"))  # mode 0700, as a home folder
    try:
        assert stat.S_IMODE(private.stat().st_mode) == 0o700
        subprocess.run([BASE_PYTHON, "-m", "venv", "--without-pip", str(private / "py")], check=True)
        shutil.copytree(source, tmp_path / "autograder" / "source")
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env |= {"AUTOGRADER_ROOT": str(tmp_path / "autograder"), "AUTOGRADER_SETUP_PYTHON": str(private / "py" / "bin"
                / "python"), "AUTOGRADER_TORCH_INDEX": "", "AUTOGRADER_ISOLATION": "fallback"}
        proc = subprocess.run(["bash", str(tmp_path / "autograder" / "source" / "setup.sh")], capture_output=True,
                              text=True, env=env, timeout=300)
    finally:
        shutil.rmtree(private)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "isolation level 'fallback'" in proc.stderr and "an unprivileged uid of its own" in proc.stderr
    assert f"{private} is mode 0700, so other users cannot enter it" in proc.stderr
    assert "leave AUTOGRADER_SETUP_PYTHON unset" in proc.stderr and f"chmod o+x {private}" in proc.stderr
    assert "as root" not in proc.stderr
    assert not (tmp_path / "autograder" / "venv").exists()  # refused before anything was installed
