"""Exports for instructors: JUnit XML, the class report, the Gradescope zip, the GitHub Actions workflow, progress."""

import base64
import csv
import json
import os
import shutil
import socket
import subprocess
import sys
import xml.etree.ElementTree as ET
import zipfile
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

from autograder import config
from autograder.__main__ import main
from autograder.exports import github_workflow
from autograder.notebook import SubmissionError, find_notebook
from autograder.results import AUTOGRADER_ERROR, error_results, write_json
from tests.conftest import CATALOGUE, fill_release, load_variant

EXACT = ["policy_gradient_update_exact", "pg_loss_exact", "discounted_returns_exact", "reinforce_loss_exact"]
ENV = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
# Commands run in-process through the CLI's main() where they need no process of their own: starting Python with
# torch costs ~5 s on this machine. grade-all and run_autograder start real processes.


# ---------------------------------------------------------------------------------------------------- JUnit XML
def test_junit_fails_exactly_the_checks_a_buggy_submission_fails(assignment, tmp_path):
    """Two catalogued bugs in one notebook: their exactness checks are JUnit failures with the check's output; the
    grade is a result, not an error, so the command exits 0 (a CI job does not fail on a low score)."""
    answers, expected = {}, set()
    for bug in ("pg_loss_sign_flipped.py", "returns_off_by_one.py"):
        functions, fails, _ = load_variant(CATALOGUE / "bugs" / bug)
        answers |= functions
        expected |= set(fails) & set(EXACT)
    path = fill_release(assignment, tmp_path / "bug.ipynb", answers)
    assert main(["grade", str(path), "--results", str(tmp_path / "results.json"), "--junit", str(tmp_path / "j.xml"),
                 "--no-html", *[a for name in EXACT for a in ("--check", name)]]) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    suite = ET.parse(tmp_path / "j.xml").getroot().find("testsuite")
    assert suite.get("name") == assignment.id
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("4", str(len(expected)), "0")
    suite_props = {p.get("name"): p.get("value") for p in suite.find("properties")}  # score: the suite's only
    assert suite_props == {"score": f"{results['score']:g}", "max_score": "11"}
    outputs = {t["name"]: t["output"] for t in results["tests"]}
    seconds = results["extra_data"]["check_seconds"]
    failed = set()
    for case in suite.findall("testcase"):
        assert case.find("properties") is None  # not allowed inside a testcase by junit-10.xsd
        out = dict(line.split(": ", 1) for line in case.find("system-out").text.splitlines())
        check = out["check"]
        assert out["score"].endswith(f"/ {assignment.check(check).points:g}")
        assert float(case.get("time")) == pytest.approx(seconds[check], abs=1e-3) and seconds[check] > 0
        failure = case.find("failure")
        if failure is not None:
            failed.add(check)
            assert out["score"].startswith("0 /")
            assert failure.get("message") == failure.text == outputs[case.get("name")]
    assert failed == expected == {"pg_loss_exact", "discounted_returns_exact"}
    assert_valid_junit(tmp_path / "j.xml")


def assert_valid_junit(path: Path) -> None:
    """Valid under junit-10.xsd, the Jenkins xunit plugin's schema as pytest's own tests use it (tests/files/,
    copied from pytest 8.4.2's sdist, MIT licence in its header)."""
    xmlschema = pytest.importorskip("xmlschema")
    xmlschema.XMLSchema(str(Path(__file__).parent / "files" / "junit-10.xsd")).validate(str(path))
    for case in ET.parse(path).getroot().iter("testcase"):
        assert case.get("time") is not None


