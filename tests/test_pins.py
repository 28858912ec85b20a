"""Every pin installs on every Python version pyproject promises, and the student requirements stay small."""

import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement

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
    # on this machine (Linux x86_64) exactly the grader's versions, torch's CPU build included
    assert theirs == {n: lock[n] for n in theirs}
    assert len(theirs) < len(lock) / 2


def test_student_requirements_of_the_lecture_part_are_small(tmp_path):
    """What `release` can write for the Week 3 notebook: its imports and their dependencies, at the lock's versions."""
    text = pins.student_requirements(["torch", "numpy", "matplotlib", "gymnasium"])
    (tmp_path / "requirements.txt").write_text(text)
    theirs, lock = pins.read_pins(tmp_path / "requirements.txt"), pins.read_pins(pins.LOCK)
    assert {"torch", "numpy", "matplotlib", "gymnasium", "pillow", "sympy"} <= set(theirs)
    assert theirs["torch"] == "2.13.0+cpu" and all(theirs[n] == lock[n] for n in theirs)  # read as on Linux
    assert not (STUDENT_NEVER | {"mujoco", "gymnasium-robotics"}) & set(theirs)
    assert len(theirs) < 30, sorted(theirs)
    with pytest.raises(KeyError, match="not pinned"):
        pins.student_requirements(["requests-oauthlib"])


# ------------------------------------------------------------------- what pip installs from it on students' machines
# pip's --platform tags of each of pins.PLATFORMS: glibc 2.28 (torch's manylinux_2_28), macOS 14 (torch's
# macosx_14_0) on Apple silicon, Windows 64-bit; pip 23.2 does not add the older tags a machine also accepts
PLATFORM_TAGS = {
    "linux": [f"manylinux_2_{minor}_x86_64" for minor in range(28, 4, -1)]
    + ["manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"],
    "darwin": [f"macosx_{major}_0_{arch}" for major in range(14, 10, -1) for arch in ("arm64", "universal2")]
    + [f"macosx_10_{minor}_universal2" for minor in range(16, 8, -1)],
    "win32": ["win_amd64"],
}
RELEASES = REQUIREMENTS[1:]


