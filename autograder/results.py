"""Reports -> Gradescope's results.json and a terminal table; its html variant, with the feedback page in it, is
``feedback.gradescope_html``.

Schema: https://gradescope-autograders.readthedocs.io/en/latest/specs/ (top-level ``score``, ``execution_time``,
``output``, ``tests[]`` with ``name``, ``score``, ``max_score``, ``status``, ``output``; ``extra_data`` is free-form).
The same results also become JUnit XML (``junit``), which CI systems such as GitHub Actions can display.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: a grade's Report, from the module that runs the grade
    from autograder.grade import Report


FIGURE_DATA = ("runs", "feedback_runs")  # learning curves drawn in feedback.html; too long for results.json
NOT_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}  # how results.json writes what JSON cannot hold


def jsonable(value):
    """``value`` as JSON can hold it: a number that is not finite (a diverged run: a normal outcome of a wrong
    submission) becomes the string "nan", "inf" or "-inf", tuples become lists, numpy scalars plain numbers."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isfinite(number):
        return int(value) if isinstance(value, int) else number
    return "nan" if math.isnan(number) else ("inf" if number > 0 else "-inf")


def gradescope(report: Report) -> dict:
    """results.json of a grade: one test per check, keyed by its stable id (the test's ``extra_data.check``) and by
    ``extra_data.checks.<id>`` (score, named mistake, clauses, seeds and the check's numbers)."""
    return jsonable({
        "score": round(max(0.0, report.score), 4),
        "execution_time": round(report.seconds),
        "output": summary(report),
        "tests": [
            {
                "name": r.title,
                "name_format": "text",
                "score": r.score,
                "max_score": r.max_score,
                "status": "passed" if r.passed else "failed",
                "output": r.full_output,
                "output_format": "text",
                "visibility": "visible",
                "extra_data": {"check": r.name},
            }
            for r in report.results
        ],
        "extra_data": {
            "assignment": report.assignment,
            **report.extra,
            "checks": {r.name: {"score": r.score, **{k: v for k, v in r.data.items() if k not in FIGURE_DATA},
                                "mistake": r.mistake, "clauses": list(r.clauses), "seeds": list(r.seeds)}
                       for r in report.results},
        },
    })


@dataclass(frozen=True)
class CheckEntry:
    """One check's outcome as results.json holds it."""

    id: str
    title: str
    score: float
    max_score: float
    passed: bool
    output: str
    mistake: str | None = None
    clauses: list = field(default_factory=list)
    seeds: list = field(default_factory=list)


