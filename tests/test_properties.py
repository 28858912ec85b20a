"""Property tests: every check's judge and every writer, on arbitrary answers, always give a valid result.

A wrong submission's answers are data like any other: NaN, ±∞, empty lists, huge and negative numbers, seeds that did
not run, an error in every seed. Each example takes a real answer of the reference (an exactness check's expected
answer to one of its cases; a short run of a behaviour check's driver) and breaks it the way a wrong submission can,
judges it as the grader does (``judge_run``), then renders it through every output: results.json (valid under
Gradescope's schema), Gradescope's html results, the feedback page, JUnit XML (valid under junit-10.xsd), the grades
CSV, the summary, the class report and the terminal table. Only APIs that existed before the typed verdict are used,
so the same file runs against an older checkout (it found the −∞ crash of ``ChainBaselineLearns.metric`` there).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from gradekit.checks import CheckResult, ConvergenceCheck, ExactCheck
from gradekit.protocol import run_case

from autograder import batch, exports, feedback, teaching
from autograder.grade import Report, judge_run
from autograder.reference import reference
from autograder.results import gradescope, junit, table, write_json

FILES = Path(__file__).parent / "files"
SPECIAL = [math.nan, math.inf, -math.inf, 0.0, -0.0, -1.0, 1e300, -1e300, 1e-300, 2.0**63]
SHORT = {"steps": 5, "episodes": 6}  # a behaviour check's template run: its driver on the reference, briefly


def templates(assignment) -> list[tuple]:
    """(check, cases, the reference's answers) of every check whose answers can be made cheaply: the exactness
    checks' expected answers, and short runs of the behaviour checks whose settings can be shortened."""
    ref = reference(assignment)
    found = []
    for check in assignment.checks:
        cases = check.cases(ref)
        if isinstance(check, ExactCheck):
            found.append((check, cases, [{"ok": ref.expected(check, case)} for case in cases]))
        elif isinstance(check, ConvergenceCheck):
            if not set(SHORT) & set(cases[0]):
                found.append((check, cases, [{"ok": {}} for _ in cases]))  # no cheap run: malformed answers only
                continue
            short = [case | {k: v for k, v in SHORT.items() if k in case} for case in cases[:2]]
            runs = [run_case(check.driver, [ref[f] for f in check.functions], case) for case in short]
            found.append((check, cases, [runs[i % len(runs)] for i in range(len(cases))]))
        else:
            found.append((check, cases, [{"ok": ref.expected(check, case)} for case in cases]))
    return found


@pytest.fixture(scope="module")
def targets(course):
    assignment = course.assignment("week03_policy_gradients")
    found = [(assignment, *t) for t in templates(assignment)]
    for other in course.assignments.values():  # the other parts' exactness checks (their behaviour checks train long)
        if other.id != assignment.id:
            found += [(other, *t) for t in templates_exact(other)]
    return found


def templates_exact(assignment) -> list[tuple]:
    ref = reference(assignment)
    return [(check, check.cases(ref), [{"ok": ref.expected(check, case)} for case in check.cases(ref)])
            for check in assignment.checks if isinstance(check, ExactCheck)]


def fill(value, number):
    if isinstance(value, dict):
        return {k: fill(v, number) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, number) for v in value]
    return number if isinstance(value, (int, float)) and not isinstance(value, bool) else value


def scale(value, factor):
    if isinstance(value, dict):
        return {k: scale(v, factor) for k, v in value.items()}
    if isinstance(value, list):
        return [scale(v, factor) for v in value]
    return value * factor if isinstance(value, (int, float)) and not isinstance(value, bool) else value


