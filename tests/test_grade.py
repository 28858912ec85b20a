"""End to end: the reference gets full marks, the blank release 0, and broken notebooks a grade with a message."""

import json
import subprocess
import sys

import nbformat
import pytest

from autograder.grade import grade
from autograder.notebook import checksum, graded_cells
from autograder.release import solution_lines
from tests.conftest import fill_release, read_results, results_by_name


def run_cli(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "autograder", *args], capture_output=True, text=True,
                          timeout=timeout)


def test_reference_gets_full_marks_and_blank_release_zero(assignment, tmp_path):
    """Through the command line, as CI and Gradescope call it: exit 0, a Gradescope results.json."""
    reference = fill_release(assignment, tmp_path / "reference.ipynb")
    for path, out in ((reference, tmp_path / "ref.json"), (assignment.release, tmp_path / "blank.json")):
        proc = run_cli("grade", str(path), "--results", str(out))
        assert proc.returncode == 0, proc.stderr
    ref, blank = read_results(tmp_path / "ref.json"), read_results(tmp_path / "blank.json")
    total = sum(c.points for c in assignment.checks)
    assert ref["score"] == total and len(ref["tests"]) == len(assignment.checks)
    assert all(t["status"] == "passed" and t["score"] == t["max_score"] for t in ref["tests"]), ref["tests"]
    assert blank["score"] == 0
    for test in blank["tests"]:
        assert test["status"] == "failed" and test["score"] == 0
        assert "not implemented yet" in test["output"], test["output"]
    for test in ref["tests"] + blank["tests"]:
        assert set(test) >= {"name", "score", "max_score", "status", "output"}
    solution = [line for line in solution_lines(assignment.source) if len(line) > 12]
    assert not [line for line in solution if line in json.dumps(blank)], "feedback quotes the reference solution"


def test_checksums_are_nbgraders(course):
    """The grader's checksum of a cell (locked cells, unanswered questions) is nbgrader's, on every nbgrader cell of
    the sources and releases, and on edited copies."""
    from nbgrader.utils import compute_checksum

    cells = [cell for a in course.assignments.values() for path in (a.source, a.release)
             for found in graded_cells(nbformat.read(path, as_version=4)).values() for cell in found]
    assert len(cells) > 30 and {c.metadata.nbgrader.get("locked", False) for c in cells} == {True, False}
    for cell in cells:
        edited = nbformat.from_dict(cell)
        edited.source += "\n# edited"
        for copy in (cell, edited):
            assert checksum(copy) == compute_checksum(copy), cell.metadata.nbgrader
    released = [c for a in course.assignments.values()
                for found in graded_cells(nbformat.read(a.release, as_version=4)).values() for c in found
                if "checksum" in c.metadata.nbgrader]
    assert released and all(checksum(c) == c.metadata.nbgrader["checksum"] for c in released)


def test_source_notebook_itself_gets_full_marks(assignment):
    report = grade(assignment.source, assignment, only={"policy_gradient_update_exact", "pg_loss_exact"})
    assert report.score == report.max_score, [r.output for r in report.results]
    # the reference is no edited copy of the release (it lacks the cells release adds): no read-only-cell note
    assert report.extra["locked_cells_changed"] == [] and not [n for n in report.notes if "Read-only" in n]


def test_broken_cell_costs_only_its_own_checks(assignment, tmp_path):
    path = fill_release(assignment, tmp_path / "s.ipynb", {"pg_loss": "def pg_loss(action_probs, action, reward:\n"})
    results = results_by_name(grade(path, assignment, only={"pg_loss_exact", "discounted_returns_exact"}))
    assert results["pg_loss_exact"].score == 0
    assert "SyntaxError" in results["pg_loss_exact"].output
    assert results["discounted_returns_exact"].passed


def test_deleted_graded_cell_is_named(assignment, tmp_path):
    path = fill_release(assignment, tmp_path / "s.ipynb")
    nb = nbformat.read(path, as_version=4)
    nb.cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") != "discounted_returns"]
    nbformat.write(nb, path)
    results = results_by_name(grade(path, assignment, only={"discounted_returns_exact", "reinforce_loss_exact"}))
    assert results["discounted_returns_exact"].score == 0
    assert "missing from the notebook" in results["discounted_returns_exact"].output
    assert results["reinforce_loss_exact"].passed


def test_renamed_function_is_not_found(assignment, tmp_path):
    path = fill_release(assignment, tmp_path / "s.ipynb", {"pg_loss": "def my_loss(p, a, r):\n    return -r * p[a].log()\n"})
    results = results_by_name(grade(path, assignment, only={"pg_loss_exact"}))
    assert results["pg_loss_exact"].score == 0
    assert "`pg_loss` is not defined" in results["pg_loss_exact"].output


