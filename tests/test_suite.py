"""The suite's own plumbing: `make test` runs every test exactly once, in parallel then the `serial` ones alone, and
the parallel order keeps each expensive module fixture's tests together (built once) with the slow work first."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

COLLECT = """
import json, sys, pytest

class Items:
    def pytest_collection_finish(self, session):
        self.items = [(i.nodeid, (i.get_closest_marker("xdist_group") or pytest.mark.x).args[:1],
                       bool(i.get_closest_marker("slow"))) for i in session.items]

found = []
for args in json.loads(sys.argv[1]):  # one process: the test modules are imported once
    items = Items()
    pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider", *args], plugins=[items])
    found.append(items.items)
print("ITEMS " + json.dumps(found))
"""


def collect(*selections: list[str]) -> list[list[tuple[str, str | None, bool]]]:
    """For each list of pytest arguments: (node id, xdist group or None, slow) of each test it selects, in the order
    the suite's hooks leave them."""
    proc = subprocess.run([sys.executable, "-c", COLLECT, json.dumps(selections)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    line = next(line for line in proc.stdout.splitlines() if line.startswith("ITEMS "))
    return [[(nodeid, group[0] if group else None, slow) for nodeid, group, slow in items]
            for items in json.loads(line[6:])]


def make_test_selections() -> list[str]:
    """The -m expressions of the pytest runs of `make test`'s recipe, in order."""
    recipe = subprocess.run(["make", "-n", "-W", "pyproject.toml", "test"], cwd=ROOT, capture_output=True, text=True,
                            check=True).stdout
    runs = [line for line in recipe.replace("\\\n", " ").splitlines() if "-m pytest" in line]
    return [m.strip('"') for line in runs for m in re.findall(r'pytest [^;]*?-m ("[^"]+"|[^\s;]+)', line)]


@pytest.fixture(scope="module")
def collected() -> dict[str, list]:
    """The whole suite and each selection of `make test`, collected in one process (~20 s on this machine)."""
    selections = make_test_selections()
    assert selections == ["not serial", "serial"], selections
    return dict(zip(["all", *selections], collect([], *(["-m", s] for s in selections))))


def test_make_test_runs_every_test_once_the_serial_ones_alone(collected):
    everything, parallel, alone = ({nodeid for nodeid, _, _ in items} for items in collected.values())
    assert parallel | alone == everything and not parallel & alone
    assert alone, "the serial part runs at least the CPU-share test"


def test_a_module_fixtures_tests_stay_together_and_slow_work_comes_first(collected):
    items = collected["all"]
    groups: dict[str, list[int]] = {}
    for index, (_, group, _) in enumerate(items):
        if group:
            groups.setdefault(group, []).append(index)
    assert "tests.test_nbgrader_course" in groups  # its class and gradebook: one build per worker that runs them
    for group, places in groups.items():
        assert places == list(range(places[0], places[-1] + 1)), f"{group}'s tests are split: its fixture rebuilt"
    slow_groups = {g for nodeid, g, slow in items if g and slow}
    first_fast = next(i for i, (_, g, slow) in enumerate(items) if not slow and g not in slow_groups)
    assert all(not slow for _, g, slow in items[first_fast:] if g is None), "a slow test after the quick ones"


TOY_MODULE = """
import os, pytest

@pytest.fixture(scope="module")
def toy():
    return os.getpid()

@pytest.mark.parametrize("i", range(6))
def test_uses_the_module_fixture(toy, i):
    assert toy

@pytest.mark.parametrize("i", range(6))
def test_on_its_own(i):
    pass
"""


def test_under_xdist_a_module_fixtures_tests_run_on_one_worker(tmp_path):
    """What the order above is for, under pytest-xdist as `make test` runs it (`-n 2 --dist loadgroup`): the tests of
    a module fixture (here ``toy``, one of SHARED_MODULE_FIXTURES) are one xdist group, so one worker runs them all and
    builds the fixture once. Before, in every run: xdist's hook read the groups before the suite's hook had marked them
    (now ``tryfirst``), and with pytest 9.2 xdist 3.8's group suffix no longer reaches the node ids at all
    (pytest-xdist issue 1386; pytest is pinned to 9.1.1), so each test was its own unit, the module's tests went to
    both workers, and the nbgrader class, the Gradescope zip and the other module fixtures were built on both."""
    (tmp_path / "conftest.py").write_text((ROOT / "tests" / "conftest.py").read_text())
    (tmp_path / "test_toy.py").write_text(TOY_MODULE)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-n", "2", "--dist", "loadgroup", "-v", "-p",
                           "no:cacheprovider", "--rootdir", str(tmp_path), str(tmp_path)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    workers = set(re.findall(r"\[(gw\d)\] \[ *\d+%\] PASSED \S*test_uses_the_module_fixture", proc.stdout))
    assert len(workers) == 1, f"the module fixture's tests ran on {sorted(workers)}"
    alone = re.findall(r"PASSED (\S*test_on_its_own\S*)", proc.stdout)
    assert len(alone) == 6 and not any("@" in nodeid for nodeid in alone)  # the rest: no group, any worker
