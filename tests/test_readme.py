"""Every command block of README.md and docs/*.md runs as written (tests/readme_blocks.py reads their markers), and
the numbers the README states about points and penalties are course.toml's."""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import nbformat
import pytest

from gradekit.checks import ConvergenceCheck
from tests import readme_blocks
from tests.conftest import fill_release
from tests.readme_blocks import ROOT

VENV = Path(sys.prefix)  # the venv running the tests: the scratch copy's .venv
COPIED = ["autograder", "gradekit", "bin", "assignments", "source", "release", "bench", "tests", "course.toml",
          "pyproject.toml", "requirements.lock"]
DRY = ["benchmark", "calibration", "calibration-baseline", "calibration-gymnasium", "calibration-fetch", "channel"]
RUN = ["commands", "nbgrader"]
ASSIGNMENT = "week03_policy_gradients"
README = (ROOT / "README.md").read_text()


@pytest.fixture
def repo(tmp_path) -> Path:
    """A scratch copy of the repository with the venv, for commands run from its root (REPO)."""
    copy = tmp_path / "repo"
    copy.mkdir()
    for name in COPIED:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, copy / name)
    (copy / ".venv").symlink_to(VENV)
    return copy


def nbgrader_course(folder: Path, exchange: Path | None = None) -> Path:
    folder.mkdir(parents=True)
    config = 'c = get_config()\nc.CourseDirectory.course_id = "ENN585"\n'
    if exchange:
        exchange.mkdir(mode=0o777)
        config += f'c.Exchange.root = "{exchange}"\n'
    (folder / "nbgrader_config.py").write_text(config)
    return folder


def submit(course: Path, assignment, student: str, blank: bool = False) -> Path:
    folder = course / "submitted" / student / ASSIGNMENT
    folder.mkdir(parents=True)
    (folder / "timestamp.txt").write_text("2026-03-20 10:00:00.000000 UTC")  # on time
    (folder / "submission_secret.txt").write_text("0" * 128)  # as nbgrader submit writes it and collect brings it
    return fill_release(assignment, folder / assignment.notebook, blank=assignment.graded_cells if blank else ())


def run(block_id: str, places: dict, tmp_path: Path):
    proc = readme_blocks.run(readme_blocks.block(block_id), places, tmp_path, VENV)
    print("\n".join(line for line in proc.stderr.splitlines() if line.startswith("README> ")))  # lines, times
    assert proc.returncode == 0, f"{proc.stderr[-4000:]}\n{proc.stdout[-2000:]}"
    return proc


def test_every_bash_block_is_marked_and_tested():
    """A new command block cannot slip through: it needs a marker, and a run one needs its test here."""
    blocks = readme_blocks.all_blocks()
    unmarked = [b.where for b in blocks if b.lang == "bash" and b.marker is None]
    assert unmarked == [], "mark these blocks (tests/readme_blocks.py says how)"
    ids = [b.id for b in blocks if b.marker and not b.skip]
    assert sorted(ids) == sorted(RUN + DRY), "each marked block has its test in tests/test_readme.py"
    for b in blocks:
        if b.marker and not b.skip:
            assert set(b.options) <= {"id", "cwd", "venv", *readme_blocks.LINE_OPTIONS}, b.where
            assert all(why for k in readme_blocks.LINE_OPTIONS for _, why in b.options.get(k, [])), \
                f"{b.where}: every dry, not-run and status option says why"
            for key in readme_blocks.LINE_OPTIONS:
                b.lines_for(key)  # each picks exactly one line
        if b.skip:
            assert re.fullmatch(r"skip \(.+\)", b.marker), f"{b.where}: a skip says why"


@pytest.mark.slow
def test_readme_commands(repo, tmp_path, assignment):
    """The command list of "The two commands", from the repository's root, every line but `calibrate` for real."""
    submission = fill_release(assignment, tmp_path / assignment.notebook)
    course_dir = nbgrader_course(tmp_path / "course")
    submit(course_dir, assignment, "ada", blank=True)
    proc = run("commands", {"REPO": str(repo), "SUBMISSION.ipynb": str(submission), "COURSE_DIR": str(course_dir)},
               tmp_path)

    results = json.loads((repo / "results.json").read_text())  # the reference: every check's points
    assert results["score"] == sum(c.points for c in assignment.checks)
    assert (repo / "feedback.html").exists() and "<testsuite" in (repo / "junit.xml").read_text()
    graded = json.loads((course_dir / "results" / "ada" / ASSIGNMENT / "results.json").read_text())
    assert graded["score"] == 0  # the blank release
    for made in (f"grades-{ASSIGNMENT}.csv", f"summary-{ASSIGNMENT}.txt", f"report-{ASSIGNMENT}.html",
                 f"source/{ASSIGNMENT}/{assignment.notebook}"):
        assert list(course_dir.rglob(made)), made
    assert (repo / "autograder.zip").stat().st_size > 0 and "gradekit" in (repo / "public-checks.yml").read_text()
    assert (repo / "ani.gif").read_bytes()[:6] == b"GIF89a"
    assert nbformat.read(repo / "release" / ASSIGNMENT / assignment.notebook, as_version=4).cells
    assert "dry run, arguments parsed by python -m autograder" in proc.stdout  # calibrate --seeds 1000
    assert "Hidden checks exist" in proc.stdout and "Some public checks failed" in proc.stdout  # the blank release