def test_junit_of_a_notebook_for_no_assignment_is_valid_and_says_why(tmp_path):
    """A notebook no assignment matches: results.json gets 0 and the message, JUnit one failed testcase with it."""
    path = tmp_path / "mine.ipynb"
    path.write_text(json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    assert main(["grade", str(path), "--results", str(tmp_path / "r.json"), "--junit", str(tmp_path / "j.xml")]) == 0
    results = json.loads((tmp_path / "r.json").read_text())
    assert results["score"] == 0 and results["tests"] == [] and "Could not tell which assignment" in results["output"]
    (case,) = ET.parse(tmp_path / "j.xml").getroot().iter("testcase")
    assert case.find("failure").get("message") == results["output"]
    assert_valid_junit(tmp_path / "j.xml")


def test_junit_is_written_when_the_grader_fails(assignment, tmp_path):
    """A course whose source notebook is gone: the grader fails (exit 1, the traceback on stderr) but leaves
    results.json and an <error> testcase behind."""
    course_dir = tmp_path / "course"
    course_dir.mkdir()
    shutil.copy(config.DEFAULT_CONFIG, course_dir / "course.toml")
    shutil.copytree(assignment.release.parent, course_dir / "release" / assignment.id)
    (course_dir / "assignments").symlink_to(assignment.root / "assignments")
    path = fill_release(assignment, tmp_path / "s.ipynb")
    assert main(["--config", str(course_dir / "course.toml"), "grade", str(path), "--assignment", assignment.id,
                 "--results", str(tmp_path / "results.json"), "--junit", str(tmp_path / "j.xml"), "--no-html"]) == 1
    assert json.loads((tmp_path / "results.json").read_text())["tests"][0]["name"] == AUTOGRADER_ERROR
    suite = ET.parse(tmp_path / "j.xml").getroot().find("testsuite")
    (case,) = suite.findall("testcase")
    assert suite.get("errors") == "1" and case.find("failure") is None
    assert "FileNotFoundError" in case.find("error").get("message")
    assert_valid_junit(tmp_path / "j.xml")


# ------------------------------------------------------------------------------------------------ class report
class Tables(HTMLParser):
    """The text of every table cell, table by table, and every image source."""

    def __init__(self, page: str):
        super().__init__()
        self.tables, self.images, self._cell = [], [], None
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = ""
        elif tag == "img":
            self.images.append(dict(attrs)["src"])

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.tables[-1][-1].append(self._cell.strip())
            self._cell = None


def test_class_report_after_a_batch_and_rebuilt_with_an_error(assignment, tmp_path, capsys):
    """Three students on the three fast exactness checks: full marks, one bug, blank. Then a fourth whose grading
    errored, and ``report`` rebuilds everything from the results folder."""
    checks = ["policy_gradient_update_exact", "pg_loss_exact", "discounted_returns_exact"]
    folder = lambda s: tmp_path / "submitted" / s / assignment.id  # noqa: E731
    for student in ("ada", "bob", "cy"):
        folder(student).mkdir(parents=True)
    fill_release(assignment, folder("ada") / assignment.notebook)
    (folder("bob") / assignment.notebook).write_bytes(assignment.release.read_bytes())
    fill_release(assignment, folder("cy") / assignment.notebook,
                 load_variant(CATALOGUE / "bugs" / "pg_loss_prob_not_log.py")[0])
    assert main(["grade-all", str(tmp_path), "--jobs", "2", *[a for name in checks for a in ("--check", name)]]) == 0
    out = tmp_path / "results"
    report = out / f"report-{assignment.id}.html"
    assert f"report: {report}" in capsys.readouterr().out

    def tables():
        page = report.read_text()
        assert "<script" not in page and "<link" not in page and "http" not in page.split("<body>")[1]
        parsed = Tables(page)
        assert len(parsed.images) == 2  # the histogram and the pass-rate bars, inline
        for src in parsed.images:
            assert base64.b64decode(src.removeprefix("data:image/png;base64,"))[:8] == b"\x89PNG\r\n\x1a\n"
        return parsed.tables, page

    (rates, slowest, mistakes, students), page = tables()  # the last two: tests/test_nbgrader_course.py
    assert "3 students: 3 graded, autograder errors: 0" in page
    assert ("mean score: 4.33 of 8 over the 3 graded students (autograder errors, which have no grade yet, left "
            "out); median 5, min 0, max 8; full marks: 1") in page
    assert [(r[0], r[3], r[4]) for r in rates[1:]] == [
        ("policy_gradient_update_exact", "2 / 3", "66.7 %"), ("pg_loss_exact", "1 / 3", "33.3 %"),
        ("discounted_returns_exact", "2 / 3", "66.7 %")]
    seconds = {s: json.loads((out / s / assignment.id / "results.json").read_text())["execution_time"]
               for s in ("ada", "bob", "cy")}
    expected = sorted(seconds, key=lambda s: (-seconds[s], s))
    assert [(r[0], float(r[1])) for r in slowest[1:]] == [(s, seconds[s]) for s in expected]
    assert "None: every submission was graded." in page
    assert mistakes[1:] == [["pg_loss_exact", "the loss uses the probability instead of its logarithm", "1"]]
    assert [row[:3] for row in students[1:]] == [["ada", "graded", "8"], ["bob", "graded", "0"], ["cy", "graded", "5"]]

    write_json(out / "dan" / assignment.id / "results.json", error_results(assignment, RuntimeError("kernel gone")))
    assert main(["report", str(tmp_path), "--assignment", assignment.id]) == 0
    (rates_after, _, errors, _, _), page = tables()
    assert "4 students: 3 graded, autograder errors: 1" in page
    assert rates_after == rates, "an errored student is not a failed one"
    assert errors[1] == ["dan", "RuntimeError('kernel gone')"]
    with open(out / f"grades-{assignment.id}.csv") as f:
        assert {row["student"]: row["autograder_error"] for row in csv.DictReader(f)}["dan"] == "True"
    assert "students: 4, graded: 3, autograder errors: 1" in capsys.readouterr().out


def test_report_of_a_folder_without_results_says_so(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 1
    assert "no week03_policy_gradients results" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------ Gradescope zip
@pytest.fixture(scope="module")
def gradescope_source(tmp_path_factory):
    """The zip built by the command, unzipped where Gradescope puts it: <tmp>/autograder/source."""
    tmp = tmp_path_factory.mktemp("gradescope")
    assert main(["gradescope-zip", "--out", str(tmp / "autograder.zip")]) == 0
    with zipfile.ZipFile(tmp / "autograder.zip") as archive:
        modes = {info.filename: info.external_attr >> 16 for info in archive.infolist()}
        archive.extractall(tmp / "source")
    assert modes["run_autograder"] & 0o111 and modes["setup.sh"] & 0o111
    return tmp / "source"


def run_autograder(source: Path, root: Path, submission: dict[str, Path], checks: list[str] = EXACT) -> dict:
    """Lay out <root>/autograder like Gradescope and run run_autograder with this venv's Python, outside the repo and
    without PYTHONPATH, so only the zip's copy of the grader can be imported."""
    shutil.copytree(source, root / "autograder" / "source")
    (root / "autograder" / "submission").mkdir()
    for name, path in submission.items():
        shutil.copy(path, root / "autograder" / "submission" / name)
    env = {k: v for k, v in ENV.items() if k != "PYTHONPATH"}
    env |= {"AUTOGRADER_ROOT": str(root / "autograder"), "AUTOGRADER_PYTHON": sys.executable,
            "AUTOGRADER_CHECKS": " ".join(checks)}
    proc = subprocess.run(["bash", str(root / "autograder" / "source" / "run_autograder")], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads((root / "autograder" / "results" / "results.json").read_text())


def test_zip_has_gradescopes_layout_and_a_valid_setup(gradescope_source, assignment):
    names = {p.relative_to(gradescope_source).as_posix() for p in gradescope_source.rglob("*") if p.is_file()}
    assert {"setup.sh", "run_autograder", "course.toml", "requirements.txt", "pyproject.toml",
            "autograder/__main__.py", "autograder/grade.py", f"source/{assignment.id}/{assignment.notebook}",
            f"release/{assignment.id}/{assignment.notebook}"} <= names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    setup = gradescope_source / "setup.sh"
    assert subprocess.run(["bash", "-n", str(setup)], capture_output=True).returncode == 0
    text = setup.read_text()
    assert '-m pip install --no-cache-dir -r "$SOURCE/requirements.txt"' in text and "torch 2.13.0" in text
    assert 'TORCH_INDEX="${AUTOGRADER_TORCH_INDEX-https://download.pytorch.org/whl/cpu}"' in text
    assert 'uv/0.13.9/install.sh' in text and 'python install "3.11"' in text and "ppa:deadsnakes/ppa" in text
    assert 'sys.version_info[:2] == (3, 11) and sys.version_info.releaselevel == "final"' in text
    assert "requirements.lock" not in names  # the image installs what grading needs, not the whole lock
    assert subprocess.run(["bash", "-n", str(gradescope_source / "run_autograder")]).returncode == 0
    assert "--no-html" not in (gradescope_source / "run_autograder").read_text()


def test_the_image_installs_what_grading_the_lecture_part_needs_and_no_more(gradescope_source, assignment):
    """The zip's requirements.txt: the grader's packages, the assignment's student_packages and their dependencies at
    the lock's versions; no JupyterLab, pytest, nbgrader or MuJoCo for the lecture part (1.5 GB of venv before)."""
    from autograder import pins

    theirs, lock = pins.read_pins(gradescope_source / "requirements.txt"), pins.read_pins(pins.LOCK)
    assert theirs == {name: lock[name] for name in theirs} and theirs["torch"] == "2.13.0+cpu"
    assert {"nbformat", "nbclient", "ipykernel", "tqdm", "numpy", "matplotlib", "gymnasium"} <= set(theirs)
    unwanted = {"jupyterlab", "notebook", "nbgrader", "pytest", "xmlschema", "mujoco", "gymnasium-robotics"}
    assert not unwanted & set(theirs) and not [n for n in theirs if n.startswith(("jupyterlab", "pytest"))]
    assert len(theirs) < len(lock) / 2


def test_run_autograder_gives_the_reference_full_marks(gradescope_source, assignment, tmp_path):
    notebook = fill_release(assignment, tmp_path / "x.ipynb")
    results = run_autograder(gradescope_source, tmp_path, {"my answers.ipynb": notebook})
    assert [t["name"] for t in results["tests"]] == [assignment.check(c).title for c in EXACT]
    assert results["score"] == sum(assignment.check(c).points for c in EXACT) == 11
    assert all(t["status"] == "passed" and t["visibility"] == "visible" for t in results["tests"])
    assert results["output_format"] == "html" and "<b>11 / 11</b> points" in results["output"]
    assert "after the due date" not in results["output"]


def test_run_autograder_shows_the_feedback_page_and_wrong_cases_after_the_due_date(gradescope_source, assignment,
                                                                                    tmp_path):
    """Two catalogued bugs and a behaviour check with a figure: each check's verdict, hint and figure are visible
    (html); a failed exactness check's first wrong case and table of wrong cases (maybe hidden cases) are a 0-point test shown
    after the due date. results.json stays small."""
    answers = {}
    for bug in ("pg_loss_sign_flipped.py", "returns_off_by_one.py"):
        answers |= load_variant(CATALOGUE / "bugs" / bug)[0]
    notebook = fill_release(assignment, tmp_path / "x.ipynb", answers)
    checks = EXACT + ["bandit_table_learns"]
    results = run_autograder(gradescope_source, tmp_path, {assignment.notebook: notebook}, checks)
    visible = [t for t in results["tests"] if t["visibility"] == "visible"]
    later = [t for t in results["tests"] if t["visibility"] != "visible"]
    assert [t["name"] for t in visible] == [c.title for c in assignment.checks if c.name in checks]
    assert results["score"] == sum(t["score"] for t in visible) == 3 + 3 + 1
    assert all(t["output_format"] == "html" for t in results["tests"]) and results["output_format"] == "html"
    by_name = {t["name"]: t for t in results["tests"]}
    for check, hint in (("pg_loss_exact", "Likely mistake: the sign is flipped"),
                        ("discounted_returns_exact", "Likely mistake: off by one")):
        title = assignment.check(check).title
        verdict, details = by_name[title], by_name[title + ": details of the wrong cases"]
        assert verdict["status"] == "failed" and verdict["score"] == 0 and verdict["max_score"] > 0
        assert "cases are wrong." in verdict["output"] and hint in verdict["output"]
        assert "First wrong case" not in verdict["output"] and "<table>" not in verdict["output"]
        assert (details["visibility"], details["score"], details["max_score"]) == ("after_due_date", 0, 0)
        assert "First wrong case" in details["output"] and "<table>" in details["output"]
    assert len(later) == 2
    assert "shown after the due date" in results["output"]
    figure = by_name[assignment.check("bandit_table_learns").title]["output"]
    png = base64.b64decode(figure.split("data:image/png;base64,")[1].split("'")[0])
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) < 60_000
    size = (tmp_path / "autograder" / "results" / "results.json").stat().st_size
    assert size < 100_000, size
    assert not (tmp_path / "autograder" / "results" / "feedback.html").exists()


def test_run_autograder_without_a_notebook_gives_zero_and_says_what_to_submit(gradescope_source, tmp_path):
    results = run_autograder(gradescope_source, tmp_path, {})
    assert results["score"] == 0 and results["tests"]
    message = "No notebook (.ipynb file) was submitted. Submit the released policy_gradients.ipynb"
    assert message in results["output"]
    assert all(t["score"] == 0 and message in t["output"] for t in results["tests"])


@pytest.mark.parametrize("files, found", [
    (["a/policy_gradients.ipynb", "scratch.ipynb", ".ipynb_checkpoints/policy_gradients-checkpoint.ipynb"],
     "a/policy_gradients.ipynb"),
    (["policy_gradients (2).ipynb", "__MACOSX/._policy_gradients (2).ipynb"], "policy_gradients (2).ipynb"),
    (["one.ipynb", "two.ipynb"], "2 notebooks were submitted (one.ipynb, two.ipynb) and none is named"),
    (["a/policy_gradients.ipynb", "b/policy_gradients.ipynb"], "2 copies of policy_gradients.ipynb"),
    ([], "No notebook (.ipynb file) was submitted"),
])
def test_which_notebook_of_a_folder_is_graded(assignment, tmp_path, files, found):
    for name in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("{}")
    try:
        assert find_notebook(tmp_path, assignment) == tmp_path / found
    except SubmissionError as exc:
        assert found in str(exc)
        assert not (tmp_path / found).exists()


# ------------------------------------------------------------------------------------- GitHub Actions workflow
def test_workflow_runs_the_public_checks_with_no_secret(course, assignment, tmp_path, capsys):
    """The student's repository is the release folder: one checkout (no other repository, no token kept), the
    release's requirements.txt only, `python -m gradekit NOTEBOOK`, and its output and figures uploaded always."""
    assert main(["github-workflow", "--assignment", assignment.id, "--out", str(tmp_path / "checks.yml")]) == 0
    assert capsys.readouterr().out == ""
    text = (tmp_path / "checks.yml").read_text()
    assert main(["github-workflow"]) == 0 and capsys.readouterr().out == text  # stdout holds only the workflow
    assert "secrets" not in text and "token" not in text.lower() and "GRADER" not in text
    workflow = yaml.safe_load(text)
    assert "push" in workflow.get("on", workflow.get(True))  # PyYAML reads the key `on` as True (YAML 1.1)
    assert workflow["permissions"] == {"contents": "read"}
    (job,) = workflow["jobs"].values()
    steps = job["steps"]
    uses = {s.get("uses", "").split("@")[0]: s for s in steps}
    (checkout,) = [s for s in steps if s.get("uses", "").startswith("actions/checkout@")]
    assert checkout["with"] == {"persist-credentials": False}
    python = uses["actions/setup-python"]["with"]
    assert (python["python-version"], python["cache"], python["cache-dependency-path"]) == (
        "3.11", "pip", "requirements.txt")
    assert [s["run"] for s in steps if "pip" in s.get("run", "")] == ["python -m pip install -r requirements.txt"]
    assert job["env"]["PIP_EXTRA_INDEX_URL"] == "https://download.pytorch.org/whl/cpu"  # torch's CPU build
    (checks,) = [s for s in steps if "gradekit" in s.get("run", "")]
    assert checks["run"] == f'python -m gradekit "{assignment.notebook}" 2>&1 | tee public-checks.txt'
    assert checks["shell"] == "bash" and "if" not in checks  # bash -eo pipefail: a failed check fails the run
    upload = uses["actions/upload-artifact"]
    assert upload["if"] == "always()" and upload["with"]["path"].split() == ["public-checks.txt", "public-check-plots/"]


@pytest.mark.slow
def test_workflow_steps_pass_in_a_fresh_venv_from_the_student_requirements(course, assignment, tmp_path):
    """The workflow's `run` steps, in order, in a copy of the release folder with the reference's answers, with a
    fresh venv's python first on PATH (as setup-python gives) and nothing installed but requirements.txt."""
    release = assignment.release.parent
    if not (release / "gradekit").is_dir() or not (release / "requirements.txt").is_file():
        pytest.skip("the release has no gradekit/ and requirements.txt yet")
    repo = tmp_path / "repo"
    shutil.copytree(release, repo)
    fill_release(assignment, repo / assignment.notebook)
    subprocess.run([sys.executable, "-m", "venv", str(tmp_path / "venv")], check=True)
    workflow = yaml.safe_load(github_workflow(course, assignment))
    (job,) = workflow["jobs"].values()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")} | job["env"]
    env |= {"PATH": f"{tmp_path / 'venv' / 'bin'}:{os.environ['PATH']}", "GITHUB_STEP_SUMMARY": str(tmp_path / "sum")}
    try:
        socket.getaddrinfo("download.pytorch.org", 443)
    except OSError:
        env.pop("PIP_EXTRA_INDEX_URL")  # unreachable here: torch's CPU wheel comes from pip's configured find-links
        env["PIP_RETRIES"] = "0"  # requirements.txt names that index too: pip skips it at once, not after 5 retries
        # of every package's page (~7.6 s each here, ~5 of this test's 7 minutes)
    for step in job["steps"]:
        if "run" in step:
            proc = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]], cwd=repo,
                                  env=env, capture_output=True, text=True, timeout=1800)
            assert proc.returncode == 0, (step["name"], proc.stdout[-2000:], proc.stderr[-2000:])
    assert (repo / "public-checks.txt").read_text() and (tmp_path / "sum").read_text().startswith("```")
    assert list((repo / "public-check-plots").glob("*.png"))


