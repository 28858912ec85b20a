"""Gradescope's setup.sh, run here: how it gets Python (with stand-ins for curl, uv and apt, since Gradescope's
network cannot be reached from here), and a whole run on this machine's Python and package indexes (slow)."""

import json
import os
import re
import shutil
import stat
import subprocess
import sys
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


@pytest.mark.slow
def test_whole_setup_installs_what_grading_needs_and_grades_the_reference(source, tmp_path):
    """setup.sh for real, but on this machine's Python 3.11 (AUTOGRADER_SETUP_PYTHON) and with pip's own indexes
    (torch's CPU wheel is on this machine's disk): a venv from the zip's requirements.txt (exactly that), then the
    reference graded full marks by the image's venv. About 2-4 minutes and 1 GB in the temporary folder."""
    shutil.copytree(source, tmp_path / "autograder" / "source")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env |= {"AUTOGRADER_ROOT": str(tmp_path / "autograder"), "AUTOGRADER_SETUP_PYTHON": BASE_PYTHON,
            "AUTOGRADER_TORCH_INDEX": ""}
    proc = subprocess.run(["bash", str(tmp_path / "autograder" / "source" / "setup.sh")], capture_output=True,
                          text=True, env=env, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "setup.sh: torch 2.13.0+cpu" in proc.stdout
    got = re.search(r"setup\.sh: the reference solution got (\d+) / (\d+)\n", proc.stdout)
    assert got and got[1] == got[2] and int(got[2]) > 0, proc.stdout[-2000:]
    venv = tmp_path / "autograder" / "venv" / "bin" / "python"
    freeze = subprocess.run([str(venv), "-m", "pip", "freeze", "--all"], capture_output=True, text=True).stdout
    installed = {pins.normalise(name): version for name, _, version in
                 (line.partition("==") for line in freeze.splitlines()) if version and name != "pip"}
    assert installed == pins.read_pins(source / "requirements.txt")  # what grading needs, nothing of the lock more
    assert installed["torch"] == "2.13.0+cpu" and not {"jupyterlab", "pytest", "mujoco"} & set(installed)
    shutil.rmtree(tmp_path / "autograder" / "venv")