def broken(data, value, depth: int = 0):
    """``value`` broken the way a wrong submission's answer can be: kept, emptied, filled with a special number,
    scaled, or broken part by part."""
    if isinstance(value, dict):
        return {k: broken(data, v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        how = data.draw(st.sampled_from(["keep", "empty", "fill", "scale", "parts"]), label="list")
        if how == "empty":
            return []
        if how == "fill":
            return fill(value, data.draw(st.sampled_from(SPECIAL)))
        if how == "scale":
            return scale(value, data.draw(st.floats(allow_nan=True, allow_infinity=True)))
        if how == "parts" and depth < 3:
            return [broken(data, v, depth + 1) for v in value[:8]] + value[8:]
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    return data.draw(st.one_of(st.just(value), st.sampled_from(SPECIAL), st.floats()), label="number")


def answer(data, template: dict) -> dict:
    how = data.draw(st.sampled_from(["ok", "ok", "ok", "error", "junk"]), label="answer")
    if how == "error" or "ok" not in template:
        return {"error": {"type": data.draw(st.sampled_from(["ValueError", "ContractError", "NotImplementedError"])),
                          "message": data.draw(st.text(max_size=40)), "where": "line 3"}}
    if how == "junk":
        return {"ok": data.draw(st.dictionaries(st.text(max_size=5), st.one_of(
            st.none(), st.floats(), st.lists(st.floats(), max_size=3)), max_size=3))}
    return {"ok": broken(data, template["ok"])}


class Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)


def check_outputs(tmp: Path, assignment, result: CheckResult) -> None:
    """Every writer on a report holding ``result``; each output must be valid."""
    import jsonschema
    import xmlschema

    assert isinstance(result, CheckResult)
    assert 0 <= result.score <= result.max_score and not math.isnan(result.score)
    report = Report(assignment.id, "submission.ipynb", [result], 1.5)
    results = gradescope(report)
    write_json(tmp / "student" / assignment.id / "results.json", results)
    written = json.loads((tmp / "student" / assignment.id / "results.json").read_text())
    schema = json.loads((FILES / "gradescope-results.schema.json").read_text())
    jsonschema.validate(written, schema)
    assert written["score"] >= 0
    html_results = feedback.gradescope_html(report, assignment, figures=False)
    jsonschema.validate(json.loads(json.dumps(html_results, allow_nan=False)), schema)
    page = Page()
    page.feed(feedback.render(report, assignment))
    assert "section" in page.tags
    (tmp / "junit.xml").write_text(junit(written, assignment))
    xmlschema.XMLSchema(str(FILES / "junit-10.xsd")).validate(str(tmp / "junit.xml"))
    ET.parse(tmp / "junit.xml")
    rows = [("student", written)]
    grades = list(csv.DictReader(io.StringIO(batch.grades_csv(rows, assignment))))
    assert [g["student"] for g in grades] == ["student"]
    assert batch.summary(rows)
    exports.render_report(exports.class_stats(rows, assignment), teaching.sections(tmp, assignment, rows))
    assert table([("submission", report)])


EXAMPLES = int(os.environ.get("PROPERTY_EXAMPLES", "60"))
PHASES = [p for p in Phase if p is not Phase.shrink or os.environ.get("PROPERTY_SHRINK", "1") == "1"]


@settings(max_examples=EXAMPLES, deadline=None, phases=PHASES, suppress_health_check=[
    HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large])
@given(data=st.data())
def test_any_answer_gives_a_valid_result_in_every_output(targets, tmp_path_factory, data):
    assignment, check, cases, template = data.draw(st.sampled_from(targets), label="check")
    ran = data.draw(st.integers(1, len(cases)), label="seeds or cases answered")  # the rest not run
    answers = [answer(data, t) for t in template[:ran]]
    ref = reference(assignment)
    result = judge_run(check, cases, "ok", answers, 1.0, ref)
    check_outputs(tmp_path_factory.mktemp("outputs"), assignment, result)


def test_a_diverged_baseline_run_is_data_in_every_output(targets, tmp_path):
    """The case the issue measured: a run whose advantages vary as much as its returns, and one whose returns do not
    vary at all (a variance ratio of +∞), in every seed. Before the typed verdict, −∞ reached results.json."""
    assignment, check, cases, template = next(t for t in targets if t[1].name == "chain_baseline_learns")
    constant = {"plain": {"n": 10, "sum": 10.0, "sumsq": 10.0}, "baselined": {"n": 10, "sum": 0.0, "sumsq": 5.0}}
    answers = [{"ok": template[0]["ok"] | {"weights": constant}} for _ in cases]
    result = judge_run(check, cases, "ok", answers, 1.0, reference(assignment))
    assert result.score == 0
    check_outputs(tmp_path, assignment, result)
    written = json.loads((tmp_path / "student" / assignment.id / "results.json").read_text())
    assert "inf" in json.dumps(written["extra_data"]["checks"]["chain_baseline_learns"])


def test_errors_in_every_seed_and_case_give_a_valid_result(targets, tmp_path):
    """Every answer an error (a function that always raises), for every check of every part: 0 points, every output
    valid."""
    error = {"error": {"type": "ValueError", "message": "always", "where": "line 1"}}
    for assignment, check, cases, _ in targets:
        result = judge_run(check, cases, "ok", [error] * len(cases), 1.0, reference(assignment))
        assert result.score == 0 and "always" in result.output
        check_outputs(tmp_path / check.name, assignment, result)
