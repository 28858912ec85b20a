"""nbgrader as the instructor's home: the gradebook, late work and nbgrader's feedback.

The grade cells nbgrader knows (one per check, points from course.toml) are made at release (``nbgrader_source.py``).

**Gradebook.** ``grade-all`` on an nbgrader course (a folder with ``nbgrader_config.py`` or ``gradebook.db``; the
instructor's own settings are read from ``nbgrader_config.py``) writes each check's score as the ``auto_score`` of its
grade cell, marks answered reflection questions as needing a manual grade (an unanswered one gets 0, as nbgrader does),
sets the submission's timestamp from nbgrader's ``timestamp.txt`` and its ``late_submission_penalty`` from the rule in
course.toml. Manual scores that a person already gave are never touched. The check cells fail under ``nbgrader
autograde`` (``NBGRADER_EXECUTION``), so nbgrader never scores a check itself; run ``grade-all`` after it if you run
both (results that are up to date are not regraded, only written back).

**results.json** gets ``extra_data.late`` (``timestamp.txt`` against course.toml's ``due``) and
``extra_data.answers`` (the reflection answers) from ``annotate``, called by ``grade``; in an nbgrader course the
lateness is the gradebook's, so an extension granted there counts.

**Feedback.** Our files stay in ``results/<student>/<assignment>/`` (nbgrader's ``autograde --force`` deletes its
``autograded/`` folders and ``generate_feedback --force`` its ``feedback/`` folders). For nbgrader's feedback,
``grade-all`` also writes the autograded notebook: each check's cell shows its verdict and message, and a first cell
holds our feedback page, so ``nbgrader generate_feedback`` and ``release_feedback`` carry it to the student inside
``<notebook>.html``; a copy of ``feedback.html`` lands beside it in ``feedback/<student>/<assignment>/``.
"""

from __future__ import annotations

import datetime
import html
import math
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

import nbformat
from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

from autograder.notebook import checksum, graded_cells
from autograder.results import Results, write_atomic

FEEDBACK_CELL = "autograder-feedback"  # id of the first cell of the autograded notebook: our feedback page


# ---------------------------------------------------------------------------------------------- the nbgrader course
@dataclass(frozen=True)
class Settings:
    root: Path
    course_id: str
    db_url: str
    submitted: Path
    autograded: Path
    feedback: Path

    @property
    def has_gradebook(self) -> bool:
        if not self.db_url.startswith("sqlite:///"):
            return True
        return Path(self.db_url.removeprefix("sqlite:///")).exists()


def nbgrader_settings(course_dir: Path) -> Settings:
    """The course's nbgrader settings, from its ``nbgrader_config.py`` if it has one (as nbgrader reads it when run
    in that folder), else nbgrader's defaults for that folder."""
    from nbgrader.coursedir import CourseDirectory  # lazy: nbgrader costs ~1 s; only nbgrader courses need it

    course_dir = Path(course_dir).resolve()
    config = Config()
    if (course_dir / "nbgrader_config.py").exists():
        config = PyFileConfigLoader("nbgrader_config.py", path=str(course_dir)).load_config()
    # nbgrader's root defaults to the folder it runs in, and a relative one is relative to it: the course folder
    config.CourseDirectory.root = str(course_dir / config.CourseDirectory.get("root", "."))
    coursedir = CourseDirectory(config=config)
    root = Path(coursedir.root)
    return Settings(root, coursedir.course_id or "default_course", coursedir.db_url,
                    root / coursedir.submitted_directory, root / coursedir.autograded_directory,
                    root / coursedir.feedback_directory)


def is_nbgrader_course(course_dir: Path) -> bool:
    return (Path(course_dir) / "nbgrader_config.py").exists() or (Path(course_dir) / "gradebook.db").exists()


# ------------------------------------------------------------------------------------------------------- late work
def read_timestamp(folder: Path) -> datetime.datetime | None:
    """nbgrader's ``timestamp.txt`` of a submission, as a naive UTC datetime (nbgrader's own parser), or None."""
    path = Path(folder) / "timestamp.txt"
    if not path.exists():
        return None  # without importing nbgrader: it takes a second or more (its package imports its server)
    from nbgrader.utils import parse_utc  # lazy: nbgrader costs ~1 s, as the comment above says

    try:
        text = path.read_text().strip()
        return parse_utc(text) if text else None
    except (OSError, ValueError):
        return None


def utc_naive(moment: datetime.datetime) -> datetime.datetime:
    return moment.astimezone(datetime.timezone.utc).replace(tzinfo=None)