# ---------------------------------------------------------------------------------------------- progress bars
def test_calibrate_shows_progress_on_stderr_only(assignment, capfd):
    from autograder.calibrate import calibrate

    variant = CATALOGUE / "correct" / "update_in_place.py"  # touches only the bandit table check: fast
    (calibration,) = list(calibrate(assignment, 3, variant=variant, jobs=1))
    out, err = capfd.readouterr()
    assert len(calibration.metrics) == 3
    assert out == "" and "bandit_table_learns [update_in_place]" in err and "3/3" in err


def test_the_summary_and_the_report_give_one_class_mean(assignment):
    """One definition of the class mean, said the same way in the summary and the report: over the graded students,
    autograder errors (no grade yet) left out. (Before: the summary counted a failed grade as 0, "mean score: 7.00",
    while the report left it out, "mean 10.50 of 21".)"""
    import re

    from autograder import batch, exports
    from autograder.grade import Report
    from autograder.results import error_results, gradescope
    from gradekit.checks import CheckResult

    check = assignment.checks[0]
    graded = gradescope(Report(assignment.id, "a.ipynb", [CheckResult(check.name, check.title, check.points,
                                                                      check.points, "ok")], 1.0))
    rows = [("ada", graded), ("bob", error_results(assignment, RuntimeError("grader failed")))]
    summary = batch.summary(rows)
    report = exports.render_report(exports.class_stats(rows, assignment))
    line = exports.class_mean([graded["score"]], exports.class_stats(rows, assignment).max_score)
    assert line in summary and line in report.replace("&#x27;", "'")
    assert re.search(rf"mean score: {graded['score']:.2f} of .* over the 1 graded students", summary)
