"""Reports -> Gradescope's results.json and a terminal table; its html variant, with the feedback page in it, is
``feedback.gradescope_html``.

Schema: https://gradescope-autograders.readthedocs.io/en/latest/specs/ (top-level ``score``, ``execution_time``,
``output``, ``tests[]`` with ``name``, ``score``, ``max_score``, ``status``, ``output``; ``extra_data`` is free-form).
The same results also become JUnit XML (``junit``), which CI systems such as GitHub Actions can display.
"""

from __future__ import annotations

import json
import os
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

from autograder.grade import Report


FIGURE_DATA = ("runs", "feedback_runs")  # learning curves drawn in feedback.html; too long for results.json


def gradescope(report: Report) -> dict:
    return {
        "score": round(report.score, 4),
        "execution_time": round(report.seconds),
        "output": summary(report),
        "tests": [
            {
                "name": r.title,
                "name_format": "text",
                "score": r.score,
                "max_score": r.max_score,
                "status": "passed" if r.passed else "failed",
                "output": r.output,
                "output_format": "text",
                "visibility": "visible",
            }
            for r in report.results
        ],
        "extra_data": {
            "assignment": report.assignment,
            **report.extra,
            "checks": {r.name: {"score": r.score, **{k: v for k, v in r.data.items() if k not in FIGURE_DATA}}
                       for r in report.results},
        },
    }


# ---------------------------------------------------------------------------- Gradescope: the feedback page, in parts
AUTOGRADER_ERROR = "Autograder error"  # the test name of a grade the grader itself could not make


def error_results(assignment, exc: BaseException) -> dict:
    """results.json for a submission the grader itself failed on: zero, marked for staff, never silently lost."""
    message = (f"The autograder failed on this submission ({type(exc).__name__}: {exc}). This is not your fault; "
               "staff have been told and will regrade it.")
    return {"score": 0, "output": message, "tests": [
        {"name": AUTOGRADER_ERROR, "score": 0,
         "max_score": sum(c.points for c in assignment.checks) if assignment else 0,
         "status": "failed", "output": message}], "extra_data": {"autograder_error": repr(exc)}}


def junit(results: dict, assignment=None) -> str:
    """results.json as JUnit XML: one testsuite for the assignment, one testcase per check, each with its time.

    Made from the results dict rather than from a report, so an autograder error (no report) becomes an ``<error>``
    testcase the same way a grade does. A failed check's output is its failure message. Valid under the Jenkins xunit
    plugin's junit-10.xsd (``tests/files/junit-10.xsd``): score and max_score are properties of the suite only (a
    testcase may not hold properties there); each testcase states its check and score in ``<system-out>``. A submission
    that matched no assignment (``assignment`` None) is one failed testcase carrying the message."""
    names = {check.title: check.name for check in assignment.checks} if assignment else {}
    suite_name = assignment.id if assignment else "unknown-assignment"
    seconds = results.get("extra_data", {}).get("check_seconds", {})
    tests = results.get("tests", [])
    if not tests:
        tests = [{"name": "submission", "score": 0, "max_score": 0, "status": "failed",
                  "output": results.get("output", "")}]
    failed = [t for t in tests if t.get("status") == "failed" and t["name"] != AUTOGRADER_ERROR]
    errors = [t for t in tests if t["name"] == AUTOGRADER_ERROR]
    total = f"{float(results.get('execution_time', 0)):.3f}"
    root = ET.Element("testsuites", name=suite_name, tests=str(len(tests)), failures=str(len(failed)),
                      errors=str(len(errors)), time=total)
    suite = ET.SubElement(root, "testsuite", name=suite_name, tests=str(len(tests)), failures=str(len(failed)),
                          errors=str(len(errors)), skipped="0", time=total)
    properties = ET.SubElement(suite, "properties")
    for key, value in (("score", results.get("score", 0)), ("max_score", sum(t["max_score"] for t in tests))):
        ET.SubElement(properties, "property", name=key, value=f"{value:g}")
    for test in tests:
        check = names.get(test["name"])
        case = ET.SubElement(suite, "testcase", name=test["name"], classname=suite_name,
                             time=f"{float(seconds.get(check, 0)):.3f}")
        if test in errors or test in failed:
            outcome = ET.SubElement(case, "error" if test in errors else "failure", message=test.get("output", ""),
                                    type="AutograderError" if test in errors else "CheckFailed")
            outcome.text = test.get("output", "")
        out = ET.SubElement(case, "system-out")
        out.text = (f"check: {check}\n" if check else "") + f"score: {test['score']:g} / {test['max_score']:g}"
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
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)  # a text that cannot be written leaves no temporary file behind
        raise


def write_json(path: Path, data: dict) -> None:
    write_atomic(path, json.dumps(data, indent=2, allow_nan=False) + "\n")


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