def late_entry(assignment, timestamp: datetime.datetime | None, seconds_late: float | None = None) -> dict | None:
    """The late flag and penalty of a submission (results.json ``extra_data.late``), or None without a due date.

    ``seconds_late`` comes from nbgrader's gradebook when there is one (so an extension granted there counts);
    otherwise it is the timestamp minus the due date. The penalty is ``late_penalty_per_day`` of the assignment's
    points per started day, at most ``late_penalty_max`` of them."""
    if assignment.due is None:
        return None
    if seconds_late is None:
        seconds_late = 0.0 if timestamp is None else (timestamp - utc_naive(assignment.due)).total_seconds()
    seconds_late = max(0.0, float(seconds_late))
    days = math.ceil(seconds_late / 86400)
    fraction = min(assignment.late_penalty_max, assignment.late_penalty_per_day * days)
    return {"due": assignment.due.isoformat(), "timestamp": timestamp.isoformat() + "Z" if timestamp else None,
            "late": seconds_late > 0, "seconds_late": round(seconds_late), "days_late": days,
            "penalty": round(fraction * assignment.points, 4),
            "rule": f"{assignment.late_penalty_per_day:g} of {assignment.points:g} points per started day, at most "
                    f"{assignment.late_penalty_max:g}"}


def annotate(results: dict, notebook: Path, assignment, seconds_late: float | None = None) -> dict:
    """results.json with ``extra_data.late`` (when the submission has nbgrader's timestamp.txt and course.toml a due
    date) and ``extra_data.answers`` (the reflection answers, when the assignment has questions)."""
    extra = dict(results.get("extra_data", {}))
    folder = Path(notebook) if Path(notebook).is_dir() else Path(notebook).parent
    timestamp = read_timestamp(folder)
    if (folder / "timestamp.txt").exists() or seconds_late is not None:
        late = late_entry(assignment, timestamp, seconds_late)
        if late is not None:
            extra["late"] = late
            extra["late"]["penalty_applied"] = Results(results | {"extra_data": extra}).penalty
    if assignment.questions:
        extra["answers"] = answers(Path(notebook), assignment)
    return results | {"extra_data": extra}


# ------------------------------------------------------------------------------------------------ answers to extract
def answers(notebook_path: Path, assignment) -> dict[str, str | None]:
    """The student's answer to each reflection question; None when the cell is missing or still the release's."""
    try:
        if not Path(notebook_path).is_file():
            raise FileNotFoundError(notebook_path)
        nb = nbformat.read(notebook_path, as_version=4)
    except Exception:  # noqa: BLE001 - an unreadable or missing submission has no answers; its grade says why
        return {name: None for name, _ in assignment.questions}
    cells = graded_cells(nb)
    found = {}
    for name, _ in assignment.questions:
        cell = cells.get(name, [None])[-1]
        meta = cell.metadata.get("nbgrader", {}) if cell is not None else {}
        unchanged = cell is not None and "checksum" in meta and meta["checksum"] == checksum(cell)
        text = cell.source.strip() if cell is not None else ""
        found[name] = None if cell is None or unchanged or not text or text == "YOUR ANSWER HERE" else text
    return found


# ------------------------------------------------------------------------------------------------------ the gradebook
class GradebookError(RuntimeError):
    pass


def open_gradebook(settings: Settings):
    from nbgrader.api import Gradebook  # lazy: nbgrader costs ~1 s; a grade's annotate does without it

    return Gradebook(settings.db_url, settings.course_id)


def ensure_cells(gb, assignment) -> None:
    """The assignment's notebook and grade cells in the gradebook, with course.toml's points. Normally
    ``nbgrader generate_assignment`` made them from the release notebook; cells it did not know are added."""
    from nbgrader.api import MissingEntry  # lazy: nbgrader costs ~1 s; a grade's annotate does without it

    try:
        gb.find_assignment(assignment.id)
    except MissingEntry as exc:
        raise GradebookError(f"the gradebook has no assignment {assignment.id!r}: run nbgrader generate_assignment "
                             f"{assignment.id} in the course folder first") from exc
    if assignment.due is not None:
        gb.update_or_create_assignment(assignment.id, duedate=utc_naive(assignment.due))
    name = Path(assignment.notebook).stem
    gb.update_or_create_notebook(name, assignment.id)
    for check in assignment.checks:
        gb.update_or_create_grade_cell(check.name, name, assignment.id, max_score=float(check.points),
                                       cell_type="code")
    for question, points in assignment.questions:
        gb.update_or_create_grade_cell(question, name, assignment.id, max_score=float(points), cell_type="markdown")
        try:
            gb.find_solution_cell(question, name, assignment.id)
        except MissingEntry:
            gb.add_solution_cell(question, name, assignment.id)


def roster(settings: Settings) -> list[str]:
    if not settings.has_gradebook:
        return []
    with open_gradebook(settings) as gb:
        return sorted(s.id for s in gb.students)


def grade_row(gb, name: str, notebook, assignment, submitted):
    """The Grade of cell ``name`` in a submitted notebook, made if the cell was added after the submission."""
    from nbgrader.api import Grade, MissingEntry  # lazy: nbgrader costs ~1 s; a grade's annotate does without it

    try:
        return gb.find_grade(name, notebook, assignment.id, submitted.student.id)
    except MissingEntry:
        cell = gb.find_graded_cell(name, notebook, assignment.id)
        grade = Grade(cell_id=cell.id, notebook=submitted)
        gb.db.add(grade)
        return grade


