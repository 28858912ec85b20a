"""Exports for instructors: a class report, a Gradescope autograder zip and a GitHub Actions workflow.

Each is made from what the grader already writes (results.json files) or already needs (course.toml, this package,
the pinned lock, the assignment's notebooks). The zip and the workflow run the same ``python -m autograder grade``
that ``grade-all`` runs, so a grade made on Gradescope or in CI is the grade the course would make itself.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import zipfile
from dataclasses import dataclass
from pathlib import Path

from gradekit.plots import base64_png

from autograder import config
from autograder.notebook import SubmissionError
from autograder.results import AUTOGRADER_ERROR, error_results, write_atomic

# ------------------------------------------------------------------------------------ a submission given as a folder
IGNORED_PARTS = {"__MACOSX", "__pycache__"}  # and hidden folders such as .ipynb_checkpoints or .git


def notebooks_in(folder: Path) -> list[Path]:
    """Every notebook under ``folder``, except copies that Jupyter, Git or macOS zips keep in hidden folders."""
    return sorted(p for p in folder.rglob("*.ipynb") if p.is_file() and not any(
        part in IGNORED_PARTS or part.startswith(".") for part in p.relative_to(folder).parts))


def find_notebook(folder: Path, assignment) -> Path:
    """The notebook to grade in a submitted folder (Gradescope's ``submission/``, a student's repository).

    A notebook with the released name wins, so scratch notebooks next to it do no harm; a single notebook under
    another name is graded too. Anything else is refused with a message the student can act on, never guessed."""
    notebooks = notebooks_in(folder)
    named = [p for p in notebooks if p.name == assignment.notebook]
    if len(named) == 1:
        return named[0]
    if len(notebooks) == 1:
        return notebooks[0]
    if not notebooks:
        raise SubmissionError(f"No notebook (.ipynb file) was submitted. Submit the released {assignment.notebook} "
                              "with your answers.")
    listed = ", ".join(str(p.relative_to(folder)) for p in named or notebooks)
    if named:
        raise SubmissionError(f"{len(named)} copies of {assignment.notebook} were submitted ({listed}), so the "
                              "grader cannot tell which one to grade. Submit only one.")
    raise SubmissionError(f"{len(notebooks)} notebooks were submitted ({listed}) and none is named "
                          f"{assignment.notebook}, so the grader cannot tell which one to grade. Submit only your "
                          f"{assignment.notebook}.")


# ---------------------------------------------------------------------------------------------------- class report
@dataclass(frozen=True)
class CheckRate:
    name: str
    title: str
    points: float
    passed: int
    graded: int

    @property
    def rate(self) -> float:
        return self.passed / self.graded if self.graded else 0.0


@dataclass(frozen=True)
class ClassStats:
    title: str
    max_score: float
    scores: dict[str, float]  # students the grader graded (an unreadable notebook is graded: 0)
    checks: list[CheckRate]
    slowest: list[tuple[str, float, float]]  # (student, seconds, score), slowest first
    errors: dict[str, str]  # students the grader failed on, with its error: regrade them
    limit_seconds: float


def results_dir(path: Path) -> Path:
    """Accept the course directory or its ``results/`` folder (``autograded/`` of a course graded before)."""
    for name in ("results", "autograded"):
        if (path / name).is_dir() and any((path / name).glob("*/*/results.json")):
            return path / name
    return path


def report_path(out: Path, assignment) -> Path:
    return out / f"report-{assignment.id}.html"


def read_rows(out: Path, assignment) -> list[tuple[str, dict]]:
    """(student, results.json) for every ``<student>/<assignment>/results.json`` under ``out``; an unreadable file
    counts as an autograder error, so the student shows up in the report as one to regrade."""
    rows = []
    for path in sorted(out.glob(f"*/{assignment.id}/results.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            data = error_results(assignment, RuntimeError(f"unreadable {path.name}: {exc}"))
        rows.append((path.parent.parent.name, data))
    return rows


def class_stats(rows: list[tuple[str, dict]], assignment, slowest: int = 10) -> ClassStats:
    def is_error(result: dict) -> bool:
        return any(t["name"] == AUTOGRADER_ERROR for t in result.get("tests", []))

    graded = [(s, r) for s, r in rows if not is_error(r)]
    names = {check.title: check.name for check in assignment.checks}
    titles = list(dict.fromkeys(t["name"] for _, r in graded for t in r.get("tests", [])))
    checks = []
    for title in titles:
        tests = [t for _, r in graded for t in r.get("tests", []) if t["name"] == title]
        checks.append(CheckRate(names.get(title, title), title, max(t["max_score"] for t in tests),
                                sum(t.get("status") == "passed" for t in tests), len(tests)))
    timed = sorted(((s, float(r["execution_time"]), float(r["score"])) for s, r in graded if "execution_time" in r),
                   key=lambda row: (-row[1], row[0]))
    errors = {s: r.get("extra_data", {}).get("autograder_error") or r.get("output", "") for s, r in rows
              if is_error(r)}
    max_score = max((sum(t["max_score"] for t in r.get("tests", [])) for _, r in graded), default=0.0)
    return ClassStats(assignment.title, max_score, {s: float(r["score"]) for s, r in graded}, checks,
                      timed[:slowest], errors, assignment.limits.submission_seconds)


REPORT_STYLE = """
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
h2 { border-bottom: 1px solid #ddd; }
"""


def histogram(stats: ClassStats) -> str:
    import numpy as np
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(8, 3.2), dpi=100)
    ax = fig.subplots()
    whole = stats.max_score <= 50 and all(float(s).is_integer() for s in stats.scores.values())
    bins = np.arange(-0.5, stats.max_score + 1.5) if whole else np.linspace(0, max(stats.max_score, 1), 21)
    counts, _, _ = ax.hist(list(stats.scores.values()), bins=bins, color="tab:blue", edgecolor="white")
    ax.set(xlabel=f"score (of {stats.max_score:g})", ylabel="students", xlim=(bins[0], bins[-1]),
           ylim=(0, max(counts.max(), 1) * 1.15))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return base64_png(fig)


def pass_rate_bars(stats: ClassStats) -> str:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 0.45 * len(stats.checks) + 1.2), dpi=100)
    ax = fig.subplots()
    labels = [c.name for c in stats.checks][::-1]
    ax.barh(labels, [100 * c.rate for c in stats.checks][::-1], color="tab:green")
    ax.set(xlabel="students who passed (%)", xlim=(0, 100))
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return base64_png(fig)


def render_report(stats: ClassStats, sections: str = "") -> str:
    """The class report: self-contained HTML (inline CSS, plots as data URIs), numbers only, no student code."""
    from autograder.feedback import STYLE, text

    scores = list(stats.scores.values())
    n = len(stats.scores) + len(stats.errors)
    head = (f"<header><h1>Class report: {text(stats.title)}</h1><p class='total'>{n} students: "
            f"{len(stats.scores)} graded, autograder errors: {len(stats.errors)}</p>")
    if scores:
        head += (f"<p>mean <b>{statistics.mean(scores):.2f}</b>, median <b>{statistics.median(scores):g}</b>, "
                 f"min {min(scores):g}, max {max(scores):g} of {stats.max_score:g} points; full marks: "
                 f"{sum(s >= stats.max_score for s in scores)}</p>")
    parts = [head + "</header>"]
    if scores:
        parts.append(f"<h2>Scores</h2><img alt='histogram of the scores' src='data:image/png;base64,"
                     f"{histogram(stats)}'>")
        rows = "".join(f"<tr><td>{text(c.name)}</td><td>{text(c.title)}</td><td class='num'>{c.points:g}</td>"
                       f"<td class='num'>{c.passed} / {c.graded}</td><td class='num'>{100 * c.rate:.1f} %</td></tr>"
                       for c in stats.checks)
        parts.append("<h2>Pass rate per check</h2><table><tr><th>check</th><th>what it checks</th>"
                     "<th class='num'>points</th><th class='num'>passed</th><th class='num'>pass rate</th></tr>"
                     f"{rows}</table><img alt='pass rate per check' src='data:image/png;base64,"
                     f"{pass_rate_bars(stats)}'>")
    rows = "".join(f"<tr><td>{text(s)}</td><td class='num'>{seconds:g}</td><td class='num'>{score:g}</td></tr>"
                   for s, seconds, score in stats.slowest)
    parts.append(f"<h2>Slowest submissions</h2><p>Wall-clock seconds to grade (results.json "
                 f"<code>execution_time</code>; the limit is {stats.limit_seconds:g} s).</p><table><tr><th>student"
                 f"</th><th class='num'>seconds</th><th class='num'>score</th></tr>{rows}</table>" if rows else "")
    rows = "".join(f"<tr><td>{text(s)}</td><td><pre>{text(e)}</pre></td></tr>" for s, e in stats.errors.items())
    parts.append("<h2>Autograder errors</h2>" + (
        f"<p>The grader itself failed on these submissions: fix the cause, then run <code>grade-all --regrade</code>"
        f" or grade them one by one.</p><table><tr><th>student</th><th>error</th></tr>{rows}</table>" if rows
        else "<p>None: every submission was graded.</p>"))
    parts.append(sections)
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>Class report: {text(stats.title)}"
            f"</title><style>{STYLE}{REPORT_STYLE}</style></head><body>{''.join(parts)}</body></html>\n")


def write_report(out: Path, assignment, rows: list[tuple[str, dict]], roster: list[str] = ()) -> Path:
    from autograder.teaching import sections

    path = report_path(out, assignment)
    write_atomic(path, render_report(class_stats(rows, assignment), sections(out, assignment, rows, roster)))
    return path


def rebuild(directory: Path, assignment) -> Path:
    """Grades CSV, summary and class report again from the results.json files of an autograded folder (after a
    batch, or after regrading one student by hand). Returns the grades CSV."""
    from autograder.batch import write_outputs

    from autograder import gradebook

    out = results_dir(directory)
    rows = read_rows(out, assignment)
    if not rows:
        raise FileNotFoundError(f"no {assignment.id} results under {out} (expected <student>/{assignment.id}/"
                                "results.json, as grade-all writes them)")
    course = out.parent  # the course folder, whose gradebook holds the roster
    roster = gradebook.roster(gradebook.nbgrader_settings(course)) if gradebook.is_nbgrader_course(course) else []
    return write_outputs(out, assignment, rows, roster)


# ------------------------------------------------------------------------------------------------ Gradescope zip
SETUP_SH = r"""#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder's image (Ubuntu; the zip is in /autograder/source).
# It installs the exact versions the course was tested with: requirements.lock pins every package, torch 2.13.0 as
# its CPU build (torch==2.13.0+cpu), which only PyTorch's CPU index serves: hence --extra-index-url below.
set -euo pipefail
ROOT="${AUTOGRADER_ROOT:-/autograder}"
SOURCE="$ROOT/source"

# The grader needs Python >= 3.11 (Ubuntu 24.04 has 3.12; 22.04 has 3.10, so install 3.11 there).
PY=""
for candidate in python3.13 python3.12 python3.11 python3; do
  if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    PY="$candidate"
    break
  fi
done
if [ -z "$PY" ]; then
  apt-get update
  apt-get install -y python3.11 python3.11-venv
  PY=python3.11
fi
# Ubuntu's Python has no venv/ensurepip until pythonX.Y-venv is installed.
if ! "$PY" -c 'import ensurepip, venv' >/dev/null 2>&1; then
  apt-get update
  apt-get install -y "$(basename "$(readlink -f "$(command -v "$PY")")")-venv" || apt-get install -y python3-venv
fi

"$PY" -m venv "$ROOT/venv"
"$ROOT/venv/bin/python" -m pip install --upgrade pip
"$ROOT/venv/bin/python" -m pip install --no-cache-dir -r "$SOURCE/requirements.lock" \
  --extra-index-url https://download.pytorch.org/whl/cpu
"$ROOT/venv/bin/python" -c 'import torch; print("torch", torch.__version__)'
"""

RUN_AUTOGRADER = r"""#!/usr/bin/env bash
# Gradescope runs this for every submission: grade the notebook in submission/ into results/results.json.
# No notebook, or several: grade still writes results.json (score 0, a message saying what to submit).
# AUTOGRADER_ROOT (default /autograder) and AUTOGRADER_PYTHON (default the venv setup.sh made) let a test run it
# in a folder laid out like Gradescope's; AUTOGRADER_CHECKS (check names, space-separated) grades only those.
set -uo pipefail
ROOT="${AUTOGRADER_ROOT:-/autograder}"
SOURCE="$ROOT/source"
PYTHON="${AUTOGRADER_PYTHON:-$ROOT/venv/bin/python}"
RESULTS="$ROOT/results/results.json"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
export PYTHONPATH="$SOURCE${PYTHONPATH:+:$PYTHONPATH}"
checks=()
for name in ${AUTOGRADER_CHECKS:-}; do checks+=(--check "$name"); done
mkdir -p "$ROOT/results"
cd "$SOURCE"
"$PYTHON" -m autograder --config "$SOURCE/course.toml" grade "$ROOT/submission" --assignment @ASSIGNMENT@ \
  --results "$RESULTS" --no-html ${checks[@]+"${checks[@]}"}
status=$?
if [ ! -s "$RESULTS" ]; then  # the grader could not even start: still tell the student, and staff via stdout
  message="The autograder could not run on this submission. This is not your fault; staff have been told and will"
  printf '{"score": 0, "output": "%s regrade it.", "tests": []}\n' "$message" > "$RESULTS"
fi
exit $status
"""


def only_assignment(text: str, assignment_id: str) -> str:
    """course.toml with the tables of one assignment only (and ``[course]``): the zip ships one assignment's
    content, so the others' tables would name folders it does not have."""
    keep, lines = True, []
    for line in text.splitlines(keepends=True):
        if line.startswith("["):
            header = line.strip().strip("[]")
            keep = not header.startswith("assignments.") or header == f"assignments.{assignment_id}" or \
                header.startswith(f"assignments.{assignment_id}.")
        if keep:
            lines.append(line)
    return "".join(lines)


def _zip_entries(config_path: Path, course, assignment) -> dict[str, bytes | Path]:
    """Every file of the zip by its name in the archive: the grader, its settings, the assignment's notebooks."""
    package = Path(__file__).resolve().parent
    entries: dict[str, bytes | Path] = {
        "setup.sh": SETUP_SH.encode(),
        "run_autograder": RUN_AUTOGRADER.replace("@ASSIGNMENT@", assignment.id).encode(),
        "course.toml": only_assignment(Path(config_path).read_text(), assignment.id).encode(),
        "requirements.lock": config.ROOT / "requirements.lock",
        "pyproject.toml": config.ROOT / "pyproject.toml",
    }
    content = [(folder, f"{folder.parent.relative_to(course.root).as_posix()}/{folder.name}")
               for folder in assignment.packages]
    folders = [(package, "autograder"), (config.KIT, "gradekit"), *content] + [
        (path.parent, f"{kind}/{assignment.id}") for kind, path in
        (("source", assignment.source), ("release", assignment.release))]
    for folder, prefix in folders:
        for path in sorted(folder.rglob("*")):
            parts = path.relative_to(folder).parts
            if path.is_file() and not any(p.startswith(".") or p == "__pycache__" for p in parts) \
                    and path.suffix != ".pyc":
                entries[f"{prefix}/{'/'.join(parts)}"] = path
    return entries


def gradescope_zip(config_path: Path, course, assignment, out: Path) -> Path:
    """Write Gradescope's autograder zip for ``assignment``: setup.sh and run_autograder at the root (Gradescope's
    spec), then everything ``grade`` reads. Entries are sorted and dated 1980, so the same inputs give the same zip."""
    for path in (assignment.source, assignment.release):
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist (run `python -m autograder release` first)")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in sorted(_zip_entries(config_path, course, assignment).items()):
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            executable = name in ("setup.sh", "run_autograder")
            info.external_attr = (0o100000 | (0o755 if executable else 0o644)) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, content if isinstance(content, bytes) else content.read_bytes())
    os.replace(tmp, out)
    return out


