"""Exports for instructors: a class report, a Gradescope autograder zip and a GitHub Actions workflow.

Each is made from what the grader already writes (results.json files) or already needs (course.toml, this package,
the pinned lock, the assignment's notebooks). The zip runs the same ``python -m autograder grade`` that ``grade-all``
runs, so a grade made on Gradescope is the grade the course would make itself. The workflow grades nothing: it runs
the release's public checks in the student's repository, which must hold no grader and no secret. The zip's setup.sh
and run_autograder and the workflow are files in ``templates/``, filled in by ``render``.
"""

from __future__ import annotations

import os
import re
import statistics
import zipfile
from dataclasses import dataclass
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from gradekit.plots import base64_png

from autograder import config, pins
from autograder.feedback import STYLE, text
from autograder.results import Results, write_atomic
from autograder.teaching import sections


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
    # lazy: matplotlib costs 0.4 s; only the class report's figures need it (not gradescope-zip, github-workflow)
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
    from matplotlib.figure import Figure  # lazy: matplotlib costs 0.4 s, as in histogram

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
    path = report_path(out, assignment)
    write_atomic(path, render_report(class_stats(rows, assignment), sections(out, assignment, rows, roster)))
    return path


# ----------------------------------------------------------------- the templates: Gradescope's scripts, the workflow
TEMPLATES = Path(__file__).resolve().parent / "templates"  # setup.sh, run_autograder, github-workflow.yml
PLACEHOLDER = re.compile(r"@([A-Z][A-Z_]*)@")  # not string.Template's $NAME: shell and YAML use $ themselves
UV_VERSION = "0.13.9"  # setup.sh's uv, pinned: the same standalone CPython patch release on every image build


def render(name: str, values: dict[str, str], shell: Iterable[str] = ()) -> str:
    """The template ``templates/<name>`` with each ``@KEY@`` replaced by ``values[KEY]``, in one pass (a value is
    never read as a placeholder). Strict both ways: a placeholder without a value, or a value no placeholder uses,
    is a ValueError, so a renamed placeholder cannot ship unfilled. A value is one line; one of the ``shell`` keys
    (its placeholder stands in bash code, inside double quotes) holds no character that bash reads there, nor a
    quote."""
    text = (TEMPLATES / name).read_text(encoding="utf-8")
    used = set(PLACEHOLDER.findall(text))
    if used != set(values):
        raise ValueError(f"templates/{name}: no value for {sorted(used - set(values))}, no placeholder for "
                         f"{sorted(set(values) - used)}")
    for key, value in values.items():
        unsafe = "\n\"'$`\\" if key in shell else "\n"
        if any(c in unsafe for c in value):
            raise ValueError(f"templates/{name}: the value of {key}, {value!r}, may not hold any of {unsafe!r}")
    return PLACEHOLDER.sub(lambda m: values[m.group(1)], text)


def python_minor() -> str:
    """The one minor Python version pyproject promises (``pins.promised_versions``), e.g. ``3.11``."""
    (version,) = pins.promised_versions()  # one minor version: setup.sh installs exactly that one
    return ".".join(version.split(".")[:2])


# ------------------------------------------------------------------------------------------------ Gradescope zip
def setup_script(assignment) -> str:
    """setup.sh for ``assignment``, on the Python version pyproject promises."""
    minor = python_minor()
    values = {"PYTHON": minor, "PYTHON_TUPLE": minor.replace(".", ", "), "UV": UV_VERSION,
              "TORCH_INDEX": pins.TORCH_CPU_INDEX, "ASSIGNMENT": assignment.id, "NOTEBOOK": assignment.source.name}
    return render("setup.sh", values, shell=values)  # every value stands in bash code


def run_autograder_script(assignment) -> str:
    """run_autograder for ``assignment``: Gradescope runs it for every submission."""
    return render("run_autograder", {"ASSIGNMENT": assignment.id}, shell=("ASSIGNMENT",))


def grader_requirements(assignment) -> str:
    """The zip's requirements.txt: what grading ``assignment`` needs, pinned as in the course's lock
    (``pins.grader_requirements``)."""
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
        "run_autograder": run_autograder_script(assignment).encode(),
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
def github_workflow(course, assignment) -> str:
    """``.github/workflows/public-checks.yml`` for a student's repository holding the release folder."""
    timeout = round(assignment.limits.submission_seconds / 60) + 15  # the checks plus installing torch and friends
    return render("github-workflow.yml", {
        "ID": assignment.id, "COURSE": course.id, "TITLE": assignment.title, "TIMEOUT": str(timeout),
        "NOTEBOOK": assignment.notebook, "PYTHON": python_minor(), "TORCH_INDEX": pins.TORCH_CPU_INDEX},
        shell=("NOTEBOOK",))  # the public-checks step runs it in bash
