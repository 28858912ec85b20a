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

import re
import tomllib
from pathlib import Path

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
    from packaging.specifiers import SpecifierSet

    specifiers = SpecifierSet(spec or requires_python())
    versions = [f"3.{minor}.0" for minor in range(0, 100) if f"3.{minor}.0" in specifiers]
    if not versions or "3.99.0" in specifiers:
        raise ValueError(f"requires-python {specifiers} must name a finite set of Python versions")
    return versions


def read_pins(path: Path) -> dict[str, str]:
    """``name -> version`` of a pinned requirements file (comments, blank lines and options are skipped)."""
    pins = {}
    for line in Path(path).read_text().splitlines():
        match = PIN.match(line.strip())
        if match:
            pins[normalise(match.group(1))] = match.group(2)
    return pins


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def student_requirements(top_level: list[str], lock: Path = LOCK) -> str:
    """A small pinned requirements.txt for students: ``top_level`` (e.g. torch, numpy, matplotlib, gymnasium) and
    everything they need on this platform, at the lock's versions, found from the installed packages' metadata (this
    venv is made from the lock). torch loses its ``+cpu`` label: students get it from PyPI (Windows, macOS) or, with
    PyTorch's CPU index, as the same CPU build. Raises KeyError for a package the lock does not pin."""
    from importlib.metadata import requires
    from packaging.requirements import Requirement

    pins = read_pins(lock)
    wanted, todo = set(), [normalise(name) for name in top_level]
    while todo:
        name = todo.pop()
        if name in wanted:
            continue
        if name not in pins:
            raise KeyError(f"{name} is not pinned in {lock.name}")
        wanted.add(name)
        for line in requires(name) or []:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(normalise(requirement.name))
    lines = [f"{name}=={pins[name].split('+')[0] if name == 'torch' else pins[name]}" for name in sorted(wanted)]
    return "\n".join(lines) + "\n"