# ------------------------------------------------------------------------------------------ GitHub Actions workflow
WORKFLOW = """\
# Grades this repository's notebook for @ID@ with the @COURSE@ autograder on every push.
# Made by `python -m autograder github-workflow --assignment @ID@`;
# commit it as .github/workflows/grade.yml.
#
# Set in the repository (or its organisation): the variable GRADER_REPO = owner/name of the grader's repository
# (unless it is written below), and the secret GRADER_TOKEN = a token that can read it if it is private.
# results.json, junit.xml and feedback.html are uploaded as the run's artifact "grade-@ID@".
# The job fails only if the grader itself fails, never for a low score.
#
# This is feedback for the student, not a grade to trust: the student controls this repository, so they can edit
# this file, and the grader's repository (with the reference solutions in source/) is readable by this job.
# Grade for marks with `grade-all` or Gradescope.
name: Grade @ID@
on:
  push:
  workflow_dispatch:
permissions:
  contents: read
concurrency:
  group: grade-${{ github.ref }}
  cancel-in-progress: true
jobs:
  grade:
    runs-on: ubuntu-latest
    timeout-minutes: @TIMEOUT@
    env:
      OMP_NUM_THREADS: "1"
      OPENBLAS_NUM_THREADS: "1"
      MKL_NUM_THREADS: "1"
    steps:
      - name: Check out the submission
        uses: actions/checkout@v4
        with:
          path: submission
      - name: Check out the grader
        uses: actions/checkout@v4
        with:
          repository: @REPO@
@REF@          token: ${{ secrets.GRADER_TOKEN || github.token }}
          path: grader
      - uses: actions/setup-python@v5
        with:
          python-version: "3.11"
          cache: pip
          cache-dependency-path: grader/requirements.lock
      - name: Install the grader's pinned dependencies (torch 2.13.0 CPU from PyTorch's index)
        run: python -m pip install -r grader/requirements.lock --extra-index-url https://download.pytorch.org/whl/cpu
      - name: Grade
        working-directory: grader
        run: @GRADE@
      - name: Score
        if: always()
        run: python -c "import json; print(json.load(open('graded/results.json'))['output'])" >> "$GITHUB_STEP_SUMMARY"
      - name: Upload results.json, junit.xml and feedback.html
        if: always()
        uses: actions/upload-artifact@v4
        with:
          name: grade-@ID@
          path: |
            graded/results.json
            graded/junit.xml
            graded/feedback.html
          if-no-files-found: warn
"""

