"""The Python versions the course promises, and the pinned requirements files that must install on each of them.

pyproject's ``requires-python`` is the one promise: ``make``, Gradescope's ``setup.sh`` and the student's
``requirements.txt`` all rely on it, and ``tests/test_pins.py`` checks that every pin of every requirements file has
a wheel for every Python version it admits (``pip download --only-binary=:all: --python-version X``).

Why Python 3.11 only (``>=3.11,<3.12``): the lock pins exact versions, and torch 2.13.0's CPU build has no wheel
here for anything but cp311 (PyTorch's index cannot be reached from this machine), so a promise of 3.12 could not be
checked; every other pin does have a cp312 wheel (``pip download --python-version 3.12.0`` fails on torch alone).
Every 3.11 release is included, 3.11.0 too: Ubuntu 22.04's ``python3.11`` is a 3.11.0 release candidate, and a
student may have any 3.11. So no pin may need a later 3.11: soupsieve ≥ 3.0.2 needs 3.11.5, and 3.0 and 3.0.1 were
yanked (broken on Python < 3.11.5), so the lock pins soupsieve 2.10.
"""

from __future__ import annotations

import ast
import re
import shlex
import socket
import subprocess
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, requires
from pathlib import Path

# packaging is imported where it is used (lazy): `make` runs `python -m autograder.pins uv-args` in the bare venv of
# its install step, before the lock (and so packaging) is installed (tests/test_pins.py runs it there).

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements.lock"
# torch==2.13.0+cpu is only on PyTorch's CPU index (and on this machine's disk): setup.sh and CI add this index.
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)")


def requires_python(pyproject: Path = ROOT / "pyproject.toml") -> str:
    return tomllib.loads(pyproject.read_text())["project"]["requires-python"]


def promised_versions(spec: str | None = None) -> list[str]:
    """The first release (X.Y.0) of every Python 3 minor version ``spec`` admits: where Requires-Python floors bite.

    Raises ValueError for a range without an upper bound: a promise that cannot be checked."""
    from packaging.specifiers import SpecifierSet  # lazy: see the imports

    specifiers = SpecifierSet(spec or requires_python())
    versions = [f"3.{minor}.0" for minor in range(0, 100) if f"3.{minor}.0" in specifiers]
    if not versions or "3.99.0" in specifiers:
        raise ValueError(f"requires-python {specifiers} must name a finite set of Python versions")
    return versions


def read_pins(path: Path, environment: dict | None = None) -> dict[str, str]:
    """``name -> version`` of a pinned requirements file (comments, blank lines and options are skipped). A pin with
    an environment marker counts where the marker holds: on this machine, or in ``environment`` (keys of PEP 508 such
    as ``sys_platform``; the others are this machine's), e.g. ``PLATFORMS["win32"]``."""
    pins = {}
    for line in Path(path).read_text().splitlines():
        match = PIN.match(line.strip())
        if match and applies(line, environment):
            pins[normalise(match.group(1))] = match.group(2)
    return pins


def applies(line: str, environment: dict | None = None) -> bool:
    """Whether a requirement line's environment marker (after ``;``) holds in ``environment``."""
    marker = line.split("#")[0].partition(";")[2].strip()
    if not marker:
        return True
    from packaging.markers import Marker  # lazy: see the imports

    return Marker(marker).evaluate(dict(environment or {}))


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


# Students' machines, as the values of PEP 508 environment markers (the other keys are this machine's): a release's
# requirements.txt is written for each (``student_requirements``) and pip's choice is checked for each
# (tests/test_pins.py). Apple stopped making macOS x86_64 wheels of torch after 2.2: macOS means Apple silicon.
PLATFORMS = {
    "linux": {"sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64", "os_name": "posix"},
    "darwin": {"sys_platform": "darwin", "platform_system": "Darwin", "platform_machine": "arm64", "os_name": "posix"},
    "win32": {"sys_platform": "win32", "platform_system": "Windows", "platform_machine": "AMD64", "os_name": "nt"},
}
# What only macOS or Windows needs (ipykernel's appnope, ipython's colorama): the lock is made on Linux and cannot pin
# them, so their pins for students are here (checked like the lock's: a wheel for every promised Python).
PLATFORM_PINS = {"appnope": "0.1.4", "colorama": "0.4.6"}
TORCH_NOTE = """\
# torch is its CPU build everywhere. On Linux, PyPI's torch is the CUDA build (with several GB of nvidia-* packages),
# so there torch comes as {version}+cpu from PyTorch's CPU index (the next line); pip fails rather than take CUDA
# where that index cannot be reached. On macOS and Windows, PyPI's torch {version} is the CPU build.
--extra-index-url {index}
"""


def student_requirements(top_level: list[str], lock: Path = LOCK) -> str:
    """A small pinned requirements.txt for students: ``top_level`` (e.g. torch, numpy, matplotlib, gymnasium) and
    everything they need on each of ``PLATFORMS``, at the lock's versions (``PLATFORM_PINS`` for what the lock made on
    Linux cannot pin), found from the installed packages' metadata (this venv is made from the lock). A package that
    only some platforms need gets a ``sys_platform`` marker. torch is the CPU build: ``X+cpu`` from PyTorch's CPU index
    on Linux, PyPI's ``X`` elsewhere. Raises KeyError for a package that nothing pins."""
    pins = read_pins(lock)
    needed: dict[str, list[str]] = {}
    for platform, environment in PLATFORMS.items():
        for name in dependency_closure(top_level, environment, pins):
            needed.setdefault(name, []).append(platform)
    lines = []
    for name in sorted(needed):
        version = pins.get(name) or PLATFORM_PINS[name]
        if name == "torch":
            base = version.split("+")[0]
            lines += [f'torch=={base}+cpu; sys_platform == "linux"', f'torch=={base}; sys_platform != "linux"']
        elif len(needed[name]) == len(PLATFORMS):
            lines.append(f"{name}=={version}")
        else:
            lines.append(f"{name}=={version}; " + " or ".join(f'sys_platform == "{p}"' for p in needed[name]))
    note = TORCH_NOTE.format(version=pins["torch"].split("+")[0], index=TORCH_CPU_INDEX) if "torch" in needed else ""
    return note + "\n".join(lines) + "\n"


