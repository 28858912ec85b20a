"""A real nbgrader course in a temporary folder, run with nbgrader's own commands around ours.

The instructor's side: ``nbgrader_config.py``, ``python -m autograder nbgrader-source``, ``nbgrader db student add``,
``nbgrader generate_assignment``. Submissions carry nbgrader's ``timestamp.txt``. Then ``grade-all``, and nbgrader's
``export``, gradebook API, ``autograde --force``, ``generate_feedback`` and ``validate`` (through its Validator API:
the command exits 0 even when validation fails, nbgrader #1908) show what an instructor and a student would see.
"""

from __future__ import annotations

import csv
import datetime
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from autograder import config
from autograder.notebook import graded_cells
from tests.conftest import CATALOGUE, load_variant, reference_answers
from tests.test_config import absolute

ASSIGNMENT = "week03_policy_gradients"
NB = "policy_gradients"
ON_TIME = "2026-03-20 10:00:00.000000 UTC"  # before the due date in course.toml (2026-03-20 23:59 +10:00)
LATE = "2026-03-23 02:00:00.000000 UTC"  # 2 days 12 hours late: 3 started days


def expected_points(assignment) -> tuple[float, float, float]:
    """From course.toml: the checks' points, every point (checks + questions), and the penalty of 3 started days
    late (LATE) under the course's rule."""
    checks = sum(c.points for c in assignment.checks)
    penalty = min(3 * assignment.late_penalty_per_day, assignment.late_penalty_max) * assignment.points
    return checks, assignment.points, round(penalty, 6)


def env() -> dict:
    return dict(os.environ, PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
                PYTHONPATH=str(Path(__file__).resolve().parent.parent))


def nbgrader(root: Path, *args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "nbgrader", *args, "--log-level=WARN"], cwd=root, env=env(),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def ours(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "autograder", "--config", str(config.DEFAULT_CONFIG), *args],
                          cwd=root, env=env(), capture_output=True, text=True, timeout=900)


def submit(root: Path, assignment, student: str, timestamp: str, answers: dict | None = None,
           reflections: dict | None = None, blank: bool = False, course: Path | None = None) -> Path:
    """The course's own release, filled in as a student would, with nbgrader's timestamp.txt beside it."""
    nb = nbformat.read((course or root) / "release" / ASSIGNMENT / assignment.notebook, as_version=4)
    filled = {} if blank else reference_answers(assignment) | (answers or {})
    for name, cells in graded_cells(nb).items():
        if name in filled:
            cells[-1].source = filled[name]
        if name in (reflections or {}):
            cells[-1].source = reflections[name]
    folder = root / "submitted" / student / ASSIGNMENT
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, folder / assignment.notebook)
    (folder / "timestamp.txt").write_text(timestamp)
    return folder / assignment.notebook


def bug(*names: str) -> dict:
    return {k: v for name in names for k, v in load_variant(CATALOGUE / "bugs" / f"{name}.py")[0].items()}


@pytest.fixture(scope="module")
def course_dir(tmp_path_factory, assignment):
    """ada: correct, two reflections answered, on time; bob: the lecture's probability loss, late; cy: blank; zed:
    on the roster, submitted nothing."""
    root = tmp_path_factory.mktemp("nbgrader-course")
    (root / "nbgrader_config.py").write_text('c = get_config()\nc.CourseDirectory.course_id = "ENN585"\n')
    made = ours(root, "nbgrader-source", str(root))
    assert made.returncode == 0, made.stderr
    for student in ("ada", "bob", "cy", "zed"):
        nbgrader(root, "db", "student", "add", student, f"--first-name={student.title()}", "--last-name=Test")
    nbgrader(root, "generate_assignment", ASSIGNMENT)
    submit(root, assignment, "ada", ON_TIME, reflections={"reflect_gamma": "With gamma 0 the chain is not learned.",
                                                          "reflect_baseline": "It lowers the variance."})
    submit(root, assignment, "bob", LATE, bug("pg_loss_prob_not_log"))
    submit(root, assignment, "cy", ON_TIME, blank=True)
    graded = ours(root, "grade-all", str(root), "--jobs", "2")
    assert graded.returncode == 0, graded.stderr[-3000:]
    return root