REPO_NAME, REF = re.compile(r"[\w.-]+/[\w.-]+"), re.compile(r"[\w./-]+")  # written into YAML: nothing else


def grade_command(assignment) -> str:
    """The workflow's grade step, run in the grader's checkout: the submission and the outputs are its siblings."""
    return (f"python -m autograder grade ../submission --assignment {assignment.id} "
            "--results ../graded/results.json --junit ../graded/junit.xml")


def github_workflow(course, assignment, grader_repo: str | None = None, grader_ref: str | None = None) -> str:
    """``.github/workflows/grade.yml`` for a student's repository."""
    if grader_repo is not None and not REPO_NAME.fullmatch(grader_repo):
        raise ValueError(f"--grader-repo must be a GitHub owner/name, got {grader_repo!r}")
    if grader_ref is not None and not REF.fullmatch(grader_ref):
        raise ValueError(f"--grader-ref must be a branch, tag or commit, got {grader_ref!r}")
    timeout = round(assignment.limits.submission_seconds / 60) + 20  # grading plus installing torch and friends
    values = {"@ID@": assignment.id, "@COURSE@": course.id, "@TIMEOUT@": str(timeout),
              "@REPO@": grader_repo or "${{ vars.GRADER_REPO }}",
              "@REF@": f"          ref: {grader_ref}\n" if grader_ref else "",
              "@GRADE@": grade_command(assignment)}
    return re.sub("|".join(values), lambda m: values[m.group(0)], WORKFLOW)