class Results:
    """results.json, written and read through this one model, so that no reader parses its text: the grade, the
    checks by their stable id (never by their human title), whether the grader failed, the late flag and the
    reflection answers. Every reader (the grades CSV, the summary, the class report, the gradebook) goes through it."""

    def __init__(self, data: dict):
        self.data = data if isinstance(data, dict) else {}

    @classmethod
    def of(cls, value) -> Results:
        return value if isinstance(value, Results) else cls(value)

    @classmethod
    def read(cls, path: Path, assignment=None) -> Results:
        """The results.json at ``path``; one that cannot be read counts as an autograder error (regrade it)."""
        try:
            data = json.loads(Path(path).read_text())
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as exc:
            data = error_results(assignment, RuntimeError(f"unreadable {Path(path).name}: {exc}"))
        return cls(data)

    @staticmethod
    def complete(path: Path) -> bool:
        """A whole results.json with a score is at ``path`` (not a file a killed batch left half-written)."""
        try:
            return isinstance(json.loads(Path(path).read_text()).get("score"), (int, float))
        except (OSError, ValueError, AttributeError):
            return False

    def write(self, path: Path) -> None:
        write_json(path, self.data)

    @property
    def extra(self) -> dict:
        extra = self.data.get("extra_data")
        return extra if isinstance(extra, dict) else {}

    @property
    def tests(self) -> list[dict]:
        return [t for t in self.data.get("tests") or [] if isinstance(t, dict)]

    @property
    def score(self) -> float:
        return number(self.data.get("score"))

    @property
    def max_score(self) -> float:
        return sum(number(t.get("max_score")) for t in self.tests)

    @property
    def execution_time(self) -> float | None:
        return None if "execution_time" not in self.data else number(self.data["execution_time"])

    @property
    def autograder_error(self) -> str | None:
        """The grader's own failure (for staff), if it failed on this submission."""
        if "autograder_error" in self.extra:
            return str(self.extra["autograder_error"] or self.data.get("output", ""))
        if any(t.get("name") == AUTOGRADER_ERROR for t in self.tests):  # written before the flag existed
            return str(self.data.get("output", ""))
        return None

    @property
    def late(self) -> dict:
        late = self.extra.get("late")
        return late if isinstance(late, dict) else {}

    @property
    def penalty(self) -> float:
        """The late penalty applied: never to points that could not be judged, never below a score of 0."""
        if not self.late.get("late") or self.autograder_error is not None:
            return 0.0
        return min(number(self.late.get("penalty")), self.score)

    @property
    def answers(self) -> dict:
        answers = self.extra.get("answers")
        return answers if isinstance(answers, dict) else {}

    @property
    def checks(self) -> dict[str, CheckEntry]:
        """The graded checks by id, in the order graded (a details test of Gradescope's html results is not one)."""
        data = self.extra.get("checks") if isinstance(self.extra.get("checks"), dict) else {}
        verdicts = [t for t in self.tests if t.get("visibility") != "after_due_date" and t.get("name") !=
                    AUTOGRADER_ERROR]
        ids = [(t.get("extra_data") or {}).get("check") if isinstance(t.get("extra_data"), dict) else None
               for t in verdicts]
        if not all(ids) and len(verdicts) == len(data):  # written before tests carried their id: same order
            ids = list(data)
        found = {}
        for check_id, test in zip(ids, verdicts):
            if not check_id:
                continue
            entry = data.get(check_id) if isinstance(data.get(check_id), dict) else {}
            found[check_id] = CheckEntry(check_id, str(test.get("name", check_id)), number(test.get("score")),
                                         number(test.get("max_score")), test.get("status") == "passed",
                                         str(test.get("output", "")), entry.get("mistake"),
                                         list(entry.get("clauses") or []), list(entry.get("seeds") or []))
        return found


def number(value) -> float:
    """A number of results.json as a float: "nan", "inf" and "-inf" as written by ``jsonable``; anything else 0."""
    if isinstance(value, str):
        return NOT_FINITE.get(value, 0.0)
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


# ---------------------------------------------------------------------------- Gradescope: the feedback page, in parts
AUTOGRADER_ERROR = "Autograder error"  # the test name of a grade the grader itself could not make


GRADER_FAILED = ("The autograder failed on this submission. This is not your fault: the instructor has been told and "
                 "will regrade it. Until then, what could not be judged counts 0 points.")


def error_results(assignment, exc: BaseException) -> dict:
    """results.json for a submission the grader itself failed on: zero, marked for staff, never silently lost. The
    student reads only that the grader failed; what failed (``extra_data.autograder_error``) is for staff (the class
    report), and the traceback goes to the grader's log (stderr)."""
    return {"score": 0, "output": GRADER_FAILED, "tests": [
        {"name": AUTOGRADER_ERROR, "score": 0,
         "max_score": sum(c.points for c in assignment.checks) if assignment else 0,
         "status": "failed", "output": GRADER_FAILED, "extra_data": {"check": None}}],
        "extra_data": {"assignment": assignment.id if assignment else None,
                       "autograder_error": repr(exc)[:2000]}}


XML_INVALID = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(value) -> str:
    """Text XML 1.0 can hold: control characters and lone surrogates (which a notebook's output may carry) dropped."""
    return XML_INVALID.sub("", str(value))


