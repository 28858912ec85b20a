"""What a command imports before it needs it: loading course.toml (every command does, and ``--help``) and the
modules of a grade import no torch, matplotlib, Gymnasium or nbgrader, which take a second or more each. They are
imported where they are used: torch and Gymnasium when a driver runs, matplotlib when a figure is drawn (and by the
reference's setup cell), nbgrader by the nbgrader course commands."""

import json
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
], ids=["course.toml", "--help", "grade"])
def test_loading_the_course_and_the_grader_imports_nothing_heavy(code):
    assert imported(code) == []