def sync_student(gb, assignment, student: str, results: dict, timestamp, notebook_path: Path | None) -> dict | None:
    """Write one student's grade into the gradebook; return the late entry (from the gradebook's lateness)."""
    from nbgrader.api import Comment, MissingEntry  # lazy: nbgrader costs ~1 s; not for a grade's annotate

    gb.update_or_create_student(student)
    kwargs = {"timestamp": timestamp} if timestamp else {}
    with warnings.catch_warnings():  # nbgrader's add_submission trips SQLAlchemy's autoflush warnings; harmless
        warnings.simplefilter("ignore")
        submission = gb.update_or_create_submission(assignment.id, student, **kwargs)
    seconds_late = submission.total_seconds_late if timestamp else 0.0
    late = late_entry(assignment, timestamp, seconds_late)
    name = Path(assignment.notebook).stem
    submitted = gb.find_submission_notebook(name, assignment.id, student)
    results = Results.of(results)
    checks = results.checks
    failed = results.autograder_error is not None
    for check in assignment.checks:
        grade = grade_row(gb, check.name, name, assignment, submitted)
        test = checks.get(check.name)
        if failed or test is None:  # the grader failed, or did not run this check (--check): a person looks
            grade.auto_score = 0.0 if failed else None
            grade.needs_manual_grade = True
            continue
        grade.auto_score = float(test.score)
        grade.needs_manual_grade = grade.manual_score is not None  # as nbgrader: a manual score is reviewed again
    given = answers(notebook_path, assignment) if notebook_path else {}
    for question, _ in assignment.questions:
        grade = grade_row(gb, question, name, assignment, submitted)
        if grade.manual_score is not None:
            continue  # a person graded it already
        answered = given.get(question) is not None
        grade.auto_score = None if answered else 0.0
        grade.needs_manual_grade = answered
        try:
            comment = gb.find_comment(question, name, assignment.id, student)
        except MissingEntry:
            comment = Comment(cell_id=gb.find_solution_cell(question, name, assignment.id).id, notebook=submitted)
            gb.db.add(comment)
        comment.auto_comment = None if answered else "No response."
    # never on points that could not be judged (an autograder error), never more than the autograded score: nbgrader
    # subtracts it from the total, which must not go below 0
    penalty = min(late["penalty"], results.score) if late and late["late"] and not failed else 0.0
    submitted.late_submission_penalty = penalty or None
    gb.db.commit()
    return late


# ------------------------------------------------------------------------------------- nbgrader's feedback notebook
def feedback_iframe(page: str) -> str:
    return (f"<iframe title='autograder feedback' style='width:100%;height:90vh;border:1px solid #ccc' "
            f"srcdoc=\"{html.escape(page, quote=True)}\"></iframe>")


def write_autograded(settings: Settings, assignment, student: str, results: dict, page: Path | None) -> Path | None:
    """nbgrader's ``autograded/<student>/<assignment>/<notebook>``, for ``generate_feedback``: nbgrader's own if
    ``nbgrader autograde`` made one, else the submitted notebook; each check's cell shows the grader's verdict and
    message, and a first cell holds the feedback page. Returns the notebook's path (None without a submission)."""
    source_dir = settings.submitted / student / assignment.id
    target_dir = settings.autograded / student / assignment.id
    existing = target_dir / assignment.notebook
    base = existing if existing.exists() else source_dir / assignment.notebook
    try:
        nb = nbformat.read(base, as_version=4)
    except Exception:  # noqa: BLE001 - nothing readable to annotate; the gradebook still has the scores
        return None
    if not existing.exists() and source_dir.is_dir():
        for path in source_dir.iterdir():
            if path.is_file() and path.suffix != ".ipynb" and not (target_dir / path.name).exists():
                target_dir.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target_dir / path.name)
    checks = Results.of(results).checks
    by_name = {check.name: check for check in assignment.checks}
    nb.cells = [c for c in nb.cells if c.get("id") != FEEDBACK_CELL]
    for cell in nb.cells:
        check = by_name.get(cell.get("metadata", {}).get("nbgrader", {}).get("grade_id"))
        if check is None or cell.cell_type != "code":
            continue
        test = checks.get(check.name)
        text = (f"{'✓ passed' if test.passed else '✗ failed'}  {check.title}: {test.score:g} / "
                f"{test.max_score:g}\n{test.output}\n" if test else
                f"{check.title}: not graded ({results.get('output', '')})\n")
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=text)]
    if page is not None and page.exists():
        shown = page.read_text()
        cell = nbformat.v4.new_code_cell("# Feedback from the course's autograder (also in feedback.html)")
        cell["id"] = FEEDBACK_CELL
        cell.outputs = [nbformat.v4.new_output("display_data", data={
            "text/html": feedback_iframe(shown), "text/plain": "the autograder's feedback page (feedback.html)"})]
        nb.cells.insert(0, cell)
        target_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy2(page, target_dir / "feedback.html")
    target_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(existing, nbformat.writes(nb))  # never a half-written notebook, whatever the text holds
    return existing
