"""The three trust levels hold: the engine names no course content, a new assignment is content only (a fixture
course graded end to end), and the student's kernel can import or read nothing grader-only."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from autograder import config
from autograder.grade import grade
from autograder.notebook import graded_cells

ROOT = config.ROOT
FIXTURE = Path(__file__).parent / "fixture_course"
LECTURE_WORDS = re.compile(r"bandit|chain|cartpole|pendulum|fetch|week ?0?3|lecture|reinforce|policy|toy", re.I)


def test_engine_names_no_course_content():
    """No module of the engine or of the kit, nor a template of the engine (Gradescope's scripts, the workflow), names
    an assignment or its content: a new week touches none of them."""
    files = [p for package in ("autograder", "gradekit") for p in sorted((ROOT / package).rglob("*.py"))]
    files += sorted((ROOT / "autograder" / "templates").iterdir())
    named = [f"{path.relative_to(ROOT)}:{i}: {line.strip()}" for path in files
             for i, line in enumerate(path.read_text().splitlines(), 1) if LECTURE_WORDS.search(line)]
    assert named == []


def test_every_package_of_the_engine_and_the_kit_ships():
    """pyproject.toml's package list takes in every package of the engine and the kit, subpackages included (a list
    of the two top-level names would leave ``autograder.sandbox`` out of an installed grader)."""
    import fnmatch
    import tomllib

    include = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    on_disk = {".".join(init.parent.relative_to(ROOT).parts) for package in ("autograder", "gradekit")
               for init in (ROOT / package).rglob("__init__.py")}
    assert "autograder.sandbox.levels" in on_disk
    assert {p for p in on_disk if not any(fnmatch.fnmatchcase(p, pattern) for pattern in include)} == set()


def test_the_templates_ship_with_the_package():
    """Every file exports.py renders is package data in pyproject.toml (an installed grader can make the zip and the
    workflow), and the folder holds nothing else."""
    import fnmatch
    import tomllib

    from autograder import exports

    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["autograder"]
    shipped = sorted(p.name for p in exports.TEMPLATES.iterdir()
                     if any(fnmatch.fnmatch(f"templates/{p.name}", pattern) for pattern in data))
    assert shipped == sorted(p.name for p in exports.TEMPLATES.iterdir()) == [
        "github-workflow.yml", "run_autograder", "setup.sh"]


def test_every_lookup_goes_through_the_registry(course):
    """Checks name their driver and figure as objects of their own content package, never as strings."""
    for assignment in course.assignments.values():
        for name, cls in assignment.registry.checks.items():
            assert callable(cls.driver) and not isinstance(cls.driver, str), name
            owner = sys.modules[cls.__module__].__name__.split(".")[0]
            assert cls.driver.__module__.split(".")[0] == owner, name
            assert getattr(cls, "view", None) is None or callable(cls.view), name


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """The fixture course, copied (its release is written beside it)."""
    folder = tmp_path_factory.mktemp("toy") / "course"
    shutil.copytree(FIXTURE, folder)
    return folder


def run(toy, *args, **kwargs):
    return subprocess.run([sys.executable, "-m", "autograder", "--config", str(toy / "course.toml"), *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=600, **kwargs)


def submission(toy, tmp, body: str) -> Path:
    nb = nbformat.read(toy / "release" / "toy_descent" / "toy.ipynb", as_version=4)
    graded_cells(nb)["descend"][-1].source = body
    path = tmp / "toy.ipynb"
    nbformat.write(nb, path)
    return path


@pytest.mark.slow
def test_a_new_assignment_is_content_only(toy, tmp_path):
    """Released with nbgrader, graded (reference, blank, a named mistake), calibrated and reported, with no engine
    file naming it; its release holds the kit, its content and the record, never its mistakes."""
    proc = run(toy, "release")
    assert proc.returncode == 0, proc.stderr
    release = toy / "release" / "toy_descent"
    assert sorted(p.name for p in release.iterdir()) == [
        "gradekit", "public_checks.json", "requirements.txt", "toy.ipynb", "toy_descent"]
    assert "numpy==" in (release / "requirements.txt").read_text()
    assert not list(release.rglob("mistakes.py"))

    course = config.load(toy / "course.toml")
    assignment = course.assignment()
    full = grade(toy / "source" / "toy_descent" / "toy.ipynb", assignment)
    assert full.score == full.max_score == 3
    blank = grade(release / "toy.ipynb", assignment)
    assert blank.score == 0 and "not implemented yet" in blank.results[0].output
    wrong = grade(submission(toy, tmp_path, "def descend(x, grad, lr):\n    return x + lr * grad\n"), assignment)
    assert wrong.score == 0 and "Likely mistake: the sign is flipped" in wrong.results[0].output

    proc = run(toy, "calibrate", "--seeds", "20", "--jobs", "1")
    assert proc.returncode == 0 and "descent_converges" in proc.stdout, proc.stderr

    submitted = toy / "submitted" / "ada" / "toy_descent"
    submitted.mkdir(parents=True)
    shutil.copy(toy / "source" / "toy_descent" / "toy.ipynb", submitted / "toy.ipynb")
    proc = run(toy, "grade-all", str(toy), "--jobs", "1")
    assert proc.returncode == 0, proc.stderr
    grades = next(toy.rglob("grades-toy_descent.csv")).read_text()
    assert "ada" in grades and "3" in grades

    proc = subprocess.run([sys.executable, "-m", "gradekit", "toy.ipynb"], cwd=release, capture_output=True, text=True,
                          timeout=300, env={"PATH": "/usr/bin:/bin"})
    assert proc.returncode == 1 and "not implemented yet" in proc.stdout, proc.stdout + proc.stderr


SPY = '''
def policy_gradient_update(logits, action, reward, lr):
    import importlib, os, sys, pathlib
    found = []
    for name in ("autograder", "autograder.reference", "mistakes", "tests", "tests.conftest", "source"):
        try:
            importlib.import_module(name)
            found.append("import " + name)
        except Exception:
            pass
    import gradekit, week03_policy_gradients
    roots = {pathlib.Path(p) for p in sys.path if p and "-packages" not in p}
    for module in (gradekit, week03_policy_gradients):
        here = pathlib.Path(module.__file__)
        roots |= {here.parent, here.parent.parent, here.resolve().parent.parent, here.resolve().parent.parent.parent}
    for root in roots:
        for depth in ("*", "*/*", "*/*/*"):
            try:
                paths = list(root.glob(depth))
            except OSError:
                continue
            for path in paths:
                if "-packages" in str(path) or "python3." in str(path):
                    continue  # the environment's packages (their own conftest.py files) are not ours
                if path.name in ("mistakes.py", "course.toml", "conftest.py") or path.suffix == ".ipynb":
                    try:
                        found.append(f"read {path}: {path.read_text()[:40]!r}")
                    except OSError:
                        pass
    raise RuntimeError("FOUND=" + repr(sorted(set(found))))
'''


def test_the_kernel_can_import_or_read_nothing_grader_only(assignment, tmp_path):
    """From inside a graded function: no grader-only module imports, and no reference notebook, named mistakes,
    course.toml or test file can be read through any import path, the kit's or the content's folders, or theirs."""
    from tests.conftest import fill_release

    path = fill_release(assignment, tmp_path / "spy.ipynb", {"policy_gradient_update": SPY})
    report = grade(path, assignment, only={"policy_gradient_update_exact"}, figures=False)
    output = report.results[0].output
    found = re.search(r"FOUND=(\[.*?\])", output)
    assert found, output
    assert found.group(1) == "[]", found.group(1)
