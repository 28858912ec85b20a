"""source/ -> release/ with the real nbgrader, then a leak check: no solution line and no marker may reach students.

nbgrader's settings (course id, course root, a throwaway gradebook) are derived from course.toml here; there is no
nbgrader_config.py to keep in sync. The gradebook lives in a temporary directory: generate_assignment needs one to
record the assignment, but the course keeps its grades in results.json files, not in nbgrader's database.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat

from autograder.notebook import graded_cells

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
    with tempfile.TemporaryDirectory(prefix="nbgrader-") as tmp:
        course_dir = Path(tmp)
        shutil.copytree(assignment.source.parent, course_dir / "source" / assignment.id)
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
    problems = leaks(assignment.source, target / assignment.notebook)
    if problems:
        raise ReleaseError("the release leaks reference material:\n" + "\n".join(problems))
    return target / assignment.notebook


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
    """Every marker, solution line or hidden cell of ``source`` that can be found in ``release``."""
    text = release.read_text()
    problems = [f"marker {m.group(0)!r}" for m in MARKERS.finditer(text)]
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


def is_stale(course, assignment) -> list[str]:
    """Differences between the committed release and one generated now (empty when in sync)."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh = generate(course, assignment, Path(tmp))
        committed = assignment.release
        if not committed.exists():
            return [f"{committed} does not exist"]
        a, b = nbformat.read(committed, as_version=4), nbformat.read(fresh, as_version=4)
        if len(a.cells) != len(b.cells):
            return [f"{committed} has {len(a.cells)} cells, a fresh release has {len(b.cells)}"]
        return [f"cell {x.get('id')} differs" for x, y in zip(a.cells, b.cells)
                if (x.cell_type, x.source, x.metadata) != (y.cell_type, y.source, y.metadata)]