def student_resolution(requirements: Path, platform: str, tmp_path: Path) -> tuple[dict, dict]:
    """What a student's pip picks from ``requirements`` on ``platform``: (pins that apply there, pip's report of
    `pip install --dry-run --no-deps --only-binary=:all: --platform … --python-version 3.11 --report`).

    pip reads no configuration of this machine (PIP_CONFIG_FILE=/dev/null, no PIP_* variables): PyPI and the file's
    own index lines only. pip evaluates environment markers on the machine it runs on, whatever --platform says, so
    the markers are evaluated here for ``platform`` and the pins that apply are passed on the command line. PyTorch's
    CPU index cannot be reached from this machine: in its place, the folder pip is configured with here (find-links,
    /opt/wheels), which holds the same torch-2.13.0+cpu wheel for Linux x86_64, so the choice between the CPU index's
    build and PyPI's is pip's own. The wheels are not downloaded: pip reads their metadata (PEP 658)."""
    text = requirements.read_text()
    chosen = pins.read_pins(requirements, pins.PLATFORMS[platform])
    options = [word for line in text.splitlines() if line.startswith("--") for word in line.split()]
    if pins.TORCH_CPU_INDEX in options and not pins.reachable(pins.TORCH_CPU_INDEX):
        stand_in = pins.pip_sources()["find-links"]
        assert stand_in, "neither PyTorch's CPU index nor a local folder of its wheels: nothing to check against"
        at = options.index(pins.TORCH_CPU_INDEX)
        options[at - 1:at + 1] = [arg for folder in stand_in for arg in ("--find-links", folder)]
    (python,) = pins.promised_versions()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")} | {"PIP_CONFIG_FILE": os.devnull}
    report = tmp_path / f"{platform}.json"
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--no-deps",
                           "--only-binary=:all:", *(a for tag in PLATFORM_TAGS[platform] for a in ("--platform", tag)),
                           "--python-version", python,
                           "--implementation", "cp", "--target", str(tmp_path / "target"), "--report", str(report),
                           "--retries", "1", "--timeout", "60", "--quiet", *options,
                           *(f"{name}=={version}" for name, version in chosen.items())],
                          env=env, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0 and any(error in proc.stderr for error in NETWORK_ERRORS) and "pypi" in proc.stderr:
        pytest.skip(f"PyPI cannot be reached: {proc.stderr.strip().splitlines()[-1]}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return chosen, json.loads(report.read_text())


@pytest.mark.parametrize("platform", sorted(pins.PLATFORMS))
@pytest.mark.parametrize("requirements", RELEASES or [None], ids=lambda p: p and p.parent.name)
def test_students_get_the_cpu_build_of_torch_and_every_dependency_pinned(requirements, platform, tmp_path):
    """On Linux (x86_64, no GPU) pip installs torch 2.13.0+cpu and no nvidia-* package; on macOS (arm64) and Windows
    PyPI's 2.13.0, whose wheels there are CPU builds. For every platform, each wheel pip picks is the pinned version,
    and everything it requires there (its metadata's Requires-Dist, markers evaluated for that platform) is pinned in
    the file at a version that satisfies it: pip installs nothing unpinned, such as CUDA's packages."""
    if requirements is None:
        pytest.skip("no release has a requirements.txt yet")
    chosen, report = student_resolution(requirements, platform, tmp_path)
    picked = {pins.normalise(item["metadata"]["name"]): item for item in report["install"]}
    assert {name: item["metadata"]["version"] for name, item in picked.items()} == chosen
    torch = picked["torch"]
    if platform == "linux":
        assert torch["metadata"]["version"] == "2.13.0+cpu"
        assert "pythonhosted" not in torch["download_info"]["url"]  # the CPU index (here: its stand-in), not PyPI
    else:
        assert torch["metadata"]["version"] == "2.13.0"
        assert torch["download_info"]["url"].startswith("https://files.pythonhosted.org/")
    environment = dict(pins.PLATFORMS[platform], extra="")
    unpinned = []
    for name, item in sorted(picked.items()):
        for line in item["metadata"].get("requires_dist", []):
            need = Requirement(line)
            if need.marker is None or need.marker.evaluate(environment):
                version = chosen.get(pins.normalise(need.name))
                if version is None or not need.specifier.contains(version, prereleases=True):
                    unpinned.append(f"{name} needs {need} (pinned: {version})")
    assert unpinned == []
    assert not [name for name in picked if name.startswith(("nvidia-", "triton", "cuda-"))]


def test_the_student_file_says_where_torch_comes_from_per_platform(tmp_path):
    """The file names PyTorch's CPU index and pins torch per platform with markers (the CPU build by name on Linux,
    so that pip fails rather than take PyPI's CUDA build when the index is missing); what only macOS or Windows
    needs is pinned for them alone."""
    text = pins.student_requirements(["torch", "numpy", "matplotlib", "gymnasium", "ipykernel"])
    (tmp_path / "requirements.txt").write_text(text)
    assert f"--extra-index-url {pins.TORCH_CPU_INDEX}" in text.splitlines()
    assert 'torch==2.13.0+cpu; sys_platform == "linux"' in text.splitlines()
    assert 'torch==2.13.0; sys_platform != "linux"' in text.splitlines()
    per_platform = {p: pins.read_pins(tmp_path / "requirements.txt", env) for p, env in pins.PLATFORMS.items()}
    assert [per_platform[p]["torch"] for p in ("linux", "darwin", "win32")] == ["2.13.0+cpu", "2.13.0", "2.13.0"]
    assert "appnope" in per_platform["darwin"] and "appnope" not in per_platform["linux"]
    assert "colorama" in per_platform["win32"] and "colorama" not in per_platform["darwin"]
    assert "pexpect" not in per_platform["win32"] and "pexpect" in per_platform["linux"]


def test_uv_looks_where_pip_is_configured_to_look():
    """`pip config list` → uv's options: find-links and indexes as pip merges them (a PIP_ variable over a file)."""
    listing = ("global.find-links='/opt/wheels'\nglobal.extra-index-url='file:///a file:///b'\n"
               ":env:.find-links='/srv/w1 /srv/w2'\nglobal.cert='/etc/ssl/x.crt'\n")
    sources = pins.pip_sources(listing=listing)
    assert sources == {"index-url": [], "extra-index-url": ["file:///a", "file:///b"],
                       "find-links": ["/srv/w1", "/srv/w2"]}
    assert pins.uv_args(sources, torch_index=None) == [
        "--extra-index-url", "file:///a", "--extra-index-url", "file:///b", "--find-links", "/srv/w1",
        "--find-links", "/srv/w2", "--index-strategy", "unsafe-best-match"]
    assert pins.uv_args(sources, torch_index="https://unresolvable.invalid/whl/cpu")[-2:] == [
        "--index-strategy", "unsafe-best-match"]  # an index that cannot be reached is left out: uv would fail on it


def test_uv_resolves_the_lock_from_where_pip_looks(tmp_path):
    """`make` installs the lock with uv, which reads no pip.conf: with `pins.uv_args` (pip's find-links and indexes)
    it resolves every pin, torch's CPU build included, which here only pip's find-links folder holds (a dry run into
    an empty venv: nothing is installed). The uv that `make` put in the venv, else one on PATH. The arguments come
    as `make` gets them: `python -m autograder.pins uv-args` run by a bare venv's python (only pip in it), before
    anything is installed. (Before: pins imported packaging at its top and a fresh clone's `make` stopped there.)"""
    uv = Path(sys.executable).parent / "uv"
    uv = str(uv) if uv.exists() else shutil.which("uv")
    if uv is None:
        pytest.skip("no uv here (`make` installs it into .venv)")
    subprocess.run([sys.executable, "-m", "venv", str(tmp_path / "venv")], check=True)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    made = subprocess.run([str(tmp_path / "venv" / "bin" / "python"), "-m", "autograder.pins", "uv-args"], cwd=pins.ROOT,
                          env=env, capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stderr[-2000:]
    assert shlex.split(made.stdout) == pins.uv_args()
    proc = subprocess.run([uv, "pip", "install", "--dry-run", "--python", str(tmp_path / "venv" / "bin" / "python"),
                           "-r", str(pins.LOCK), *shlex.split(made.stdout)], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "UV_CACHE_DIR": str(tmp_path / "cache")})
    if proc.returncode != 0 and "dns error" in proc.stderr and "pypi.org" in proc.stderr:
        pytest.skip("PyPI cannot be reached")
    assert proc.returncode == 0, proc.stderr[-3000:]
    would = dict(re.findall(r"^ \+ (\S+)==(\S+)$", proc.stderr, re.M))
    assert {pins.normalise(name): version for name, version in would.items()} == pins.read_pins(pins.LOCK)


def test_make_and_setup_sh_pin_the_same_uv():
    """One uv for the developer's `make` and Gradescope's setup.sh (they install the same lock)."""
    import re

    from autograder.config import ROOT
    from autograder.exports import UV_VERSION

    (pinned,) = re.findall(r"^UV_VERSION := (\S+)", (ROOT / "Makefile").read_text(), re.M)
    assert pinned == UV_VERSION
