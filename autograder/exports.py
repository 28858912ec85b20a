"""Exports for instructors: a class report, a Gradescope autograder zip and a GitHub Actions workflow.

Each is made from what the grader already writes (results.json files) or already needs (course.toml, this package,
the pinned lock, the assignment's notebooks). The zip runs the same ``python -m autograder grade`` that ``grade-all``
runs, so a grade made on Gradescope is the grade the course would make itself. The workflow grades nothing: it runs
the release's public checks in the student's repository, which must hold no grader and no secret.
"""

from __future__ import annotations

import os
import re
import statistics
import zipfile
from dataclasses import dataclass
from pathlib import Path

from gradekit.plots import base64_png

from autograder import config
from autograder.notebook import SubmissionError, notebooks_in
from autograder.results import Results, write_atomic


# ------------------------------------------------------------------------------------ a submission given as a folder
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


def class_mean(scores: list[float], max_score: float) -> str:
    """The class's mean score, one definition for the summary and the report: over the students the grader graded
    (an unreadable notebook is graded: 0); students it failed on have no grade yet and are left out."""
    if not scores:
        return "mean score: - (no student graded)"
    return (f"mean score: {statistics.mean(scores):.2f} of {max_score:g} over the {len(scores)} graded students "
            "(autograder errors, which have no grade yet, left out)")


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
    return [(path.parent.parent.name, Results.read(path, assignment).data)
            for path in sorted(out.glob(f"*/{assignment.id}/results.json"))]