@pytest.mark.parametrize("content, message", [
    ("", "empty"),
    (" " * (65 << 20), "Clear the outputs"),
    ("this is not json", "not valid JSON"),
    (json.dumps({"nbformat": 3, "nbformat_minor": 0, "worksheets": [], "metadata": {}}), "format version 3"),
    (json.dumps(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])), "another assignment"),
], ids=["empty", "65 MB", "not json", "nbformat 3", "foreign"])  # not the values: xdist's workers must agree
def test_unreadable_submission_gets_zero_with_a_message(assignment, tmp_path, content, message):
    path = tmp_path / "bad.ipynb"
    path.write_text(content)
    out = tmp_path / "results.json"
    proc = run_cli("grade", str(path), "--results", str(out), "--assignment", assignment.id)  # see test_detect.py
    assert proc.returncode == 0, proc.stderr
    results = read_results(out)
    assert results["score"] == 0 and len(results["tests"]) == len(assignment.checks)
    assert all(message in t["output"] for t in results["tests"]), results["tests"][0]["output"]


def test_seeds_run_in_parallel_give_the_same_verdicts(assignment):
    """Forked copies run each seed exactly as the kernel would: same metrics, same verdicts, with 1 or 2 workers."""
    only = {"bandit_network_learns", "chain_reinforce_learns"}
    one, two = (grade(assignment.source, assignment, only=only, workers=w, figures=False) for w in (1, 2))
    for a, b in zip(one.results, two.results, strict=True):
        assert a.passed and b.passed
        common = min(len(a.data["metrics"]), len(b.data["metrics"]))
        assert a.data["metrics"][:common] == b.data["metrics"][:common] and common >= 4


def test_feedback_runs_that_are_graded_runs_are_trained_once(assignment, monkeypatch):
    """chain_baseline_learns' feedback-only runs without the baseline are chain_reinforce_learns' seeds 0 and 1 (the
    same driver, functions and settings): a grade of both trains them once, and they are the very runs that a grade
    of the baseline check alone trains for its figure."""
    from autograder import trusted

    sent = []
    run = trusted.run

    def spy(path, driver, functions, cases, workers, limit):
        sent.append((driver.__name__, [case["seed"] for case in cases]))
        return run(path, driver, functions, cases, workers, limit)

    monkeypatch.setattr(trusted, "run", spy)
    both = results_by_name(grade(assignment.source, assignment, workers=2,
                                 only={"chain_reinforce_learns", "chain_baseline_learns"}))
    assert sent == [("chain_reinforce_run", [0, 1]), ("chain_reinforce_run", [2, 3]),
                    ("chain_baseline_run", [0, 1]), ("chain_baseline_run", [2, 3])]
    sent.clear()
    alone = results_by_name(grade(assignment.source, assignment, workers=2, only={"chain_baseline_learns"}))
    assert sent == [("chain_baseline_run", [0, 1]), ("chain_baseline_run", [2, 3]), ("chain_reinforce_run", [0, 1])]
    runs = both["chain_baseline_learns"].data["feedback_runs"]
    assert len(runs) == 2 and runs == alone["chain_baseline_learns"].data["feedback_runs"]
    assert runs == both["chain_reinforce_learns"].data["runs"][:2]
    assert both["chain_baseline_learns"].passed and alone["chain_baseline_learns"].passed


def test_records_made_on_the_graders_side_equal_the_references_in_one_process(assignment):
    """The loops moved out of the kernel without moving a number: every behaviour check's metric per seed in a grade
    of the reference (the drivers in the grader's workers, the reference's functions answering from the sandboxed
    kernel) equals, to the bit, the same driver calling the reference's functions in one process, as calibration and
    the recorded public values were made. So the calibration (docs/calibration.md) holds unchanged."""
    from gradekit.checks import ConvergenceCheck
    from gradekit.protocol import run_case

    from autograder.notebook import reference_functions

    reference = reference_functions(assignment)
    behaviour = [c for c in assignment.checks if isinstance(c, ConvergenceCheck)]
    report = grade(assignment.source, assignment, only={c.name for c in behaviour}, workers=2, figures=False)
    for check, result in zip(behaviour, report.results, strict=True):
        graded = result.data["metrics"]
        here = [check.metric(run_case(check.driver, [reference[f] for f in check.functions], case)["ok"])
                for case in check.cases(None)[:len(graded)]]
        assert graded == here, check.name


def test_the_report_names_the_graded_notebook_not_the_kernels_socket(assignment, tmp_path):
    """The report's ``submission`` is the notebook graded (annotate reads the late flag and the reflection answers
    from there): a grade once put the path of the kernel's socket there."""
    path = fill_release(assignment, tmp_path / "named.ipynb")
    report = grade(path, assignment, only={"discounted_returns_exact"}, figures=False)
    assert report.submission == str(path) and report.results[0].passed