def results(root: Path, student: str) -> Path:
    return root / "results" / student / ASSIGNMENT / "results.json"


def gradebook_scores(root: Path, student: str) -> dict:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}", "ENN585") as gb:
        notebook = gb.find_submission_notebook(NB, ASSIGNMENT, student)
        return {g.name: (g.auto_score, g.needs_manual_grade) for g in notebook.grades}


def test_release_has_a_grade_cell_per_check_with_course_toml_points(course_dir, assignment):
    nb = nbformat.read(course_dir / "release" / ASSIGNMENT / assignment.notebook, as_version=4)
    meta = {c.metadata["nbgrader"]["grade_id"]: (c.cell_type, c.metadata["nbgrader"]) for c in nb.cells
            if c.metadata.get("nbgrader", {}).get("grade")}
    for check in assignment.checks:
        kind, m = meta[check.name]
        assert kind == "code" and m["points"] == check.points and m["locked"] and not m["solution"]
    for question, points in assignment.questions:
        kind, m = meta[question]
        assert kind == "markdown" and m["points"] == points and m["solution"]
    committed = nbformat.read(assignment.release, as_version=4)
    assert [c.source for c in committed.cells] == [c.source for c in nb.cells], "the instructor's release is ours"


def test_export_and_gradebook_show_our_scores_and_pending_manual_grades(course_dir, assignment):
    nbgrader(course_dir, "export")
    with open(course_dir / "grades.csv") as f:
        rows = {r["student_id"]: r for r in csv.DictReader(f)}
    assert set(rows) == {"ada", "bob", "cy", "zed"}
    checks, total, penalty = expected_points(assignment)
    bob = checks - assignment.check("pg_loss_exact").points  # the lecture's probability loss fails pg_loss_exact
    assert {s: (float(r["raw_score"]), float(r["late_submission_penalty"]), float(r["score"]), float(r["max_score"]))
            for s, r in rows.items()} == {"ada": (checks, 0, checks, total), "bob": (bob, penalty, bob - penalty, total),
                                          "cy": (0, 0, 0, total), "zed": (0, 0, 0, total)}

    ada = gradebook_scores(course_dir, "ada")
    assert {c.name: ada[c.name] for c in assignment.checks} == {c.name: (c.points, False) for c in assignment.checks}
    assert ada["reflect_gamma"] == (None, True) and ada["reflect_baseline"] == (None, True)  # pending for a person
    assert ada["reflect_learning_rate"] == (0.0, False)  # unanswered: 0, as nbgrader gives it
    bob = gradebook_scores(course_dir, "bob")
    assert bob["pg_loss_exact"] == (0.0, False) and bob["reinforce_loss_exact"] == (3.0, False)

    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course_dir / 'gradebook.db'}", "ENN585") as gb:
        assert gb.find_submission(ASSIGNMENT, "ada").needs_manual_grade
        assert not gb.find_submission(ASSIGNMENT, "bob").needs_manual_grade
        assert gb.find_submission(ASSIGNMENT, "bob").total_seconds_late > 2 * 86400


