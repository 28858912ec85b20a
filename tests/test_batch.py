"""grade-all: a class in nbgrader's layout, graded in parallel, resumable after SIGKILL, identical on regrade."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

from pathlib import Path

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


def untimed(results: dict) -> dict:
    """results.json without what measures time (wall and CPU seconds), which no two runs share, nor the kernel's
    host uid (an unprivileged uid of the grading process's own, as root: no two processes share it)."""
    results = json.loads(json.dumps(results))
    results.pop("execution_time", None)
    for key in ("check_seconds", "cpu_seconds"):
        results["extra_data"].pop(key, None)
    results["extra_data"].get("isolation", {}).pop("host_uid", None)
    return results


def graders_running(marker: str) -> list[str]:
    """Command lines of grading workers and graders of a batch (``marker`` in their arguments) still running."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if any(marker in a for a in args) and any(a in ("worker", "grade") for a in args):
            found.append(" ".join(args))
    return found


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
    os.killpg(proc.pid, signal.SIGKILL)  # the batch, mid-grading
    proc.wait()
    time.sleep(0.5)
    assert graders_running(str(tmp_path)) == [], "a grader outlived its batch"
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
    assert "No notebook (.ipynb file) was submitted" in results("eve").read_text()
    assert "not a Jupyter notebook" in results("dee").read_text()
    assert not list((tmp_path / "results").rglob("*.tmp"))


def test_regrade_is_identical(assignment, tmp_path):
    """Same submission, same seeds recorded in extra_data, same results apart from the wall time."""
    path = fill_release(assignment, tmp_path / "s.ipynb", load_variant(CATALOGUE / "correct" / "loss_mean.py")[0])
    only = {"reinforce_loss_exact", "chain_reinforce_learns", "baseline_reduces_variance"}
    first, second = (json.loads(json.dumps(gradescope(grade(path, assignment, only=only)))) for _ in range(2))
    assert untimed(first) == untimed(second)
    assert first["extra_data"]["settings"]["chain_reinforce_learns"]["seeds"] == [0, 1, 2, 3, 4]
    assert first["extra_data"]["checks"]["chain_reinforce_learns"]["metrics"]


@pytest.mark.parametrize("student_dir", ["submitted", "."])
def test_course_dir_or_submitted_dir(assignment, tmp_path, student_dir):
    from autograder.batch import find_jobs, submitted_dir

    make_class(assignment, tmp_path)
    jobs = find_jobs(submitted_dir(tmp_path / student_dir), assignment, tmp_path / "out")
    assert [j.student for j in jobs] == ["ada", "bob", "cy", "dee", "eve"]


FOLDERS = {  # student: (files of their folder, graded (the reference's answers: full marks), what they are told)
    "two": (["one.ipynb", "two.ipynb"], False,
            "2 notebooks were submitted (one.ipynb, two.ipynb) and none is named policy_gradients.ipynb, so the grader "
            "cannot tell which one to grade. Submit only your policy_gradients.ipynb."),
    "renamed": (["my answers.ipynb", "notes.txt"], True, None),
    "nested": (["week3/policy_gradients.ipynb", ".ipynb_checkpoints/policy_gradients-checkpoint.ipynb"], True, None),
    "copies": (["a/policy_gradients.ipynb", "b/policy_gradients.ipynb"], False,
               "2 copies of policy_gradients.ipynb were submitted (a/policy_gradients.ipynb, "
               "b/policy_gradients.ipynb), so the grader cannot tell which one to grade. Submit only one."),
    "none": (["notes.txt"], False,
             "No notebook (.ipynb file) was submitted. Submit the released policy_gradients.ipynb with your answers."),
}


def test_grade_and_grade_all_pick_a_folders_notebook_by_one_rule(assignment, tmp_path):
    """A student's folder with two notebooks, a renamed one, one in a subfolder, two copies, or none: `grade` on the
    folder and `grade-all` on the class write the same results.json, with the same message (notebook.find_notebook).
    (Before: grade-all read only the folder's top level and, without a notebook of the released name, said "No file
    policy_gradients.ipynb was submitted" to a student whose `grade` said there were two notebooks.)"""
    from autograder.__main__ import main
    from autograder.batch import grade_all

    check = "discounted_returns_exact"
    for student, (files, _, _) in FOLDERS.items():
        for name in files:
            path = tmp_path / "submitted" / student / assignment.id / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if name.endswith(".ipynb"):
                fill_release(assignment, path)
            else:
                path.write_text("not a notebook")
    grade_all(tmp_path, assignment, Path(assignment.root / "course.toml"), jobs=1, only=[check], progress=False)
    for student, (_, graded, message) in FOLDERS.items():
        alone = tmp_path / "alone" / student / "results.json"
        assert main(["grade", str(tmp_path / "submitted" / student / assignment.id), "--assignment", assignment.id,
                     "--check", check, "--no-html", "--results", str(alone)]) == 0
        batch = json.loads((tmp_path / "results" / student / assignment.id / "results.json").read_text())
        assert untimed(batch) == untimed(json.loads(alone.read_text())), student
        assert batch["score"] == (assignment.check(check).points if graded else 0), student
        if message:
            assert message in batch["tests"][0]["output"], student


@pytest.mark.slow
def test_warm_workers_grade_as_one_at_a_time(assignment, tmp_path):
    """The whole catalogue (and the reference and a blank) as a class: grade-all's warm workers, which keep the
    reference's answers and start each next kernel early, write exactly the results.json of one grade at a time,
    timings aside (exactness checks: the ones whose expected answers the workers remember)."""
    from autograder.batch import grade_all
    from autograder.grade import grade
    from autograder.pipeline import write_grade

    checks = [c.name for c in assignment.checks if c.name.endswith("_exact")]
    variants = {p.stem: load_variant(p)[0] for folder in ("bugs", "correct") for p in (CATALOGUE / folder).glob("*.py")}
    variants |= {"reference": {}, "blank": None}
    for student, answers in variants.items():
        path = tmp_path / "submitted" / student / assignment.id / assignment.notebook
        path.parent.mkdir(parents=True)
        if answers is None:
            path.write_bytes(assignment.release.read_bytes())
        else:
            fill_release(assignment, path, answers)
    grade_all(tmp_path, assignment, Path(assignment.root / "course.toml"), jobs=2, only=checks, progress=False)
    differ = []
    for student in sorted(variants):
        notebook = tmp_path / "submitted" / student / assignment.id / assignment.notebook
        alone = tmp_path / "alone" / student / "results.json"
        write_grade(grade(notebook, assignment, only=set(checks)), assignment, alone, page=False)
        batch = json.loads((tmp_path / "results" / student / assignment.id / "results.json").read_text())
        if untimed(batch) != untimed(json.loads(alone.read_text())):
            differ.append(student)
    assert not differ, f"grade-all and grade disagree on {differ}"
    assert len(variants) > 40


DIES_ON = """
import json, os, signal, sys
sys.path.insert(0, {root!r})
from autograder import config, worker
from autograder.grade import Grader
course = config.load({config!r})
assignment = course.assignment({assignment!r})

def say(message):
    if message.get("start") == "crashy":  # a worker killed (say, by the OOM killer) while grading this student
        with open({attempts!r}, "a") as f:
            f.write("attempt\\n")
        os.kill(os.getpid(), signal.SIGKILL)
    print(json.dumps(message), flush=True)

worker.serve(course, Grader(assignment, set({checks!r}), 1), worker.Jobs(0), say)
"""


def test_a_worker_that_dies_takes_only_its_current_student(assignment, tmp_path, monkeypatch):
    """A worker killed while it grades `crashy` (with the next student's kernel already starting): crashy is tried
    again once in a new worker, then gets an autograder error; everyone else, the prefetched student included, is
    graded as usual."""
    from autograder import batch

    expected = make_class(assignment, tmp_path)
    folder = tmp_path / "submitted" / "crashy" / assignment.id
    folder.mkdir(parents=True)
    fill_release(assignment, folder / assignment.notebook)
    attempts = tmp_path / "attempts.txt"
    script = DIES_ON.format(root=str(Path(__file__).resolve().parent.parent), config=str(assignment.root / "course.toml"),
                            assignment=assignment.id, attempts=str(attempts), checks=CHECKS)
    monkeypatch.setattr(batch, "worker_command", lambda *args: [sys.executable, "-c", script])
    batch.grade_all(tmp_path, assignment, assignment.root / "course.toml", jobs=1, only=CHECKS, progress=False)
    assert attempts.read_text().count("attempt") == 2
    crashy = json.loads((tmp_path / "results" / "crashy" / assignment.id / "results.json").read_text())
    assert crashy["score"] == 0 and crashy["tests"][0]["name"] == "Autograder error"
    assert "stopped twice" in crashy["extra_data"]["autograder_error"]  # for staff; the student reads the grader failed
    assert "instructor has been told" in crashy["output"] and "stopped twice" not in crashy["output"]
    assert "instructor has been told" in (tmp_path / "results" / "crashy" / assignment.id / "feedback.html").read_text()
    assert scores(tmp_path) == expected | {"crashy": 0}
