"""No submission goes ungraded: ordinary wrong answers, graded through the real command line and a class batch, get
a results.json (valid under Gradescope's schema), a feedback page, JUnit XML and grades CSV rows; when the grader
itself fails, the student still gets a results.json and a page saying so, and the instructor the traceback.

The wrong notebooks are the ones that used to end in a traceback and no results.json at all (issue 21: a −∞ metric
reached ``json.dumps(allow_nan=False)``, and the baseline figure's ``max`` raised when no seed's ratio was finite).
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest

from autograder.__main__ import main
from autograder.results import AUTOGRADER_ERROR, GRADER_FAILED, Results
from tests.conftest import CATALOGUE, fill_release, load_variant, variant_scores

FILES = Path(__file__).parent / "files"
ENV = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
# the wrong answers of the issue, as a student writes them: each used to crash `grade` (exit 1, no results.json)
WRONG = ["returns_no_discount", "returns_off_by_one", "returns_forwards", "returns_reversed", "loss_sign_flipped",
         "loss_squared", "baseline_episode_mean", "baseline_rebinds_table", "baseline_one_minus_step"]
CHAIN = ["discounted_returns_exact", "reinforce_loss_exact", "state_value_baseline_exact", "chain_reinforce_learns",
         "chain_baseline_learns"]


def schema() -> dict:
    return json.loads((FILES / "gradescope-results.schema.json").read_text())


def valid_junit(path: Path) -> ET.Element:
    xmlschema = pytest.importorskip("xmlschema")
    xmlschema.XMLSchema(str(FILES / "junit-10.xsd")).validate(str(path))
    return ET.parse(path).getroot()


def valid_page(path: Path) -> str:
    page = path.read_text()
    HTMLParser().feed(page)
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    return page


def variant_notebook(assignment, folder: Path, name: str) -> Path:
    functions, _, _ = load_variant(CATALOGUE / "bugs" / f"{name}.py")
    return fill_release(assignment, folder / "policy_gradients.ipynb", functions)


@pytest.mark.parametrize("name", WRONG)
def test_a_wrong_notebook_is_graded_through_the_command_line(assignment, tmp_path, name):
    """`python -m autograder grade`, as Gradescope and an instructor run it: exit 0, a valid results.json, the feedback
    page, valid JUnit, and the failed behaviour check's hint names the function whose own check failed first."""
    import jsonschema

    notebook = variant_notebook(assignment, tmp_path, name)
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "autograder", "grade", str(notebook), "--results",
                           str(out / "results.json"), "--junit", str(out / "junit.xml"),
                           *[a for check in CHAIN for a in ("--check", check)]],
                          capture_output=True, text=True, env=ENV, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    written = json.loads((out / "results.json").read_text())
    jsonschema.validate(written, schema())
    results = Results(written)
    assert results.autograder_error is None and set(results.checks) == set(CHAIN)
    assert 0 <= results.score < results.max_score
    page = valid_page(out / "feedback.html")
    assert "Traceback" not in page
    suite = valid_junit(out / "junit.xml").find("testsuite")
    assert int(suite.get("failures")) >= 1 and suite.get("errors") == "0"
    failed_exact = [c for c in CHAIN if c.endswith("_exact") and not results.checks[c].passed]
    for behaviour in ("chain_reinforce_learns", "chain_baseline_learns"):
        check = results.checks[behaviour]
        own = [c for c in failed_exact if c.removesuffix("_exact") in assignment.check(behaviour).functions]
        if not check.passed and own:  # the hint blames the first function in the chain whose own check failed
            function = next(f for f in assignment.check(behaviour).functions if f"{f}_exact" in own)
            assert check.output.endswith(f"`{function}` failed its own check ({function}_exact) first: fix it there. "
                                         "This check trains with it, so it fails with it whatever the other functions "
                                         "do.")