def test_results_csv_and_report(course_dir, assignment):
    late = json.loads(results(course_dir, "bob").read_text())["extra_data"]["late"]
    assert late["late"] and late["days_late"] == 3 and late["penalty"] == expected_points(assignment)[2]
    assert json.loads(results(course_dir, "ada").read_text())["extra_data"]["late"]["late"] is False
    answers = json.loads(results(course_dir, "ada").read_text())["extra_data"]["answers"]
    assert answers["reflect_gamma"] == "With gamma 0 the chain is not learned."
    assert answers["reflect_architecture"] is None

    with open(course_dir / "results" / f"grades-{ASSIGNMENT}.csv") as f:
        reader = csv.DictReader(f)
        rows = {r["student"]: r for r in reader}
    from autograder.nbgrader_source import check_order

    assert reader.fieldnames[-len(assignment.checks):] == check_order(assignment)
    assert check_order(assignment)[:3] == ["policy_gradient_update_exact", "bandit_table_learns", "pg_loss_exact"]
    assert rows["zed"]["status"] == "missing" and rows["ada"]["status"] == "graded"
    checks, _, penalty = expected_points(assignment)
    bob = checks - assignment.check("pg_loss_exact").points
    assert (rows["bob"]["late"], float(rows["bob"]["late_penalty"]), float(rows["bob"]["score_after_penalty"])) == (
        "True", penalty, bob - penalty)
    page = (course_dir / "results" / f"report-{ASSIGNMENT}.html").read_text()
    assert "the loss uses the probability instead of its logarithm" in page  # bob's named mistake, counted
    assert "zed</td><td>missing" in page and "href='ada/week03_policy_gradients/feedback.html'" in page
    assert "With gamma 0 the chain is not learned." in page


@pytest.mark.slow
def test_nbgrader_autograde_and_feedback_keep_our_output(course_dir, assignment):
    """``autograde --force`` deletes nbgrader's autograded folder and scores the check cells 0 (they refuse to be
    scored by nbgrader); our results stay, and grade-all (no regrade) writes the grades and feedback back."""
    ours_before = {s: results(course_dir, s).read_bytes() for s in ("ada", "bob", "cy")}
    mtimes = {s: results(course_dir, s).stat().st_mtime_ns for s in ("ada", "bob", "cy")}
    nbgrader(course_dir, "autograde", ASSIGNMENT, "--student=ada", "--force")
    assert {s: results(course_dir, s).read_bytes() for s in ours_before} == ours_before
    assert (course_dir / "results" / "ada" / ASSIGNMENT / "feedback.html").exists()
    assert all(gradebook_scores(course_dir, "ada")[c.name][0] == 0 for c in assignment.checks)

    again = ours(course_dir, "grade-all", str(course_dir), "--jobs", "2")
    assert again.returncode == 0, again.stderr[-3000:]
    assert {s: results(course_dir, s).stat().st_mtime_ns for s in mtimes} == mtimes, "nothing was regraded"
    assert {c.name: gradebook_scores(course_dir, "ada")[c.name] for c in assignment.checks} == {
        c.name: (c.points, False) for c in assignment.checks}

    nbgrader(course_dir, "generate_feedback", ASSIGNMENT)
    html = (course_dir / "feedback" / "bob" / ASSIGNMENT / f"{NB}.html").read_text()
    assert "Likely mistake: the loss uses the probability instead of its logarithm" in html  # the check cell's output
    assert "autograder feedback" in html and "srcdoc=" in html  # our page, inside the notebook's feedback
    assert (course_dir / "feedback" / "bob" / ASSIGNMENT / "feedback.html").exists()
    nbgrader(course_dir, "generate_feedback", ASSIGNMENT, "--force")
    assert {s: results(course_dir, s).read_bytes() for s in ours_before} == ours_before


def test_resubmission_is_regraded_and_student_flag_regrades_one(course_dir, assignment):
    mtimes = {s: results(course_dir, s).stat().st_mtime_ns for s in ("ada", "bob", "cy")}
    time.sleep(0.01)
    submit(course_dir, assignment, "cy", LATE)  # cy resubmits a correct notebook, late
    again = ours(course_dir, "grade-all", str(course_dir), "--jobs", "2")
    assert again.returncode == 0, again.stderr[-3000:]
    after = {s: results(course_dir, s).stat().st_mtime_ns for s in mtimes}
    assert after["cy"] > mtimes["cy"] and after["ada"] == mtimes["ada"] and after["bob"] == mtimes["bob"]
    cy = json.loads(results(course_dir, "cy").read_text())
    checks, _, penalty = expected_points(assignment)
    assert cy["score"] == checks and cy["extra_data"]["late"]["penalty"] == penalty
    assert gradebook_scores(course_dir, "cy")["pg_loss_exact"] == (3.0, False)

    one = ours(course_dir, "grade-all", str(course_dir), "--student", "bob")
    assert one.returncode == 0, one.stderr[-3000:]
    final = {s: results(course_dir, s).stat().st_mtime_ns for s in mtimes}
    assert final["bob"] > after["bob"] and final["ada"] == after["ada"] and final["cy"] == after["cy"]
    missing = ours(course_dir, "grade-all", str(course_dir), "--student", "zed")
    assert missing.returncode == 1 and "no submission" in missing.stderr


