"""grade-all: a class in nbgrader's layout, graded in parallel, resumable after SIGKILL, identical on regrade."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from autograder.grade import grade
from autograder.results import gradescope
from tests.conftest import CATALOGUE, fill_release, load_variant

CHECKS = ["policy_gradient_update_exact", "pg_loss_exact", "discounted_returns_exact"]


def make_class(assignment, root):
    """Five students: full marks, blank, one bug, a broken file, and one who submitted nothing usable."""
    folder = lambda s: root / "submitted" / s / assignment.id  # noqa: E731
    for student in ("ada", "bob", "cy", "dee", "eve"):
        folder(student).mkdir(parents=True)
    nb = assignment.notebook
    fill_release(assignment, folder("ada") / nb)
    (folder("bob") / nb).write_bytes(assignment.release.read_bytes())
    fill_release(assignment, folder("cy") / nb, load_variant(CATALOGUE / "bugs" / "pg_loss_prob_not_log.py")[0])
    (folder("dee") / nb).write_text("{ not json")
    (folder("eve") / "notes.txt").write_text("forgot the notebook")
    return {"ada": 8, "bob": 0, "cy": 5, "dee": 0, "eve": 0}


def run_batch(root, *extra):
    cmd = [sys.executable, "-m", "autograder", "grade-all", str(root), "--jobs", "2", *extra]
    cmd += [arg for name in CHECKS for arg in ("--check", name)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def scores(root):
    with open(root / "results" / "grades-week03_policy_gradients.csv") as f:
        return {row["student"]: float(row["score"]) for row in csv.DictReader(f)}


def test_killed_batch_resumes_with_identical_grades(assignment, tmp_path):
    expected = make_class(assignment, tmp_path)
    results = lambda s: tmp_path / "results" / s / assignment.id / "results.json"  # noqa: E731
    proc = run_batch(tmp_path)
    deadline = time.monotonic() + 120
    while not any(results(s).exists() for s in ("ada", "bob", "cy")) and time.monotonic() < deadline:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # the batch and everything it started, mid-grading
    proc.wait()
    done_before = {s: results(s).stat().st_mtime_ns for s in expected if results(s).exists()}
    assert done_before and len(done_before) < len(expected), "the kill should land mid-batch"
    for path in done_before:
        json.loads(results(path).read_text())  # what was written is complete

    proc = run_batch(tmp_path)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    assert scores(tmp_path) == expected
    for student, mtime in done_before.items():
        assert results(student).stat().st_mtime_ns == mtime, f"{student} was graded again"
    assert "students: 5, graded: 5, autograder errors: 0" in out
    assert "No file policy_gradients.ipynb was submitted" in results("eve").read_text()
    assert "not a Jupyter notebook" in results("dee").read_text()
    assert not list((tmp_path / "results").rglob("*.tmp"))


def test_regrade_is_identical(assignment, tmp_path):
    """Same submission, same seeds recorded in extra_data, same results apart from the wall time."""
    path = fill_release(assignment, tmp_path / "s.ipynb", load_variant(CATALOGUE / "correct" / "loss_mean.py")[0])
    only = {"reinforce_loss_exact", "chain_reinforce_learns", "baseline_reduces_variance"}
    first, second = (json.loads(json.dumps(gradescope(grade(path, assignment, only=only)))) for _ in range(2))
    for data in (first, second):
        data.pop("execution_time")
        data["extra_data"].pop("check_seconds")  # wall times too
    assert first == second
    assert first["extra_data"]["settings"]["chain_reinforce_learns"]["seeds"] == [0, 1, 2, 3, 4]
    assert first["extra_data"]["checks"]["chain_reinforce_learns"]["metrics"]


@pytest.mark.parametrize("student_dir", ["submitted", "."])
def test_course_dir_or_submitted_dir(assignment, tmp_path, student_dir):
    from autograder.batch import find_jobs, submitted_dir

    make_class(assignment, tmp_path)
    jobs = find_jobs(submitted_dir(tmp_path / student_dir), assignment, tmp_path / "out")
    assert [j.student for j in jobs] == ["ada", "bob", "cy", "dee", "eve"]
