"""Reading notebooks: submissions (untrusted, any shape) and the instructor's source (the reference solutions)."""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path

import nbformat


MAX_BYTES = 64 << 20  # the released notebook is ~40 KB; anything this big is not a submission to run


class SubmissionError(Exception):
    """The file cannot be graded at all; the message tells its author what to do."""


def read_submission(path: Path, assignment) -> nbformat.NotebookNode:
    """Read a submission as nbformat 4, or raise SubmissionError with a message a student can act on."""
    if not Path(path).exists():
        raise SubmissionError(f"No file {Path(path).name} was submitted. Submit the released {assignment.notebook} "
                              "with your answers.")
    if Path(path).stat().st_size > MAX_BYTES:
        raise SubmissionError(f"The submission is {Path(path).stat().st_size >> 20} MB; a notebook for this assignment "
                              f"is well under {MAX_BYTES >> 20} MB. Clear the outputs (Kernel > Restart & Clear "
                              "Output) and submit again.")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SubmissionError(f"Could not read the submission file: {exc}") from exc
    if not text.strip():
        raise SubmissionError("The submission file is empty. Upload the .ipynb notebook you worked in.")
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SubmissionError(f"The submission is not a Jupyter notebook (not valid JSON: {exc}). Upload the .ipynb "
                              "file itself, saved from Jupyter.") from exc
    if not isinstance(raw, dict) or "cells" not in raw and "worksheets" not in raw:
        raise SubmissionError("The submission is JSON but not a Jupyter notebook (no cells).")
    if raw.get("nbformat") != 4:
        raise SubmissionError(f"The notebook has format version {raw.get('nbformat')}; this assignment needs format 4. "
                              f"Start from the released {assignment.notebook} and save it with Jupyter.")
    try:
        nb = nbformat.reads(text, as_version=4)
    except Exception as exc:  # noqa: BLE001 - nbformat raises many kinds for malformed notebooks
        raise SubmissionError(f"The notebook is malformed: {exc}") from exc
    graded = graded_cells(nb)
    if not any(name in graded for name in assignment.graded_cells) and assignment.setup_cell not in graded:
        raise SubmissionError(f"This notebook has none of the graded cells of {assignment.title} "
                              f"({', '.join(assignment.graded_cells)}): is it the notebook for another assignment? "
                              f"Start from the released {assignment.notebook}.")
    return nb


def graded_cells(nb) -> dict[str, list]:
    """Cells by nbgrader ``grade_id``, in notebook order (a student may have duplicated one)."""
    cells: dict[str, list] = {}
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if isinstance(meta, dict) and isinstance(meta.get("grade_id"), str):
            cells.setdefault(meta["grade_id"], []).append(cell)
    return cells


def locked_cell_changes(submission, release) -> list[str]:
    """Locked cells of the release that the submission edited or deleted, judged by nbgrader's checksums.

    The grader never runs the student's copies of locked cells (it uses the instructor's ``setup`` cell), so an edit
    cannot change a grade; it is reported so that a person can look, and nothing is silently restored.
    """
    theirs = graded_cells(submission)
    changes = []
    for grade_id, cells in graded_cells(release).items():
        meta = cells[0].metadata["nbgrader"]
        if not meta.get("locked") or meta.get("solution") or "checksum" not in meta:
            continue
        if grade_id not in theirs:
            changes.append(f"locked cell '{grade_id}' was deleted")
        elif any(checksum(c) != meta["checksum"] for c in theirs[grade_id]):
            changes.append(f"locked cell '{grade_id}' was edited")
    return changes


def checksum(cell) -> str:
    """nbgrader's checksum of a cell, as nbgrader writes it into the release's locked and graded cells (the same steps
    as ``nbgrader.utils.compute_checksum``, which ``tests/test_grade.py`` compares it with): importing nbgrader takes
    a second or more, since its package imports its server extensions."""
    meta = cell.metadata.get("nbgrader", {})
    grade, solution = meta.get("grade", False), meta.get("solution", False)
    locked = False if solution else True if grade else meta.get("locked", False)
    digest = hashlib.md5()  # noqa: S324 - nbgrader's choice: a checksum, not a security measure
    for part in (cell.source, cell.cell_type, str(grade), str(solution), str(locked), meta["grade_id"]):
        digest.update(part.encode("utf-8"))
    if grade:
        digest.update(str(float(meta["points"])).encode("utf-8"))
    return digest.hexdigest()


def cell_source(nb, grade_id: str) -> str:
    cells = graded_cells(nb).get(grade_id)
    if not cells:
        raise KeyError(grade_id)
    return cells[-1].source


@functools.lru_cache(maxsize=4)
def _reference(path: str, mtime: float, setup_cell: str, names: tuple[str, ...]) -> dict:
    import matplotlib  # lazy: 0.6 s that a grade's start does without; only the reference's setup cell needs it

    matplotlib.use("Agg")
    nb = nbformat.read(path, as_version=4)
    namespace: dict = {"__name__": "reference"}
    for grade_id in (setup_cell, *names):
        exec(compile(cell_source(nb, grade_id), f"<reference {grade_id}>", "exec"), namespace)  # noqa: S102
    return {name: namespace[name] for name in names}


def reference_functions(assignment) -> dict:
    """The reference implementations: the solution cells of the instructor's source notebook, run in this process."""
    path = assignment.source
    return _reference(str(path), path.stat().st_mtime, assignment.setup_cell, assignment.graded_cells)


# ------------------------------------------------------------------------------- which assignment is this notebook?
class AssignmentUnknown(SubmissionError):
    """No assignment of course.toml, or more than one, matches a submitted notebook; the message says what to do."""