def validate(folder: Path, notebook: Path) -> dict:
    """nbgrader's Validator, with a per-cell timeout for a crowded test machine (the default, 30 s, is nbgrader's
    Execute's: the lecture's animation cell took longer while four test runs shared two cores)."""
    from nbgrader.validator import Validator
    from traitlets.config import Config

    config = Config()
    config.Execute.timeout = 300
    return Validator(config=config).validate(str(notebook))


@pytest.mark.slow
def test_validate_fails_a_buggy_notebook_and_passes_the_reference(course_dir, assignment, tmp_path):
    """nbgrader's Validate (the Validator the notebook extension's button runs): the sign-flipped update and the
    lecture's probability loss fail with the public checks' messages; the reference, with answers, passes."""
    folder = tmp_path / "student"
    shutil.copytree(course_dir / "release" / ASSIGNMENT, folder)
    answers = {q: "An answer." for q, _ in assignment.questions}
    buggy = submit(tmp_path, assignment, "x", ON_TIME, bug("update_sign_flipped", "pg_loss_prob_not_log"), answers,
                   course=course_dir)
    shutil.copy(buggy, folder / "buggy.ipynb")
    failed = validate(folder, folder / "buggy.ipynb")["failed"]
    errors = "\n".join(f["raw_error"] for f in failed)
    assert any("check('policy_gradient_update_exact')" in f["source"] for f in failed)
    assert any("check('pg_loss_exact')" in f["source"] for f in failed)
    assert "Likely mistake: the loss uses the probability instead of its logarithm" in errors
    assert not any("discounted_returns_exact" in f["source"] for f in failed)

    good = submit(tmp_path, assignment, "y", ON_TIME, reflections=answers, course=course_dir)
    shutil.copy(good, folder / "good.ipynb")
    assert validate(folder, folder / "good.ipynb") == {}


# ------------------------------------------------------------------------------------------ fast, no nbgrader run
def test_late_rule():
    from autograder.gradebook import late_entry

    assignment = config.load().assignment(ASSIGNMENT)
    due = assignment.due.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    assert late_entry(assignment, due)["late"] is False
    one = late_entry(assignment, due + datetime.timedelta(seconds=1))
    assert one["late"] and one["days_late"] == 1 and one["penalty"] == 0.1 * assignment.points
    capped = late_entry(assignment, due + datetime.timedelta(days=30))
    assert capped["penalty"] == assignment.late_penalty_max * assignment.points
    assert late_entry(assignment, None)["late"] is False


@pytest.mark.parametrize("old, new, key", [
    ("[assignments.week03_policy_gradients.questions.reflect_gamma]\npoints = 1",
     "[assignments.week03_policy_gradients.questions.reflect_gamma]\npoints = 0",
     "questions.reflect_gamma.points must be a positive number"),
    ("[assignments.week03_policy_gradients.questions.reflect_gamma]\npoints = 1",
     "[assignments.week03_policy_gradients.questions.reflect_gamma]\npoints = 1\nmarks = 2",
     "questions.reflect_gamma.marks is not a setting"),
    ("due = 2026-03-20T23:59:00+10:00", "due = 2026-03-20T23:59:00", "week03_policy_gradients.due must be"),
    ("late_penalty_per_day = 0.1", "late_penalty_per_day = 10", "week03_policy_gradients.late_penalty_per_day"),
])
def test_config_errors_name_the_key(tmp_path, old, new, key):
    text = config.DEFAULT_CONFIG.read_text()
    assert old in text
    path = tmp_path / "course.toml"
    path.write_text(absolute(text.replace(old, new, 1)))
    with pytest.raises(config.ConfigError, match=key.replace(".", r"\.")):
        config.load(path)


