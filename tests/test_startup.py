"""What a command imports before it needs it: loading course.toml (every command does, and ``--help``) and the
modules of a grade import no torch, matplotlib, Gymnasium or nbgrader, which take a second or more each. They are
imported where they are used: torch and Gymnasium when a driver runs, matplotlib when a figure is drawn (and by the
reference's setup cell), nbgrader by the nbgrader course commands."""

import json
import shutil
import subprocess
import sys

import pytest

from autograder.config import ROOT

HEAVY = ("torch", "matplotlib", "gymnasium", "nbgrader")


def imported(code: str) -> list[str]:
    """The heavy packages imported by ``code``, run in a fresh interpreter from the repository's root."""
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    modules = json.loads(proc.stdout.splitlines()[-1])
    return sorted({m.split(".")[0] for m in modules} & set(HEAVY))


@pytest.mark.parametrize("code", [
    "from autograder import config\ncourse = config.load()\nassert course.assignments",
    "import runpy, sys\nsys.argv = ['autograder', '--help']\ntry:\n    runpy.run_module('autograder', run_name='__main__')\n"
    "except SystemExit as exc:\n    assert exc.code == 0",
    # what `grade` imports before the kernel starts, and to write the results and the feedback page
    "from autograder import config\ncourse = config.load()\n"
    "import autograder.__main__, autograder.exports, autograder.feedback, autograder.grade, autograder.gradebook, "
    "autograder.notebook, autograder.reference, autograder.results, autograder.sandbox",
    # what a grade does besides running checks: compare the locked cells, read the late flag and the answers
    "from autograder import config\nimport nbformat\nfrom autograder.gradebook import annotate\n"
    "from autograder.notebook import locked_cell_changes, read_submission\n"
    "a = config.load().assignment('week03_policy_gradients')\n"
    "assert locked_cell_changes(read_submission(a.release, a), nbformat.read(a.release, as_version=4)) == []\n"
    "assert annotate({}, a.release, a)['extra_data']['answers'] == {name: None for name, _ in a.questions}",
], ids=["course.toml", "--help", "grade", "locked cells and answers"])
def test_loading_the_course_and_the_grader_imports_nothing_heavy(code):
    assert imported(code) == []


def test_a_submission_that_only_raises_never_pays_for_an_optimiser():
    """In the kernel, torch's first optimiser costs a second (it imports ``torch._dynamo``): a forked training run
    whose function only raises (a blank submission) does not make one, nor does the kernel warm up for it; once a
    case has answered, the kernel warms up before it forks."""
    code = '''
import json, sys
sys.path.append("assignments")
import gradekit.protocol as protocol

def request(driver, cases):
    return json.dumps({"driver": driver, "functions": ["pg_loss"], "cases": cases, "workers": 2})

runs = [{"seed": seed, "lr": 1.0, "steps": 3} for seed in range(2)]
exact = [{"sizes": [1, 3], "params": None, "state": 0.0, "action": 1, "reward": 1.0}]

def pg_loss(probs, action, reward):
    raise NotImplementedError()

protocol.serve({"pg_loss": pg_loss}, request("week03_policy_gradients.drivers:bandit_network_run", runs))
assert "torch._dynamo" not in sys.modules and not protocol.answered

def pg_loss(probs, action, reward):
    return -probs[action].log() * reward

protocol.serve({"pg_loss": pg_loss}, request("week03_policy_gradients.drivers:call_pg_loss", exact))
assert protocol.answered and "torch._dynamo" not in sys.modules
protocol.serve({"pg_loss": pg_loss}, request("week03_policy_gradients.drivers:bandit_network_run", runs))
assert "torch._dynamo" in sys.modules'''
    assert imported(code) == ["torch"]


def test_a_grade_does_not_build_the_iri_format_parser(assignment, tmp_path):
    """jsonschema (imported by nbformat) builds rfc3987_syntax's parser at import, a second of CPU: a grade never
    imports it, and grades as before."""
    code = ("from autograder.__main__ import main\n"
            f"assert main(['grade', {str(assignment.release)!r}, '--check', 'discounted_returns_exact', '--results', "
            f"{str(tmp_path / 'results.json')!r}]) == 0")
    script = f"{code}\nimport sys\nassert 'rfc3987_syntax' not in sys.modules or sys.modules['rfc3987_syntax'] is None"
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["score"] == 0 and "not implemented yet" in results["tests"][0]["output"]


LAUNCH_SPY = '''
import json, subprocess, sys

seen = {{}}
popen = subprocess.Popen.__init__


def spy(self, args, *rest, **kwargs):  # what the grader had imported when the kernel's process started
    if not seen and "ipykernel_launcher" in " ".join(map(str, args)):
        import nbformat.validator
        seen.update(modules=sorted(sys.modules), validators=len(nbformat.validator.validators))
    return popen(self, args, *rest, **kwargs)


subprocess.Popen.__init__ = spy
from autograder.__main__ import main

assert main(["grade", {submission!r}, "--check", "discounted_returns_exact", "--no-html", "--results",
             {results!r}]) == 0
print(json.dumps(seen))
'''
NOT_FOR_THE_LAUNCH = ("autograder.exports", "autograder.feedback", "autograder.gradebook", "autograder.results",
                      "autograder.worker", "tqdm")


@pytest.mark.parametrize("folder", [False, True], ids=["notebook", "folder"])
def test_grade_starts_the_kernel_before_what_starting_it_does_not_need(assignment, tmp_path, folder):
    """A blank grade's critical path is the kernel's start, then its setup cell (the grader prepares the reference
    meanwhile): `grade` starts the kernel's process before it imports what looks at the submission and writes the
    results, and before nbformat's first validation (~50 ms); a folder (Gradescope's submission/) as a notebook."""
    submission = tmp_path / "submission" if folder else tmp_path / assignment.notebook
    if folder:
        submission.mkdir()
    shutil.copy(assignment.release, submission / assignment.notebook if folder else submission)
    script = LAUNCH_SPY.format(submission=str(submission), results=str(tmp_path / "results.json"))
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout.splitlines()[-1])
    assert "autograder.execute" in seen["modules"]
    assert sorted(set(NOT_FOR_THE_LAUNCH) & set(seen["modules"])) == []
    assert seen["validators"] == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["score"] == 0 and "not implemented yet" in results["tests"][0]["output"]