# What the grader imports to grade a submission (the engine, and the kernel it starts), beside what the assignment's
# notebook needs (course.toml's student_packages): the Gradescope image installs these and what they need, no more.
GRADER_PACKAGES = ["nbformat", "nbclient", "ipykernel", "tqdm"]


def grader_requirements(student_packages: list[str], lock: Path = LOCK) -> str:
    """The requirements of an image that grades one assignment (Gradescope's setup.sh): ``GRADER_PACKAGES``, the
    assignment's ``student_packages`` and everything they need on Linux, pinned exactly as in the lock (torch's
    ``+cpu`` build too). Not nbgrader, JupyterLab or pytest (the instructor's and the tests' tools), and MuJoCo only
    for a part whose packages need it. Raises KeyError for a package the lock does not pin."""
    pins = read_pins(lock)
    wanted = dependency_closure([*GRADER_PACKAGES, *student_packages], PLATFORMS["linux"], pins)
    missing = sorted(wanted - set(pins))
    if missing:
        raise KeyError(f"{', '.join(missing)} not pinned in {Path(lock).name}")
    return "".join(f"{name}=={pins[name]}\n" for name in sorted(wanted))


def dependency_closure(top_level: list[str], environment: dict, pins: dict[str, str]) -> set[str]:
    """``top_level`` and what they need where ``environment``'s markers hold, from the installed metadata."""
    from packaging.requirements import Requirement  # lazy: see the imports

    wanted, todo = set(), [normalise(name) for name in top_level]
    while todo:
        name = todo.pop()
        if name in wanted:
            continue
        if name not in pins and name not in PLATFORM_PINS:
            raise KeyError(f"{name} is not pinned in {LOCK.name} (nor in pins.PLATFORM_PINS)")
        wanted.add(name)
        try:
            needs = requires(name) or []
        except PackageNotFoundError:  # a PLATFORM_PINS package, not installed here: it needs nothing (checked by tests)
            needs = []
        for line in needs:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate(dict(environment, extra="")):
                todo.append(normalise(requirement.name))
    return wanted


# ---------------------------------------------------------------------------------- where pip looks, for uv to look
SOURCE_OPTIONS = ("index-url", "extra-index-url", "find-links")


def pip_sources(python: str = sys.executable, listing: str | None = None) -> dict[str, list[str]]:
    """Where ``python``'s pip is configured to look for packages: ``{"index-url": [...], "extra-index-url": [...],
    "find-links": [...]}``, from ``pip config list`` (pip.conf files and PIP_* variables; a variable wins over a
    file, ``install`` over ``global``, as pip merges them). On this machine find-links is /opt/wheels, where torch's
    CPU wheel lies (set in /etc/xdg/pip/pip.conf and PIP_FIND_LINKS). uv reads no pip.conf: ``uv_args`` passes these.
    ``listing``: the output of ``pip config list`` (for tests)."""
    if listing is None:
        listing = subprocess.run([python, "-m", "pip", "config", "list"], capture_output=True, text=True).stdout
    rank = {"global": 0, "install": 1, ":env:": 2}
    found: dict[str, tuple[int, list[str]]] = {}
    for line in listing.splitlines():
        key, _, value = line.partition("=")
        section, _, option = key.rpartition(".")
        if option in SOURCE_OPTIONS and section in rank and rank[section] >= found.get(option, (-1, []))[0]:
            try:
                value = ast.literal_eval(value)
            except (ValueError, SyntaxError):
                pass
            found[option] = (rank[section], str(value).split())
    return {option: found.get(option, (0, []))[1] for option in SOURCE_OPTIONS}


def reachable(url: str) -> bool:
    """Whether ``url``'s host has an address (PyTorch's index does not, from this machine)."""
    try:
        socket.getaddrinfo(url.split("/")[2], 443)
        return True
    except OSError:
        return False


def uv_args(sources: dict[str, list[str]] | None = None, torch_index: str | None = TORCH_CPU_INDEX) -> list[str]:
    """``uv pip install`` options that look where pip looks (``pip_sources``), plus PyTorch's CPU index for
    torch==X+cpu where it can be reached (uv, unlike pip, fails on an index it cannot reach). pip takes the best
    version from all its indexes; uv by default only the first index that has the package:
    ``--index-strategy unsafe-best-match`` is pip's way (every pin is exact, so no index can swap a version)."""
    sources = pip_sources() if sources is None else sources
    args = [arg for url in sources["index-url"][-1:] for arg in ("--index-url", url)]
    extra = sources["extra-index-url"] + ([torch_index] if torch_index and reachable(torch_index) else [])
    args += [arg for url in extra for arg in ("--extra-index-url", url)]
    args += [arg for path in sources["find-links"] for arg in ("--find-links", path)]
    return args + ["--index-strategy", "unsafe-best-match"]


if __name__ == "__main__":  # `python -m autograder.pins uv-args`: the Makefile's options for uv
    if sys.argv[1:] != ["uv-args"]:
        sys.exit("usage: python -m autograder.pins uv-args")
    print(shlex.join(uv_args()))