@pytest.mark.slow
def test_readme_nbgrader_course(repo, tmp_path, assignment):
    """"In an nbgrader course": the instructor's shell from activating the venv to releasing feedback."""
    course = nbgrader_course(tmp_path / "course", exchange=tmp_path / "exchange")
    submit(course, assignment, "ada")  # what release_assignment and collect would have put there
    run("nbgrader", {"REPO": str(repo), "COURSE": str(course), "…": ""}, tmp_path)

    assert (course / "source" / ASSIGNMENT / "public_checks.json").exists()  # nbgrader-source: notebook + public checks
    assert (course / "release" / ASSIGNMENT / assignment.notebook).exists()  # generate_assignment
    results = json.loads((course / "results" / "ada" / ASSIGNMENT / "results.json").read_text())
    assert results["score"] == sum(c.points for c in assignment.checks)
    assert (course / "gradebook.db").exists()
    assert (course / "autograded" / "ada" / ASSIGNMENT / assignment.notebook).exists()
    assert (course / "feedback" / "ada" / ASSIGNMENT / f"{Path(assignment.notebook).stem}.html").exists()
    assert list((tmp_path / "exchange").rglob("*.html")), "release_feedback put the feedback in the exchange"


@pytest.mark.parametrize("block_id", DRY)
def test_docs_commands_parse(repo, tmp_path, block_id):
    """The benchmarks' and calibrations' commands take minutes to hours: each program parses the line's arguments
    with its own parser (a wrong flag fails) and stops."""
    block = readme_blocks.block(block_id)
    proc = run(block_id, {"REPO": str(repo)}, tmp_path)
    assert proc.stdout.count("dry run, arguments parsed") == len(block.commands())


# Numbers the README states, against course.toml.

def test_late_penalty_numbers_are_course_toml(assignment):
    (per_day, total, most), = re.findall(r"each started day after the due date costs ([\d.]+) of the assignment's "
                                         r"points \(checks \+ questions, (\d+)\), at most (\d+(?:\.\d+)?)", README)
    assert (float(per_day), float(total), float(most)) == (assignment.late_penalty_per_day, assignment.points,
                                                          assignment.late_penalty_max)


def test_points_of_the_checks_are_course_toml(assignment):
    (behaviour, total), = re.findall(r"worth\s+(\d+) of the (\d+) points of the checks", README)
    assert float(total) == sum(c.points for c in assignment.checks)
    assert float(behaviour) == sum(c.points for c in assignment.checks if isinstance(c, ConvergenceCheck))


SECTIONS = {"## Checks and calibration": "week03_policy_gradients",
            "## Optional part: REINFORCE on Gymnasium": "week03_gymnasium",
            "## Optional part: Fetch Slide by imitation": "week03_fetch_slide"}


@pytest.mark.parametrize("heading", SECTIONS)
def test_check_tables_are_course_toml(course, heading):
    """Each part's table of checks: every check, its points, its random cases, its threshold, bound and k-of-n rule."""
    assignment = course.assignment(SECTIONS[heading])
    section = README.split(heading, 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(\w+)` \| ([\d.]+) \| (.*) \|$", section, re.M)
    assert [name for name, _, _ in rows] == [c.name for c in assignment.checks]
    for name, points, what in rows:
        check = assignment.check(name)
        assert float(points) == check.points, name
        if isinstance(check, ConvergenceCheck):
            assert f"on {check.min_passing} of {len(check.seeds)} seeds" in what, name
            assert f"≥ {check.threshold:g}" in what, name
        if getattr(check, "max_ratio", None) is not None:
            assert f"≤ {check.max_ratio:g}" in what, name
        if getattr(check, "random_cases", None) is not None:
            assert set(re.findall(r"\b(\d+) random\b", what)) <= {str(check.random_cases)}, name


def test_limits_stated_are_course_toml(course):
    limits = course.assignment(ASSIGNMENT).limits
    stated = re.search(r"\(`\[assignments.<id>.limits\]`\): (\d+) s of wall clock per graded cell or per check, "
                       r"(\d+) s\s+per submission, (\d+) GB of address space, (\d+) s of CPU per kernel process, and "
                       r"(\d+) KB", README)
    assert tuple(map(float, stated.groups())) == (limits.cell_seconds, limits.submission_seconds,
                                                  limits.memory_mb / 1024, limits.cpu_seconds, limits.output_kb)
    gym = course.assignment("week03_gymnasium").limits
    assert f"limits of {gym.cell_seconds:g} s per check and {gym.submission_seconds:g} s per\nsubmission" in README


def test_reference_marks_stated_are_course_toml(assignment):
    """setup.sh's grade of the reference (tests/test_setup_sh.py asserts full marks)."""
    (got, out_of), = re.findall(r"reference (\d+)/(\d+) at level `fallback`", README)
    assert float(got) == float(out_of) == sum(c.points for c in assignment.checks)


def test_points_by_clause_add_up_to_the_checks_points(course):
    """The table of "Points by clause": the clauses of each check share its points."""
    table = README.split("| check | clause (first: the values) | cases | points |", 1)[1].split("\n\n", 1)[0]
    parts = [course.assignment(a) for a in course.assignments]
    totals, name = {}, None
    for first, points in re.findall(r"^\|\s*([^|]*?)\s*\|[^|]*\|[^|]*\|([^|]*)\|$", table, re.M):
        if first.startswith("-"):
            continue  # the header's rule
        names = re.findall(r"`(\w+)`", first) or [name]
        numbers = [float(n) for n in re.findall(r"[\d.]+", points)]
        where = parts[1:] if first.startswith("Gymnasium part") else parts
        if len(names) == 1:
            numbers = [sum(numbers)]
        for name, number in zip(names, numbers, strict=True):
            check = next(a.check(name) for a in where if any(c.name == name for c in a.checks))
            totals[check] = totals.get(check, 0) + number
    assert len(totals) >= 10
    assert {c.name: t for c, t in totals.items()} == {c.name: float(c.points) for c in totals}