def test_a_question_without_its_answer_cell_is_named(tmp_path, assignment):
    from autograder.nbgrader_source import nbgrader_notebook

    text = config.DEFAULT_CONFIG.read_text().replace("questions.reflect_gamma]", "questions.reflect_gama]", 1)
    (tmp_path / "course.toml").write_text(absolute(text))
    shutil.copytree(assignment.source.parent, tmp_path / "source" / ASSIGNMENT)
    broken = config.load(tmp_path / "course.toml").assignment(ASSIGNMENT)
    with pytest.raises(config.ConfigError, match=r"questions\.reflect_gama: the source notebook has no"):
        nbgrader_notebook(broken)


def test_named_mistakes_are_counted_once_per_student_and_check(assignment):
    from autograder.teaching import mistakes

    title = assignment.check("pg_loss_exact").title
    failed = {"name": title, "status": "failed", "output": "2 of 6 wrong.", "extra_data": {"check": "pg_loss_exact"}}
    named = {"checks": {"pg_loss_exact": {"score": 0, "mistake": "the sign is flipped"}}}
    rows = [("a", {"tests": [failed], "extra_data": named}),
            ("b", {"tests": [failed, {**failed, "visibility": "after_due_date"}], "extra_data": named}),
            ("c", {"tests": [failed], "extra_data": {"checks": {"pg_loss_exact": {"score": 0, "mistake": None}}}}),
            ("d", {"tests": [{**failed, "status": "passed"}], "extra_data": named})]
    assert mistakes(rows, assignment) == {"pg_loss_exact": {"the sign is flipped": 2}}


def test_course_settings_are_the_course_folders_not_the_working_directorys(tmp_path, monkeypatch):
    """nbgrader resolves its root against the folder it runs in; grade-all may run anywhere."""
    from autograder.gradebook import nbgrader_settings

    monkeypatch.chdir(tmp_path)
    course = tmp_path / "course"
    course.mkdir()
    (course / "nbgrader_config.py").write_text('c = get_config()\nc.CourseDirectory.course_id = "ENN585"\n')
    settings = nbgrader_settings(course)
    assert (settings.root, settings.course_id) == (course, "ENN585")
    assert settings.db_url == f"sqlite:///{course}/gradebook.db"
    (course / "nbgrader_config.py").write_text('c = get_config()\nc.CourseDirectory.root = "term1"\n'
                                              'c.CourseDirectory.submitted_directory = "handed_in"\n')
    settings = nbgrader_settings(course)
    assert (settings.root, settings.submitted) == (course / "term1", course / "term1" / "handed_in")


def test_the_autograder_command_works_from_the_course_folder(tmp_path, assignment):
    """The README's `cd COURSE; autograder nbgrader-source .`: the command runs from any folder, no PYTHONPATH set.
    (Before: `python -m autograder` outside the repository's root said "No module named autograder".)"""
    root = tmp_path / "course"
    root.mkdir()
    (root / "nbgrader_config.py").write_text('c = get_config()\nc.CourseDirectory.course_id = "ENN585"\n')
    command = Path(__file__).resolve().parent.parent / "bin" / "autograder"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"AUTOGRADER_PYTHON": sys.executable}
    made = subprocess.run([str(command), "nbgrader-source", "."], cwd=root, env=env, capture_output=True, text=True,
                          timeout=600)
    assert made.returncode == 0, made.stderr[-2000:]
    assert (root / "source" / ASSIGNMENT / assignment.notebook).exists()
