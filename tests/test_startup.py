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


def test_training_never_imports_torch_dynamo():
    """torch.optim's Optimizer imports ``torch._dynamo`` (its torch.compile hooks) at its first use: about 1 CPU-s in
    every process that trains, and again in every forked copy. The drivers train with ``gradekit.drivers.Adam``
    (torch's functional Adam, the same numbers), so the grader's workers that run every behaviour check of the lecture
    (``autograder.trusted``: the drivers, called here the same way) never import it."""
    code = '''
import sys
sys.path.append("assignments")
from autograder import config, trusted
from autograder.notebook import reference_functions
from gradekit.checks import ConvergenceCheck

assignment = config.load().assignment("week03_policy_gradients")
reference = reference_functions(assignment)
for check in assignment.checks:
    if isinstance(check, ConvergenceCheck):
        case = check.cases(reference)[0]
        assert isinstance(trusted.driver_function(check.driver)(*(reference[f] for f in check.functions), case), dict)
assert "torch._dynamo" not in sys.modules'''
    assert imported(code) == ["gymnasium", "matplotlib", "torch"]  # matplotlib: the setup cell the reference runs


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


def test_the_workers_the_grader_forks_import_nothing_it_could_have_imported_once(tmp_path):
    """A behaviour check forks one worker of the grader per seed (``autograder.trusted``). What its driver imports when
    it runs (the environments, Gymnasium, mujoco: 60 ms to 0.3 s) is imported once, before the grader forks (the
    driver module's ``preload``), not again in every worker. Each worker reports what it imported after the fork, at
    its driver's first call of a student's function: nothing."""
    code = f'''
import json, os, sys, time
sys.path.append("assignments")
import gradekit.channel
from autograder import config, trusted
from gradekit.checks import ConvergenceCheck

at_fork = set()
os.register_at_fork(after_in_child=lambda: at_fork.update(sys.modules))


def student(name, **_):
    def call(*args):
        raise RuntimeError(json.dumps(sorted({{m.split(".")[0] for m in set(sys.modules) - at_fork}})))
    return call


trusted.remote_function = lambda channel, name, **kw: student(name)
gradekit.channel.serve({{}}, {str(tmp_path / "channel.sock")!r})  # (nothing is called: a socket to connect to)
imported = {{}}
for assignment in config.load().assignments.values():
    for check in assignment.checks:
        if isinstance(check, ConvergenceCheck) and check.workers(2) > 1:
            status, answers = trusted.run({str(tmp_path / "channel.sock")!r}, check.driver, check.functions,
                                          check.cases(None)[:2], 2, time.monotonic() + 60)
            imported[check.name] = sorted({{a["error"]["message"] for a in answers}})
print(json.dumps(imported))'''
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    imported = json.loads(proc.stdout.splitlines()[-1])
    assert len(imported) >= 5  # the lecture's four, the Gymnasium part's
    assert imported == {name: ["[]"] for name in imported}


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


def test_a_grading_kernel_starts_with_the_channel_imported_and_no_driver(assignment):
    """A grading kernel's start ends with the channel's server imported (done while the kernel would wait for the
    grader or, in a batch, for its student), and nothing of the experiment: the drivers, their environments and
    Gymnasium run on the grader's side, never in the student's process."""
    from autograder.grade import kernel_session

    with kernel_session(assignment) as kernel:
        run = kernel.run("import sys\nprint(sorted(m for m in ('gradekit.channel', 'week03_policy_gradients.drivers', "
                         "'week03_policy_gradients.envs', 'gymnasium') if m in sys.modules))")
    assert kernel.setup_run.status == "ok"
    assert run.outputs[0]["text"].strip() == str(["gradekit.channel"])