def grade_ids(path: Path) -> set[str]:
    """The nbgrader grade_ids of every cell of the notebook at ``path``; empty if it cannot be read as a notebook."""
    try:
        if Path(path).stat().st_size > MAX_BYTES:
            return set()
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
        cells = raw.get("cells") if isinstance(raw, dict) else None
        metas = [c.get("metadata", {}).get("nbgrader", {}) for c in cells if isinstance(c, dict)] if isinstance(
            cells, list) else []
        return {m["grade_id"] for m in metas if isinstance(m, dict) and isinstance(m.get("grade_id"), str)}
    except (OSError, UnicodeDecodeError, ValueError, AttributeError, TypeError):
        return set()


@functools.lru_cache(maxsize=16)
def _release_ids(path: str, mtime: float) -> frozenset[str]:
    return frozenset(grade_ids(Path(path)))


def release_ids(assignment) -> frozenset[str]:
    """The grade_ids of every cell of the assignment's released notebook (locked, markdown and graded cells)."""
    path = assignment.release
    return _release_ids(str(path), path.stat().st_mtime) if path.exists() else frozenset(assignment.graded_cells)


def detect_assignment(course, path: Path):
    """The assignment of course.toml that the notebook at ``path`` is for, or AssignmentUnknown saying why not.

    (1) The assignment whose graded cells (course.toml ``graded_cells``, by nbgrader grade_id) are all in the notebook;
    (2) else the one with the most cells of its release in it (locked and text cells count too, so a deleted graded
    cell does not make it another assignment's notebook); (3) else, or to break a tie, the one whose ``notebook`` is
    the file's name. A notebook matching several, or none, is refused: a guess could give another assignment's grade."""
    assignments = list(course.assignments.values())
    ids, name = grade_ids(path), Path(path).name

    def one_of(pool: list, why: str):
        named = [a for a in pool if a.notebook == name]
        if len(pool) == 1 or len(named) == 1:
            return (named or pool)[0]
        listed = "; ".join(f"{a.title} ({a.notebook})" for a in pool)
        raise AssignmentUnknown(f"{name} {why} of several assignments: {listed}. Submit each assignment's released "
                                "notebook on its own, under its own name.")

    complete = [a for a in assignments if set(a.graded_cells) <= ids]
    if complete:
        return one_of(complete, "has all the graded cells")
    counts = {a.id: len(release_ids(a) & ids) for a in assignments}
    if max(counts.values()) > 0:
        return one_of([a for a in assignments if counts[a.id] == max(counts.values())], "has as many cells")
    named = [a for a in assignments if a.notebook == name]
    if len(named) == 1 or len(assignments) == 1:
        return (named or assignments)[0]
    names = ", ".join(f"{a.notebook} ({a.title})" for a in assignments)
    raise AssignmentUnknown(f"Could not tell which assignment {name} is for: it has no cell of any assignment's "
                            f"released notebook and its name is none of {names}. Submit the released notebook "
                            "with your answers, without renaming it or removing its cells.")


IGNORED_PARTS = {"__MACOSX", "__pycache__"}  # and hidden folders such as .ipynb_checkpoints or .git


def notebooks_in(folder: Path) -> list[Path]:
    """Every notebook under ``folder``, except copies that Jupyter, Git or macOS zips keep in hidden folders."""
    return sorted(p for p in folder.rglob("*.ipynb") if p.is_file() and not any(
        part in IGNORED_PARTS or part.startswith(".") for part in p.relative_to(folder).parts))


# ---------------------------------------------------------------------------- which notebook of a submitted folder?
def find_notebook(folder: Path, assignment) -> Path:
    """The notebook to grade in a submitted folder (Gradescope's ``submission/``, a student's folder in ``grade-all``,
    a student's repository): the one rule for every way in, so ``grade`` and ``grade-all`` tell a student the same.

    A notebook with the released name wins, so scratch notebooks next to it do no harm; a single notebook under
    another name is graded too. Anything else is refused with a message the student can act on, never guessed."""
    notebooks = notebooks_in(folder)
    named = [p for p in notebooks if p.name == assignment.notebook]
    if len(named) == 1:
        return named[0]
    if len(notebooks) == 1:
        return notebooks[0]
    if not notebooks:
        raise SubmissionError(f"No notebook (.ipynb file) was submitted. Submit the released {assignment.notebook} "
                              "with your answers.")
    listed = ", ".join(str(p.relative_to(folder)) for p in named or notebooks)
    if named:
        raise SubmissionError(f"{len(named)} copies of {assignment.notebook} were submitted ({listed}), so the "
                              "grader cannot tell which one to grade. Submit only one.")
    raise SubmissionError(f"{len(notebooks)} notebooks were submitted ({listed}) and none is named "
                          f"{assignment.notebook}, so the grader cannot tell which one to grade. Submit only your "
                          f"{assignment.notebook}.")


def submitted_notebook(submission: Path, assignment) -> Path:
    """The notebook to grade of a submission given as a notebook (itself) or as a folder (``find_notebook``)."""
    submission = Path(submission)
    return find_notebook(submission, assignment) if submission.is_dir() else submission


def check_assignment(course, notebook: Path, assignment) -> None:
    """Refuse (SubmissionError) a notebook that is plainly another assignment's: its cells say so, whatever its name."""
    if not grade_ids(notebook):
        return  # unreadable, or no nbgrader cells: grade() says what is wrong with it
    try:
        detected = detect_assignment(course, notebook)
    except AssignmentUnknown:
        return
    if detected.id != assignment.id:
        raise SubmissionError(f"{notebook.name} is the notebook of {detected.title} ({detected.notebook}), not of "
                              f"{assignment.title}. Submit your {assignment.notebook} here, and {detected.notebook} "
                              "to its own assignment.")
