"""source/ -> release/ with the real nbgrader, then a leak check: no solution line and no marker may reach students.

nbgrader gets only the notebook of ``source/<id>/`` (it would ship every other file there, such as the grader-only
``mistakes.py``). Beside the notebook, the release gets the student's public checks: the kit (``gradekit/``), the
assignment's content packages (``Assignment.packages``: its checks, drivers and figures, and those it imports),
``public_checks.json`` with the reference's recorded answers to the public cases (``record_public``) and a pinned
``requirements.txt`` for the student's own machine. The reference code and the named mistakes stay with the grader.

nbgrader's settings (course id, course root, a throwaway gradebook) are derived from course.toml here; there is no
nbgrader_config.py to keep in sync. nbgrader gets the source with a grade cell per check and the questions' points
from course.toml (``nbgrader_source.py``). The gradebook here is a throwaway; an nbgrader course's own
gradebook is written by ``grade-all`` (``gradebook.py``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat

from gradekit import checks
from gradekit.protocol import plain

from autograder import pins
from autograder.config import KIT
from autograder.feedback import reference_runs, reference_runs_key
from autograder.gradebook import nbgrader_settings
from autograder.nbgrader_source import write_nbgrader_source
from autograder.notebook import cell_source, graded_cells
from autograder.reference import reference
MARKERS = re.compile(r"BEGIN SOLUTION|END SOLUTION|BEGIN HIDDEN TESTS|END HIDDEN TESTS|BEGIN MARK SCHEME")


class ReleaseError(RuntimeError):
    pass


def nbgrader_args(course, assignment, course_dir: Path, db: Path) -> list[str]:
    return [
        sys.executable, "-m", "nbgrader", "generate_assignment", assignment.id,
        f"--CourseDirectory.root={course_dir}",
        f"--CourseDirectory.course_id={course.id}",
        f"--CourseDirectory.db_url=sqlite:///{db}",
        "--force", "--log-level=WARN",
    ]


def generate(course, assignment, out_dir: Path) -> Path:
    """Run nbgrader generate_assignment on the assignment's source; write the release under ``out_dir``."""
    record = record_public(assignment)  # first: it reuses the committed release's learning curves, replaced below
    with tempfile.TemporaryDirectory(prefix="nbgrader-") as tmp:
        course_dir = Path(tmp)
        (course_dir / "source" / assignment.id).mkdir(parents=True)
        write_nbgrader_source(assignment, course_dir / "source" / assignment.id)  # + grade cells, points, submit cell
        env = dict(os.environ, PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
        proc = subprocess.run(nbgrader_args(course, assignment, course_dir, course_dir / "gradebook.db"),
                              cwd=course_dir, env=env, capture_output=True, text=True, timeout=300)
        made = course_dir / "release" / assignment.id
        if proc.returncode != 0 or not made.is_dir():
            raise ReleaseError(f"nbgrader generate_assignment failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        target = Path(out_dir) / assignment.id
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(made, target)
    for package in [KIT, *assignment.packages]:
        shutil.copytree(package, target / package.name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    (target / "public_checks.json").write_text(json.dumps(record, sort_keys=True) + "\n")
    (target / "requirements.txt").write_text(student_requirements(assignment))
    problems = allow_list_problems(assignment, target) + leaks(assignment.source, target / assignment.notebook)
    if problems:
        raise ReleaseError("the release leaks reference material:\n" + "\n".join(problems))
    return target / assignment.notebook


def allow_list_problems(assignment, folder: Path) -> list[str]:
    """What a release folder holds beyond its allow-list: the notebook, the kit, the content packages, the record
    and the requirements. Anything else (a file nbgrader copied from source/, a stray module) is a problem."""
    allowed = {assignment.notebook, "public_checks.json", "requirements.txt", KIT.name,
               *(p.name for p in assignment.packages)}
    return [f"{p.name} is not on the release's allow-list" for p in sorted(folder.iterdir()) if p.name not in allowed]


def student_requirements(assignment) -> str:
    """The release's ``requirements.txt``: the packages course.toml lists for students (``student_packages``) and what
    they need, pinned as in the course's ``requirements.lock`` (``pins.student_requirements``); nothing of the
    grader's own (no nbgrader)."""
    try:
        pinned = pins.student_requirements(list(assignment.student_packages), assignment.root / "requirements.lock")
    except KeyError as exc:
        raise ReleaseError(f"student_packages of {assignment.id}: {exc}") from exc
    return (f"# {assignment.title}: what the notebook and its public checks need on your own machine or on Colab.\n"
            "# pip install -r requirements.txt   (generated from the course's pins by `release`; do not edit)\n" + pinned)


def record_public(assignment) -> dict:
    """What the public checks need from the reference, as recorded values: for each exactness check its fixed
    cases, the reference's answers and the known mistakes' answers; for the other checks their cases and answers
    or, for behaviour checks, the reference's learning curves (the same ones the feedback page draws)."""
    expected = reference(assignment)
    entries = []
    for check in (c for c in assignment.checks if c.public):
        settings = {k: v for k, v in vars(check).items() if k != "name"}
        cases = check.fixed_cases() if isinstance(check, checks.ExactCheck) else check.cases(expected)
        entry = {"name": check.name, "settings": settings, "cases": json.loads(json.dumps(cases))}
        if isinstance(check, checks.ConvergenceCheck):
            entry["reference"] = reference_runs(assignment, check.name)
            entry["reference_key"] = reference_runs_key(assignment, check.name)  # what the runs were made from
        else:
            entry["expected"] = [short(expected.expected(check, case)) for case in cases]
        if isinstance(check, checks.ExactCheck):
            entry["mistakes"] = [short(expected.mistaken(check, case)) for case in cases]
        entries.append(entry)
    setup = cell_source(nbformat.read(assignment.source, as_version=4), assignment.setup_cell)
    return {"assignment": assignment.id, "title": assignment.title, "content": assignment.content.name,
            "setup_cell": assignment.setup_cell, "setup_source": setup,
            "graded_cells": list(assignment.graded_cells), "checks": entries,
            "hidden": [{"name": c.name, "title": c.title, "functions": list(c.functions)}
                       for c in assignment.checks if not c.public]}


def short(value):
    """Plain data with numbers to 7 significant digits: finer than every check's tolerance, half the size."""
    value = plain(value)
    if isinstance(value, dict):
        return {k: short(v) for k, v in value.items()}
    if isinstance(value, list):
        return [short(v) for v in value]
    return float(f"{value:.7g}") if isinstance(value, float) else value


def solution_lines(source: Path) -> set[str]:
    """Lines inside BEGIN/END SOLUTION regions of the source that appear nowhere outside such regions."""
    inside, outside = set(), set()
    for cell in nbformat.read(source, as_version=4).cells:
        in_region = False
        for line in cell.source.splitlines():
            stripped = line.strip()
            if "BEGIN SOLUTION" in stripped:
                in_region = True
            elif "END SOLUTION" in stripped:
                in_region = False
            elif stripped:
                (inside if in_region else outside).add(stripped)
    return inside - outside


def leaks(source: Path, release: Path) -> list[str]:
    """Every marker, solution line or hidden cell of ``source`` that can be found in ``release``, or in the public
    checks' files beside it."""
    text = release.read_text()
    problems = [f"marker {m.group(0)!r}" for m in MARKERS.finditer(text)]
    shipped = [p for p in release.parent.rglob("*") if p.is_file() and p != release and p.suffix in (".py", ".json")]
    secret = solution_lines(source)
    for path in shipped:
        lines = {line.strip() for line in path.read_text().splitlines()}
        problems += [f"solution line {line!r} in {path.name}" for line in sorted(secret & lines)]
        if path.name == "mistakes.py":
            problems.append("the known mistakes (mistakes.py) are in the release")
    released = {line.strip() for cell in nbformat.read(release, as_version=4).cells
                for line in cell.source.splitlines()}
    problems += [f"solution line {line!r}" for line in sorted(solution_lines(source) & released)]
    for cell in nbformat.read(release, as_version=4).cells:
        if cell.get("outputs"):
            problems.append(f"outputs in cell {cell.get('id')}")
    missing = set(graded_cells(nbformat.read(source, as_version=4))) - set(graded_cells(
        nbformat.read(release, as_version=4)))
    problems += [f"cell {grade_id!r} of the source is missing from the release" for grade_id in sorted(missing)]
    return problems


def same_file(a: Path, b: Path) -> bool:
    """Equal files; a recorded JSON may differ in the last digits of its numbers (another CPU's float rounding)."""
    if not (a.exists() and b.exists()):
        return False
    if a.suffix != ".json":
        return a.read_bytes() == b.read_bytes()
    return close(json.loads(a.read_text()), json.loads(b.read_text()))


def close(a, b) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(close(x, y) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, (int, float)) and isinstance(b, (int, float)) and abs(a - b) <= 1e-4 * max(1, abs(b))
    return a == b


def is_stale(course, assignment) -> list[str]:
    """Differences between the committed release and one generated now (empty when in sync)."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh = generate(course, assignment, Path(tmp))
        committed = assignment.release
        if not committed.exists():
            return [f"{committed} does not exist"]
        extra = sorted({p.relative_to(fresh.parent) for p in fresh.parent.rglob("*") if p.is_file()} |
                       {p.relative_to(committed.parent) for p in committed.parent.rglob("*") if p.is_file()
                        and "__pycache__" not in p.parts} - {Path(assignment.notebook)})
        changed = [f"{name} differs" for name in extra if not same_file(committed.parent / name, fresh.parent / name)]
        if changed:
            return changed
        a, b = nbformat.read(committed, as_version=4), nbformat.read(fresh, as_version=4)
        if len(a.cells) != len(b.cells):
            return [f"{committed} has {len(a.cells)} cells, a fresh release has {len(b.cells)}"]
        return [f"cell {x.get('id')} differs" for x, y in zip(a.cells, b.cells)
                if (x.cell_type, x.source, x.metadata) != (y.cell_type, y.source, y.metadata)]


def write_course_source(course, assignment, course_dir: Path) -> Path:
    """``source/<assignment>/`` of an nbgrader course: the nbgrader notebook and every other file of our release (the
    public checks), so the instructor's own ``nbgrader generate_assignment`` makes the same release."""
    settings = nbgrader_settings(Path(course_dir))
    target = Path(settings.root) / "source" / assignment.id
    with tempfile.TemporaryDirectory() as tmp:
        released = generate(course, assignment, Path(tmp)).parent
        target.mkdir(parents=True, exist_ok=True)
        for path in sorted(released.rglob("*")):
            if path.is_file() and path.suffix != ".ipynb" and "__pycache__" not in path.parts:
                (target / path.relative_to(released)).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target / path.relative_to(released))
    return write_nbgrader_source(assignment, target)