def class_stats(rows: list[tuple[str, dict]], assignment, slowest: int = 10) -> ClassStats:
    results = [(s, Results.of(r)) for s, r in rows]
    graded = [(s, r) for s, r in results if r.autograder_error is None]
    ids = list(dict.fromkeys(check_id for _, r in graded for check_id in r.checks))
    checks = []
    for check_id in ids:
        entries = [r.checks[check_id] for _, r in graded if check_id in r.checks]
        checks.append(CheckRate(check_id, entries[0].title, max(e.max_score for e in entries),
                                sum(e.passed for e in entries), len(entries)))
    timed = sorted(((s, r.execution_time, r.score) for s, r in graded if r.execution_time is not None),
                   key=lambda row: (-row[1], row[0]))
    errors = {s: r.autograder_error for s, r in results if r.autograder_error is not None}
    max_score = max((r.max_score for _, r in graded), default=0.0)
    return ClassStats(assignment.title, max_score, {s: r.score for s, r in graded}, checks,
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
        head += (f"<p>{text(class_mean(scores, stats.max_score))}; median {statistics.median(scores):g}, "
                 f"min {min(scores):g}, max {max(scores):g}; full marks: {sum(s >= stats.max_score for s in scores)}"
                 "</p>")
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


# ------------------------------------------------------------------------------------------------ Gradescope zip
SETUP_SH = r"""#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder's image (Ubuntu; the zip is in /autograder/source).
# It installs what grading this assignment needs (requirements.txt: the grader's packages and the assignment's, with
# what they need, at the exact versions of the course's requirements.lock; torch 2.13.0 as its CPU build
# torch==2.13.0+cpu, which only PyTorch's CPU index serves; no nbgrader, JupyterLab or pytest), on the Python that
# pyproject promises and tests/test_pins.py checks every pin against: CPython @PYTHON@, a final release.
#
# Python does not come from the image's apt: Ubuntu 22.04 ships 3.10 (its python3.11 is a 3.11.0 release
# candidate) and 24.04 ships 3.12. In order:
#   1. uv @UV@ (Astral's static binary; its version pinned here, so the same CPython @PYTHON@.x patch release each
#      build) installs a standalone CPython build (python-build-standalone), whatever the Ubuntu release;
#   2. else the deadsnakes PPA (Ubuntu's usual source of other Python versions), through apt;
#   3. else a final python@PYTHON@ already on the image.
# Each is checked: a final CPython @PYTHON@ with venv and ensurepip. Then a venv in $ROOT/venv gets requirements.txt,
# and the reference solution is graded once: the build fails unless it gets full marks, and the reference's learning
# curves for the feedback figures are cached in the image.
# AUTOGRADER_ROOT, AUTOGRADER_SETUP_PYTHON (skip getting Python: use this interpreter), AUTOGRADER_TORCH_INDEX
# (another index for torch's CPU build; empty: pip's own configuration) and AUTOGRADER_SETUP_ONLY_PYTHON (stop once
# Python is found) let tests run it away from Gradescope.
set -euo pipefail
ROOT="${AUTOGRADER_ROOT:-/autograder}"
SOURCE="$ROOT/source"
TORCH_INDEX="${AUTOGRADER_TORCH_INDEX-@TORCH_INDEX@}"
export DEBIAN_FRONTEND=noninteractive

python_ok() {
  "$1" -c 'import sys, venv, ensurepip
sys.exit(not (sys.version_info[:2] == (@PYTHON_TUPLE@) and sys.version_info.releaselevel == "final"))' 2>/dev/null
}

# Each way prints the interpreter's path as its last line, everything else to stderr (the build log); it stops at
# its first failing step (set -e does not apply inside `if`).
get_python_uv() {
  if ! command -v curl >/dev/null 2>&1; then
    { apt-get update && apt-get install -y --no-install-recommends ca-certificates curl; } >&2 || return 1
  fi
  curl -LsSf "https://astral.sh/uv/@UV@/install.sh" | env UV_UNMANAGED_INSTALL="$ROOT/uv" sh >&2 || return 1
  export UV_PYTHON_INSTALL_DIR="$ROOT/python"
  "$ROOT/uv/uv" python install "@PYTHON@" >&2 || return 1
  "$ROOT/uv/uv" python find --python-preference only-managed "@PYTHON@"
}

get_python_deadsnakes() {
  {
    apt-get update &&
      apt-get install -y --no-install-recommends software-properties-common gpg-agent &&
      add-apt-repository -y ppa:deadsnakes/ppa &&
      apt-get update &&
      apt-get install -y --no-install-recommends "python@PYTHON@" "python@PYTHON@-venv"
  } >&2 || return 1
  command -v "python@PYTHON@"
}

PY="${AUTOGRADER_SETUP_PYTHON:-}"
if [ -z "$PY" ]; then
  for way in get_python_uv get_python_deadsnakes; do
    if found="$($way | tail -n 1)" && [ -n "$found" ] && python_ok "$found"; then PY="$found"; break; fi
    echo "setup.sh: $way did not give a final CPython @PYTHON@; trying the next way" >&2
  done
fi
if [ -z "$PY" ] && command -v "python@PYTHON@" >/dev/null 2>&1 && python_ok "$(command -v "python@PYTHON@")"; then
  PY="$(command -v "python@PYTHON@")"
fi
if [ -z "$PY" ] || ! python_ok "$PY"; then
  echo "setup.sh: no final CPython @PYTHON@ with venv could be installed (got: ${PY:-none})" >&2
  exit 1
fi
"$PY" -c 'import sys; print("setup.sh: Python", sys.version.split()[0], sys.executable)'
if [ -n "${AUTOGRADER_SETUP_ONLY_PYTHON:-}" ]; then exit 0; fi  # a test of the steps above

# The student's kernel must be able to run this Python at the level it will get: without user namespaces (Gradescope)
# it runs as an unprivileged uid of its own, which cannot run an interpreter under a 0700 home (/root/.pyenv). Checked
# before anything is installed, then on the venv with what the kernel imports, with the level course.toml requires;
# each stops the build with a message that names the fix (autograder/setup_check.py).
PYTHONPATH="$SOURCE" "$PY" -m autograder.setup_check
"$PY" -m venv "$ROOT/venv"
"$ROOT/venv/bin/python" -m pip install --no-cache-dir -r "$SOURCE/requirements.txt" \
  ${TORCH_INDEX:+--extra-index-url "$TORCH_INDEX"}
"$ROOT/venv/bin/python" -c 'import torch; print("setup.sh: torch", torch.__version__)'
PYTHONPATH="$SOURCE" "$ROOT/venv/bin/python" -m autograder.setup_check --import ipykernel \
  --config "$SOURCE/course.toml" --assignment @ASSIGNMENT@

# The image must grade: the reference solution, graded as a submission at the isolation level found above (the same
# probe run_autograder's grades make), gets full marks.
check="$(mktemp -d)"
cd "$SOURCE"
OMP_NUM_THREADS=1 PYTHONPATH="$SOURCE" "$ROOT/venv/bin/python" -m autograder --config "$SOURCE/course.toml" \
  grade "$SOURCE/source/@ASSIGNMENT@/@NOTEBOOK@" --assignment @ASSIGNMENT@ --results "$check/results.json" --gradescope
"$ROOT/venv/bin/python" - "$check/results.json" <<'EOF'
import json, sys
results = json.load(open(sys.argv[1]))
full = sum(t["max_score"] for t in results["tests"])
level = results.get("extra_data", {}).get("isolation", {}).get("level")
print(f"setup.sh: the reference solution got {results['score']:g} / {full:g} at isolation level {level!r}")
sys.exit(results["score"] < full or full == 0)
EOF
rm -rf "$check"
"""

RUN_AUTOGRADER = r"""#!/usr/bin/env bash
# Gradescope runs this for every submission: grade the notebook in submission/ into results/results.json, with the
# feedback page in it (--gradescope: Gradescope's html output; each check's verdict and hint visible, the inputs and
# values of wrong cases after the due date). No notebook, several, or another assignment's: grade still writes
# results.json (score 0, a message saying what to submit).
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
# Without namespaces (Gradescope's container) the kernel runs as a uid of its own: grader-only files owner-only.
chmod -R go-rwx "$SOURCE/source" "$SOURCE/course.toml" 2>/dev/null || true
cd "$SOURCE"
"$PYTHON" -m autograder --config "$SOURCE/course.toml" grade "$ROOT/submission" --assignment @ASSIGNMENT@ \
  --results "$RESULTS" --gradescope ${checks[@]+"${checks[@]}"}
status=$?
if [ ! -s "$RESULTS" ]; then  # the grader could not even start: still tell the student, and staff via stdout
  message="The autograder could not run on this submission. This is not your fault; staff have been told and will"
  printf '{"score": 0, "output": "%s regrade it.", "tests": []}\n' "$message" > "$RESULTS"
fi
exit $status
"""

UV_VERSION = "0.13.9"  # setup.sh's uv, pinned: the same standalone CPython patch release on every image build


def setup_script(assignment) -> str:
    """setup.sh for ``assignment``, on the Python version pyproject promises (``pins.promised_versions``)."""
    from autograder import pins

    (version,) = pins.promised_versions()  # one minor version: setup.sh installs exactly that one
    minor = ".".join(version.split(".")[:2])
    values = {"@PYTHON@": minor, "@PYTHON_TUPLE@": minor.replace(".", ", "), "@UV@": UV_VERSION,
              "@TORCH_INDEX@": pins.TORCH_CPU_INDEX, "@ASSIGNMENT@": assignment.id,
              "@NOTEBOOK@": assignment.source.name}
    return re.sub("|".join(values), lambda m: values[m.group(0)], SETUP_SH)


def grader_requirements(assignment) -> str:
    """The zip's requirements.txt: what grading ``assignment`` needs, pinned as in the course's lock
    (``pins.grader_requirements``)."""
    from autograder import pins

    return (f"# What grading {assignment.id} needs: the grader's packages and the assignment's student_packages, with "
            "what they need,\n# pinned as in the course's requirements.lock (made by `gradescope-zip`; setup.sh "
            "installs it).\n" + pins.grader_requirements(list(assignment.student_packages),
                                                           assignment.root / "requirements.lock"))


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
        "setup.sh": setup_script(assignment).encode(),
        "run_autograder": RUN_AUTOGRADER.replace("@ASSIGNMENT@", assignment.id).encode(),
        "course.toml": only_assignment(Path(config_path).read_text(), assignment.id).encode(),
        "requirements.txt": grader_requirements(assignment).encode(),
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
# Public checks of @TITLE@ on every push: the checks you run yourself with
# `python -m gradekit @NOTEBOOK@` in the release folder, on GitHub's machines.
# Made by `python -m autograder github-workflow --assignment @ID@` (@COURSE@); commit it as
# .github/workflows/public-checks.yml in a repository whose root is the release folder: @NOTEBOOK@, gradekit/,
# the assignment's package, public_checks.json and requirements.txt.
#
# No secret and no other repository: it checks out only this repository and installs only requirements.txt (pinned;
# torch as its CPU build, from PyTorch's CPU index). It gives feedback, not marks: the hidden checks run only when
# your submission is graded. The run fails when a public check fails; its output and figures are uploaded as the
# artifact "public-checks-@ID@" either way.
name: Public checks @ID@
on:
  push:
  workflow_dispatch:
permissions:
  contents: read
concurrency:
  group: public-checks-${{ github.ref }}
  cancel-in-progress: true
jobs:
  public-checks:
    runs-on: ubuntu-latest
    timeout-minutes: @TIMEOUT@
    env:
      OMP_NUM_THREADS: "1"
      OPENBLAS_NUM_THREADS: "1"
      MKL_NUM_THREADS: "1"
      PIP_EXTRA_INDEX_URL: @TORCH_INDEX@
    steps:
      - uses: actions/checkout@v4
        with:
          persist-credentials: false
      - uses: actions/setup-python@v5
        with:
          python-version: "@PYTHON@"
          cache: pip
          cache-dependency-path: requirements.txt
      - name: Install the release's requirements
        run: python -m pip install -r requirements.txt
      - name: Public checks
        shell: bash
        run: python -m gradekit @NOTEBOOK@ 2>&1 | tee public-checks.txt
      - name: Summary
        if: always()
        shell: bash
        run: |
          if [ -f public-checks.txt ]; then
            { echo '```'; cat public-checks.txt; echo '```'; } >> "$GITHUB_STEP_SUMMARY"
          fi
      - name: Upload the output and figures
        if: always()
        uses: actions/upload-artifact@v4
        with:
          name: public-checks-@ID@
          path: |
            public-checks.txt
            public-check-plots/
          if-no-files-found: warn
"""


def github_workflow(course, assignment) -> str:
    """``.github/workflows/public-checks.yml`` for a student's repository holding the release folder."""
    from autograder import pins

    (version,) = pins.promised_versions()
    timeout = round(assignment.limits.submission_seconds / 60) + 15  # the checks plus installing torch and friends
    values = {"@ID@": assignment.id, "@COURSE@": course.id, "@TITLE@": assignment.title, "@TIMEOUT@": str(timeout),
              "@NOTEBOOK@": assignment.notebook, "@PYTHON@": ".".join(version.split(".")[:2]),
              "@TORCH_INDEX@": pins.TORCH_CPU_INDEX}
    return re.sub("|".join(values), lambda m: values[m.group(0)], WORKFLOW)
