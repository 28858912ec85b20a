"""What nbgrader's generate_assignment gets: the source notebook with course.toml's points in it.

``nbgrader_notebook`` is the source notebook as nbgrader sees it: one autograder-test cell per check (nbgrader
``grade: true, solution: false, locked: true``, ``grade_id`` = the check's name, ``points`` from course.toml), placed
after the public-check cell of the check's function, and the points of the reflection questions (manually graded
markdown answer cells) from course.toml; ``write_nbgrader_source`` puts the release's first cell (``submission_cell``:
what to submit) before it. ``release.py`` gives nbgrader this notebook, so course.toml stays the one place for points
and the committed source carries no copy of them. A check's cell runs its public check, so nbgrader's Validate fails,
with the check's message, on what the public checks fail; a grader-only check's cell is a comment. The cells fail
under ``nbgrader autograde`` (``NBGRADER_EXECUTION``), so nbgrader never scores a check itself: ``grade-all`` does.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat

from autograder.config import ConfigError
from autograder.notebook import graded_cells

IMPORT_CHECK = re.compile(r"^\s*from\s+[\w.]+\s+import\s+check\s*$", re.MULTILINE)
DEFAULT_IMPORT = "from gradekit import check"


SUBMIT_ID = "what-to-submit"


def submission_cell(assignment):
    """The release's first cell, made from course.toml: what to submit, how, and what is graded."""
    graded = ", ".join(f"`{name}`" for name in assignment.graded_cells)
    text = (f"**What to submit.** This notebook, `{assignment.notebook}`, with your answers, under that name: upload "
            "it on Gradescope, or leave it in your assignment folder and submit it in Jupyter's Assignments tab if your "
            f"course uses nbgrader.\n\n**What is graded.** Only the graded cells: {graded}. Each is run **on its own** "
            "after the setup cell, in a fresh Python, so everything a function needs must be inside its cell; the rest "
            "of the notebook is for you and is not run. The grader runs the original read-only cells, not edited "
            "copies." + (" The reflection questions at the end are graded by a person." if assignment.questions
                         else "") + "\n\n"
            f"**Check before you submit.** Run the `check(...)` cells, or `python -m gradekit {assignment.notebook}` "
            "in this folder (first `pip install -r requirements.txt`): the grader's own rules on the public cases; "
            "hidden cases exist.")
    return nbformat.v4.new_markdown_cell(text, id=SUBMIT_ID, metadata={"nbgrader": {
        "grade": False, "grade_id": SUBMIT_ID, "locked": True, "schema_version": 3, "solution": False,
        "task": False}})


def nbgrader_meta(grade_id: str, **flags) -> dict:
    return {"nbgrader": {"grade": False, "grade_id": grade_id, "locked": False, "schema_version": 3,
                         "solution": False, "task": False, **flags}}


def check_cell_source(check, import_line: str, public: bool) -> str:
    """The cell's code. Under ``nbgrader autograde`` it fails, so nbgrader never gives a check's points itself (a
    pass there would only mean the public cases passed); ``grade-all`` writes the grader's score afterwards."""
    head = (f'# Graded by the course\'s autograder after you submit: "{check.title}", {check.points:g} point(s).\n'
            "import os as _os\n"
            "assert _os.environ.get('NBGRADER_EXECUTION') != 'autograde', 'scored by the course autograder (grade-all)'"
            "\n")
    if not public:
        return head + ("# A grader-only check: it has no public version, so Validate does not run it here. Do not "
                       "edit this cell.\n")
    return head + (
        "# Validate runs its public check here (the fixed cases; the grader adds hidden ones) and fails with the "
        "check's\n# message if it fails. Do not edit this cell.\n"
        "import contextlib as _contextlib, io as _io\n"
        f"{import_line}\n"
        "with _contextlib.redirect_stdout(_io.StringIO()) as _out:\n"
        f"    _passed = check({check.name!r})\n"
        "_message = _out.getvalue().split('\\n\\n', 1)[-1]  # without the header the check cells above print\n"
        "print(_message)\n"
        f"assert _passed, 'the public check {check.name} failed:\\n' + _message\n")


def check_cell(check, import_line: str, public: bool) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(check_cell_source(check, import_line, public),
                                     metadata=nbgrader_meta(check.name, grade=True, locked=True,
                                                            points=check.points))
    cell["id"] = f"test-{check.name}".replace("_", "-")
    return cell


def anchor(nb, function: str) -> int:
    """Index after the graded cell of ``function`` and the public-check cells right below it."""
    ids = [c.get("metadata", {}).get("nbgrader", {}).get("grade_id") for c in nb.cells]
    if function not in ids:
        raise ConfigError(f"graded cell `{function}` is not in the source notebook")
    at = len(ids) - ids[::-1].index(function)
    while at < len(nb.cells) and nb.cells[at].cell_type == "code" and IMPORT_CHECK.search(nb.cells[at].source):
        at += 1
    return at


def nbgrader_notebook(assignment) -> nbformat.NotebookNode:
    """The source notebook with a grade cell per check and the questions' points, both from course.toml."""
    nb = nbformat.read(assignment.source, as_version=4)
    cells = graded_cells(nb)
    where = f"assignments.{assignment.id}.questions"
    for name, points in assignment.questions:
        found = cells.get(name, [])
        meta = found[0].metadata["nbgrader"] if found else {}
        if not (found and found[0].cell_type == "markdown" and meta.get("solution") and meta.get("grade")):
            raise ConfigError(f"{where}.{name}: the source notebook has no manually graded answer cell with this "
                              "grade_id (a markdown cell with nbgrader solution and grade set)")
        meta["points"] = points
    for name, found in cells.items():
        meta = found[0].metadata["nbgrader"]
        if meta.get("grade") and meta.get("solution") and name not in dict(assignment.questions):
            raise ConfigError(f"{where}.{name} is missing: the source notebook has a manually graded cell `{name}`")
    taken = set(cells) - set(assignment.graded_cells) - {q for q, _ in assignment.questions}
    clash = sorted(taken & {c.name for c in assignment.checks})
    if clash:
        raise ConfigError(f"assignments.{assignment.id}.checks.{clash[0]}: a cell of the source notebook already has "
                          "this grade_id")
    imports = [m.group(0).strip() for c in nb.cells if c.cell_type == "code" for m in [IMPORT_CHECK.search(c.source)]
               if m]
    import_line = imports[0] if imports else DEFAULT_IMPORT
    placed: dict[int, list] = {}
    for check in assignment.checks:
        at = max(anchor(nb, f) for f in check.functions)
        placed.setdefault(at, []).append(check_cell(check, import_line, check.public))
    for at in sorted(placed, reverse=True):
        nb.cells[at:at] = placed[at]
    return nb


def write_nbgrader_source(assignment, folder: Path) -> Path:
    """What nbgrader's generate_assignment gets: ``nbgrader_notebook`` after the release's submission cell."""
    nb = nbgrader_notebook(assignment)
    nb.cells.insert(0, submission_cell(assignment))
    path = Path(folder) / assignment.notebook
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def check_order(assignment) -> list[str]:
    """The checks' names in the order of their grade cells in the notebook."""
    order = [c.metadata["nbgrader"]["grade_id"] for c in nbgrader_notebook(assignment).cells
             if c.metadata.get("nbgrader", {}).get("grade_id") in {k.name for k in assignment.checks}]
    return order