@pytest.mark.slow
def test_a_class_of_wrong_notebooks_is_graded_by_grade_all(assignment, tmp_path):
    """grade-all on a small class: every student gets a valid results.json and a feedback page, the grades CSV a row
    each, and the class report counts the named mistakes from the results' data."""
    import jsonschema

    students = {"ann": "returns_no_discount", "ben": "baseline_rebinds_table", "cat": "loss_squared"}
    for student, name in students.items():
        folder = tmp_path / "submitted" / student / assignment.id
        folder.mkdir(parents=True)
        variant_notebook(assignment, folder, name)
    proc = subprocess.run([sys.executable, "-m", "autograder", "grade-all", str(tmp_path), "--jobs", "2",
                           *[a for check in CHAIN for a in ("--check", check)]],
                          capture_output=True, text=True, env=ENV, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp_path / "results"
    for student in students:
        written = json.loads((out / student / assignment.id / "results.json").read_text())
        jsonschema.validate(written, schema())
        assert Results(written).autograder_error is None
        valid_page(out / student / assignment.id / "feedback.html")
    rows = list(csv.DictReader((out / f"grades-{assignment.id}.csv").read_text().splitlines()))
    assert sorted(r["student"] for r in rows) == sorted(students) and {r["status"] for r in rows} == {"graded"}
    assert all(r[check] != "" for r in rows for check in CHAIN)
    assert {r["student"]: float(r["state_value_baseline_exact"]) for r in rows}["ben"] == 2.0  # the table clause
    report = valid_page(out / f"report-{assignment.id}.html")
    assert "there is no discount (gamma is ignored)" in report  # ann's named mistake, from results.json's data


def test_a_grader_failure_still_gives_the_student_results_and_a_page(assignment, tmp_path, monkeypatch, capsys):
    """The last line of defence: the grader fails after the submission was read (here: writing the grade). The
    student gets results.json (0, "the grader failed, the instructor was told") and a feedback page; the traceback
    goes to stderr only; the command exits non-zero."""
    import jsonschema

    from autograder import pipeline

    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug in the grader, with /home/grader/secret in its message")

    monkeypatch.setattr(pipeline, "write_grade", broken)
    notebook = fill_release(assignment, tmp_path / "s.ipynb")
    code = main(["grade", str(notebook), "--results", str(tmp_path / "out" / "results.json"), "--junit",
                 str(tmp_path / "out" / "junit.xml"), "--check", "discounted_returns_exact"])
    assert code == 1
    captured = capsys.readouterr()
    assert "Traceback" in captured.err and "ZeroDivisionError" in captured.err
    written = json.loads((tmp_path / "out" / "results.json").read_text())
    jsonschema.validate(written, schema())
    assert written["score"] == 0 and written["tests"][0]["name"] == AUTOGRADER_ERROR
    assert written["output"] == GRADER_FAILED and "secret" not in written["output"] + written["tests"][0]["output"]
    page = valid_page(tmp_path / "out" / "feedback.html")
    assert "instructor has been told" in page and "secret" not in page and "Traceback" not in page
    assert valid_junit(tmp_path / "out" / "junit.xml").find("testsuite").get("errors") == "1"


def test_a_late_penalty_never_applies_to_what_could_not_be_judged(assignment):
    """No score is ever negative: a late submission the grader failed on loses nothing, and a penalty larger than
    the score stops at 0 (nbgrader's feedback used to show "Score: −5.0 / 25.0")."""
    from autograder import batch
    from autograder.results import error_results

    late = {"late": True, "days_late": 3, "penalty": 6.0}
    failed = error_results(assignment, RuntimeError("kernel gone"))
    failed["extra_data"]["late"] = late
    low = {"score": 2.0, "tests": [{"name": "t", "score": 2.0, "max_score": 3.0, "status": "failed",
                                    "extra_data": {"check": "pg_loss_exact"}}],
           "extra_data": {"late": late, "checks": {"pg_loss_exact": {"score": 2.0}}}}
    assert Results(failed).penalty == 0 and Results(low).penalty == 2.0
    rows = {r["student"]: r for r in csv.DictReader(batch.grades_csv([("a", failed), ("b", low)], assignment)
                                                    .splitlines())}
    assert (rows["a"]["late_penalty"], rows["a"]["score_after_penalty"]) == ("0.0", "0.0")
    assert (rows["b"]["late_penalty"], rows["b"]["score_after_penalty"]) == ("2.0", "0.0")


def test_a_hostile_message_cannot_stall_the_class_report(assignment):
    """A cell error of "Likely mistake: a" + 150,000 spaces + "b" in a check's output: the named mistakes come from
    results.json's data, so the class report reads no message (a regex on it backtracked for minutes)."""
    from autograder import teaching

    hostile = "Likely mistake: a" + " " * 150_000 + "b"
    title = assignment.check("pg_loss_exact").title
    rows = [(s, {"score": 0, "tests": [{"name": title, "score": 0, "max_score": 3, "status": "failed",
                                        "output": hostile, "extra_data": {"check": "pg_loss_exact"}}],
                 "extra_data": {"checks": {"pg_loss_exact": {"score": 0, "mistake": None}}}}) for s in "abc"]
    start = time.monotonic()
    assert teaching.mistakes(rows, assignment) == {}
    assert time.monotonic() - start < 1.0


def test_the_gradebook_never_takes_a_failed_grade_below_zero(assignment, tmp_path, monkeypatch):
    """nbgrader subtracts late_submission_penalty from the total: a late submission the grader failed on gets none
    (its feedback page used to read "Score: −5.0 / 25.0"), and a penalty is never more than the autograded score."""
    import datetime

    from nbgrader.api import Gradebook

    from autograder import gradebook
    from autograder.results import error_results

    monkeypatch.setenv("PATH", os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    three_days_late = assignment.due.astimezone(datetime.timezone.utc).replace(tzinfo=None) + datetime.timedelta(3)
    low = {"score": 1.0, "tests": [{"name": "t", "score": 1.0, "max_score": 3.0, "status": "failed",
                                    "extra_data": {"check": "pg_loss_exact"}}],
           "extra_data": {"checks": {"pg_loss_exact": {"score": 1.0}}}}
    with Gradebook(f"sqlite:///{tmp_path / 'gradebook.db'}", "ENN585") as gb:
        gb.add_assignment(assignment.id)
        gradebook.ensure_cells(gb, assignment)
        gradebook.sync_student(gb, assignment, "ann", error_results(assignment, RuntimeError("x")), three_days_late,
                               None)
        gradebook.sync_student(gb, assignment, "ben", low, three_days_late, None)
        ann, ben = gb.find_submission(assignment.id, "ann"), gb.find_submission(assignment.id, "ben")
        # nbgrader's score is before the penalty; its export and feedback subtract it
        assert (ann.score, ann.late_submission_penalty) == (0.0, 0.0)
        assert (ben.score, ben.late_submission_penalty) == (1.0, 1.0)  # 3 days late: 7.5 points, but only 1 to lose


@pytest.mark.slow
@pytest.mark.parametrize("part", ["week03_gymnasium", "week03_fetch_slide"])
def test_the_optional_parts_catalogues_are_graded_through_every_output(course, tmp_path, part):
    """The Gymnasium and Fetch parts' catalogues (every bug and every correct variant) as a class through grade-all,
    and one bug through `grade --junit`: every student a valid results.json, a feedback page and a CSV row; every bug
    fails the checks it names, every correct variant gets their points. Exactness checks only: the behaviour checks
    train for minutes (their judges and writers get arbitrary answers in tests/test_properties.py)."""
    import jsonschema

    assignment = course.assignment(part)
    exact = [c.name for c in assignment.checks if c.name.endswith("_exact")]
    paths = {p.stem: p for folder in ("bugs", "correct") for p in sorted((CATALOGUE / part / folder).glob("*.py"))}
    variants = {name: load_variant(path) for name, path in paths.items()}
    for student, (functions, _, _) in variants.items():
        folder = tmp_path / "submitted" / student / part
        folder.mkdir(parents=True)
        fill_release(assignment, folder / assignment.notebook, functions)
    checks = [a for check in exact for a in ("--check", check)]
    proc = subprocess.run([sys.executable, "-m", "autograder", "grade-all", str(tmp_path), "--jobs", "2",
                           "--assignment", part, *checks], capture_output=True, text=True, env=ENV, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp_path / "results"
    for student, (_, fails, _) in variants.items():
        written = json.loads((out / student / part / "results.json").read_text())
        jsonschema.validate(written, schema())
        results = Results(written)
        assert results.autograder_error is None and set(results.checks) == set(exact)
        failed = {name for name, check in results.checks.items() if not check.passed}
        scores = variant_scores(paths[student])  # the checks it loses only a clause of
        assert failed == {f for f in fails if f in exact} | set(scores), (student, failed, fails, scores)
        assert all(results.checks[name].score == score for name, score in scores.items()), student
        valid_page(out / student / part / "feedback.html")
    rows = list(csv.DictReader((out / f"grades-{part}.csv").read_text().splitlines()))
    assert sorted(r["student"] for r in rows) == sorted(variants) and {r["status"] for r in rows} == {"graded"}
    bug = next(name for name, (_, fails, _) in variants.items() if any(f in exact for f in fails))
    one = subprocess.run([sys.executable, "-m", "autograder", "grade", str(tmp_path / "submitted" / bug / part /
                          assignment.notebook), "--assignment", part, "--results", str(tmp_path / "one.json"),
                          "--junit", str(tmp_path / "junit.xml"), *checks], capture_output=True, text=True, env=ENV,
                         timeout=900)
    assert one.returncode == 0, one.stderr[-3000:]
    suite = valid_junit(tmp_path / "junit.xml").find("testsuite")
    assert int(suite.get("failures")) >= 1 and suite.get("errors") == "0"


def test_a_diverging_loss_is_blamed_where_it_fails_first(assignment, tmp_path):
    """A loss that overflows to infinity: the chain's runs end in a sampling error, and the behaviour check also says
    which function failed its own check first (before: only the run's error, naming both functions)."""
    import jsonschema

    loss = ("def reinforce_loss(log_probs, returns, baseline=0.0):\n"
            "    return -(log_probs * torch.as_tensor(returns)).sum() * 1e38 * 1e38\n")
    notebook = fill_release(assignment, tmp_path / "policy_gradients.ipynb", {"reinforce_loss": loss})
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "autograder", "grade", str(notebook), "--results",
                           str(out / "results.json"), "--junit", str(out / "junit.xml"),
                           *[a for check in CHAIN for a in ("--check", check)]],
                          capture_output=True, text=True, env=ENV, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    written = json.loads((out / "results.json").read_text())
    jsonschema.validate(written, schema())
    chain = next(t for t in written["tests"] if t["extra_data"]["check"] == "chain_reinforce_learns")
    assert chain["score"] == 0 and "`reinforce_loss` failed its own check (reinforce_loss_exact) first" in chain[
        "output"], chain["output"]
    valid_junit(out / "junit.xml")
    assert "Traceback" not in valid_page(out / "feedback.html")
