"""The exit codes documented once (``autograder.pipeline.ExitCode``, in ``--help`` and the README's table) are what the
commands really return."""

import json
import os
import re
import subprocess
import sys

import pytest

from autograder import pipeline, sandbox
from autograder.__main__ import main
from autograder.config import ROOT
from autograder.pipeline import ExitCode


def test_every_code_is_documented_in_help_and_the_readme(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    helped = capsys.readouterr().out.split("exit codes")[1]
    readme = (ROOT / "README.md").read_text()
    documented = {int(code) for code in re.findall(r"^\| (\d) \| ", readme, re.MULTILINE)}
    assert documented == {int(code) for code in ExitCode} == {0, 1, 2, 3}
    assert all(re.search(rf"^  {int(code)}  ", helped, re.MULTILINE) for code in ExitCode)


def test_a_graded_submission_exits_0(assignment, tmp_path):
    results = tmp_path / "results.json"
    code = main(["grade", str(assignment.release), "--check", "discounted_returns_exact", "--no-html", "--results",
                 str(results)])
    assert code == ExitCode.OK == 0
    assert json.loads(results.read_text())["score"] == 0  # the blank release: graded, whatever the score


@pytest.mark.parametrize("argv", [["grade", "--no-such-option", "x.ipynb"], ["no-such-command"]],
                         ids=["unknown option", "unknown command"])
def test_bad_arguments_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == ExitCode.USAGE == 2


def test_an_assignment_not_in_course_toml_exits_2(assignment, tmp_path, capsys):
    code = main(["grade", str(assignment.release), "--assignment", "no_such_assignment", "--results",
                 str(tmp_path / "results.json")])
    assert code == ExitCode.USAGE == 2
    assert "no_such_assignment" in capsys.readouterr().err


def test_the_grader_failing_exits_1_with_results_written(assignment, tmp_path, monkeypatch, capsys):
    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug in the grader")

    monkeypatch.setattr(pipeline, "write_grade", broken)
    results = tmp_path / "results.json"
    code = main(["grade", str(assignment.release), "--check", "discounted_returns_exact", "--results", str(results)])
    assert code == ExitCode.FAILED == 1
    assert json.loads(results.read_text())["tests"][0]["name"] == "Autograder error"
    assert "The grader failed on this submission" in capsys.readouterr().out


def test_below_min_isolation_exits_3(assignment, tmp_path):
    """course.toml's min_isolation is above `none` (the probe is cached in a process: so in one of its own)."""
    results = tmp_path / "results.json"
    env = dict(os.environ, **{sandbox.FORCE_ENV: "none", "PYTHONPATH": str(ROOT)})
    proc = subprocess.run([sys.executable, "-m", "autograder", "grade", str(assignment.release), "--results",
                           str(results)], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == ExitCode.ISOLATION == 3, proc.stderr
    assert json.loads(results.read_text())["tests"][0]["name"] == "Autograder error"


def test_a_kernel_that_cannot_start_exits_1_with_results_and_a_page(assignment, tmp_path, monkeypatch, capsys):
    """The same last line of defence before any kernel (as grade-all's workers always had): results.json, JUnit and
    a feedback page, the traceback on stderr, exit 1."""
    from autograder.grade import Grader

    def broken(self, slot=0):
        raise RuntimeError("no kernel today")

    monkeypatch.setattr(Grader, "kernel", broken)
    results = tmp_path / "out" / "results.json"
    code = main(["grade", str(assignment.release), "--results", str(results), "--junit", str(tmp_path / "j.xml")])
    assert code == ExitCode.FAILED == 1
    assert json.loads(results.read_text())["tests"][0]["name"] == "Autograder error"
    assert (tmp_path / "out" / "feedback.html").exists() and (tmp_path / "j.xml").exists()
    assert "no kernel today" in capsys.readouterr().err