def junit(results: dict, assignment=None) -> str:
    """results.json as JUnit XML: one testsuite for the assignment, one testcase per check, each with its time.

    Made from the results (``Results``) rather than from a report, so an autograder error (no report) becomes an
    ``<error>`` testcase the same way a grade does. A failed check's output is its failure message. Valid under the
    Jenkins xunit plugin's junit-10.xsd (``tests/files/junit-10.xsd``): score and max_score are properties of the
    suite only (a testcase may not hold properties there); each testcase states its check and score in
    ``<system-out>``. A submission that matched no assignment (``assignment`` None) is one failed testcase carrying
    the message."""
    results = Results.of(results)
    suite_name = assignment.id if assignment else "unknown-assignment"
    seconds = results.extra.get("check_seconds") if isinstance(results.extra.get("check_seconds"), dict) else {}
    if results.autograder_error is not None:
        # JUnit is the instructor's (CI): the error says what failed, as the class report does
        cases = [(AUTOGRADER_ERROR, None, 0.0, results.max_score, "error", results.autograder_error)]
    else:
        cases = [(c.title, c.id, c.score, c.max_score, "passed" if c.passed else "failed", c.output)
                 for c in results.checks.values()]
    if not cases:
        cases = [("submission", None, 0.0, 0.0, "failed", str(results.data.get("output", "")))]
    failed = sum(kind == "failed" for *_, kind, _ in cases)
    errors = sum(kind == "error" for *_, kind, _ in cases)
    total = f"{number(results.data.get('execution_time', 0)):.3f}"
    root = ET.Element("testsuites", name=suite_name, tests=str(len(cases)), failures=str(failed),
                      errors=str(errors), time=total)
    suite = ET.SubElement(root, "testsuite", name=suite_name, tests=str(len(cases)), failures=str(failed),
                          errors=str(errors), skipped="0", time=total)
    properties = ET.SubElement(suite, "properties")
    for key, value in (("score", results.score), ("max_score", sum(case[3] for case in cases))):
        ET.SubElement(properties, "property", name=key, value=f"{value:g}")
    for title, check, score, max_score, kind, output in cases:
        case = ET.SubElement(suite, "testcase", name=xml_text(title), classname=suite_name,
                             time=f"{number(seconds.get(check, 0)):.3f}")
        if kind != "passed":
            outcome = ET.SubElement(case, kind if kind == "error" else "failure", message=xml_text(output),
                                    type="AutograderError" if kind == "error" else "CheckFailed")
            outcome.text = xml_text(output)
        out = ET.SubElement(case, "system-out")
        out.text = (f"check: {xml_text(check)}\n" if check else "") + f"score: {score:g} / {max_score:g}"
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def write_junit(path: Path, results: dict, assignment=None) -> None:
    write_atomic(path, junit(results, assignment))


def unknown_assignment_results(message: str) -> dict:
    """results.json for a notebook that matches no assignment of the course, or several: 0 and the message, and no
    test of any assignment (it would look like that assignment's grade)."""
    return {"score": 0, "output": message, "tests": [], "extra_data": {"assignment": None}}


def summary(report: Report) -> str:
    lines = [f"{report.score:g} / {report.max_score:g} points for {report.assignment}."]
    return "\n".join(lines + report.notes)


def write_atomic(path: Path, text: str) -> None:
    """Write atomically: a reader, or a batch killed mid-write, sees the old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors="replace") as f:  # a lone surrogate: "?"
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)  # a text that cannot be written leaves no temporary file behind
        raise


def write_json(path: Path, data: dict) -> None:
    """JSON that any reader accepts: numbers that are not finite written as data (``jsonable``), never an error."""
    write_atomic(path, json.dumps(jsonable(data), indent=2, allow_nan=False) + "\n")


def table(rows: list[tuple[str, Report]]) -> str:
    """A score table: one row per check, one column per graded notebook."""
    if not rows:
        return ""
    checks = rows[0][1].results
    width = max(len(r.name) for r in checks + [rows[0][1].results[0]]) + 2
    cols = [max(len(label), 8) + 2 for label, _ in rows]
    lines = [f"{'check':<{width}}{'points':>8}" + "".join(f"{label:>{w}}" for (label, _), w in zip(rows, cols))]
    lines.append("-" * len(lines[0]))
    for i, check in enumerate(checks):
        lines.append(f"{check.name:<{width}}{check.max_score:>8g}" + "".join(
            f"{report.results[i].score:>{w}g}" for (_, report), w in zip(rows, cols)))
    lines.append("-" * len(lines[0]))
    lines.append(f"{'total':<{width}}{rows[0][1].max_score:>8g}" + "".join(
        f"{report.score:>{w}g}" for (_, report), w in zip(rows, cols)))
    lines.append(f"{'seconds':<{width}}{'':>8}" + "".join(
        f"{report.seconds:>{w}.1f}" for (_, report), w in zip(rows, cols)))
    return "\n".join(lines)
