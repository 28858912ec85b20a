"""Every pin installs on every Python version pyproject promises, and the student requirements stay small."""

import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from autograder import pins

NETWORK_ERRORS = ("NewConnectionError", "Temporary failure in name resolution", "Could not fetch URL",
                  "Network is unreachable", "ConnectionError", "ReadTimeoutError")
# What the course ships pinned: the grader's lock, and each release's requirements.txt for students (once there).
REQUIREMENTS = [pins.LOCK] + sorted((pins.ROOT / "release").glob("*/requirements.txt"))


def test_requires_python_is_a_checkable_promise():
    assert pins.promised_versions() == ["3.11.0"]
    assert pins.promised_versions(">=3.10,<3.13") == ["3.10.0", "3.11.0", "3.12.0"]
    with pytest.raises(ValueError, match="finite"):
        pins.promised_versions(">=3.11")
    assert f"{sys.version_info.major}.{sys.version_info.minor}.0" in pins.promised_versions()


def index_options() -> list[str]:
    """The indexes setup.sh uses: pip's configured ones plus PyTorch's CPU index for torch==2.13.0+cpu. Where that
    host cannot be reached (this machine), the +cpu wheel comes from pip's configured find-links, as for `make`."""
    try:
        socket.getaddrinfo(pins.TORCH_CPU_INDEX.split("/")[2], 443)
    except OSError:
        return []
    return ["--extra-index-url", pins.TORCH_CPU_INDEX]


def missing_wheels(requirements: Path, python: str, dest: Path) -> list[str]:
    """Pins of ``requirements`` that have no wheel for ``python``, or only a yanked release (pip still installs an
    exact pin that was yanked, with a warning: soupsieve 3.0.1 was, as broken on Python < 3.11.5): one pip run,
    re-run without each pin it rejects."""
    remaining = [f"{name}=={version}" for name, version in pins.read_pins(requirements).items()]
    missing = []
    while remaining:
        proc = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                               "--python-version", python, "--dest", str(dest), "--progress-bar", "off",
                               *index_options(), *remaining], capture_output=True, text=True, timeout=1800)
        if proc.returncode == 0:
            yanked = re.findall(r"is a yanked version: '([^']+)' candidate \(version (\S+)", proc.stderr)
            return missing + [f"{name}=={version} (yanked)" for name, version in yanked]
        rejected = re.findall(r"No matching distribution found for (\S+)|Cannot install (\S+) because", proc.stderr)
        rejected = [a or b for a, b in rejected]
        if not rejected:
            if any(error in proc.stderr for error in NETWORK_ERRORS):
                pytest.skip(f"the package index cannot be reached: {proc.stderr.strip().splitlines()[-1]}")
            pytest.fail(proc.stderr)
        missing += rejected
        remaining = [r for r in remaining if r not in rejected]
    return missing


@pytest.mark.slow
@pytest.mark.parametrize("python", pins.promised_versions())
@pytest.mark.parametrize("requirements", REQUIREMENTS, ids=lambda p: str(p.relative_to(pins.ROOT)))
def test_every_pin_has_a_wheel_for_every_promised_python(requirements, python, tmp_path):
    """`pip download --no-deps --only-binary=:all: --python-version X` for each pin (~10 s and ~350 MB for the lock
    from pip's cache; Requires-Python is checked against X, so soupsieve 4.1.3, which needs 3.11.5, fails 3.11.0, and
    the yanked 3.0.1 fails too)."""
    assert missing_wheels(requirements, python, tmp_path) == []
    assert len(list(tmp_path.iterdir())) == len(pins.read_pins(requirements))


STUDENT_NEVER = {"nbgrader", "pytest", "xmlschema"}  # the instructor's and the grader's tools
NEEDS_MUJOCO = {"week03_gymnasium", "week03_fetch_slide"}  # InvertedPendulum-v5 and FetchSlide-v4


@pytest.mark.parametrize("requirements", REQUIREMENTS[1:] or [None], ids=lambda p: p and p.parent.name)
def test_student_requirements_are_small_and_agree_with_the_lock(requirements):
    if requirements is None:
        pytest.skip("no release has a requirements.txt yet")
    lock, theirs = pins.read_pins(pins.LOCK), pins.read_pins(requirements)
    assert theirs and not STUDENT_NEVER & set(theirs)
    if requirements.parent.name not in NEEDS_MUJOCO:
        assert "mujoco" not in theirs and "gymnasium-robotics" not in theirs
    # the same versions as the grader's (torch may drop the +cpu local label: students install from PyPI)
    assert {n: v.split("+")[0] for n, v in theirs.items()} == {n: lock[n].split("+")[0] for n in theirs}
    assert len(theirs) < len(lock) / 2


def test_student_requirements_of_the_lecture_part_are_small(tmp_path):
    """What `release` can write for the Week 3 notebook: its imports and their dependencies, at the lock's versions."""
    text = pins.student_requirements(["torch", "numpy", "matplotlib", "gymnasium"])
    (tmp_path / "requirements.txt").write_text(text)
    theirs, lock = pins.read_pins(tmp_path / "requirements.txt"), pins.read_pins(pins.LOCK)
    assert {"torch", "numpy", "matplotlib", "gymnasium", "pillow", "sympy"} <= set(theirs)
    assert theirs["torch"] == "2.13.0" and all(theirs[n] == lock[n] for n in theirs if n != "torch")
    assert not (STUDENT_NEVER | {"mujoco", "gymnasium-robotics"}) & set(theirs)
    assert len(theirs) < 30, sorted(theirs)
    with pytest.raises(KeyError, match="not pinned"):
        pins.student_requirements(["requests-oauthlib"])
