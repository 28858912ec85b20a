"""Reports -> a self-contained HTML feedback page for the student (inline CSS, plots as base64 PNG data URIs).

The page shows the score, each check's verdict and message, the first wrong cases of failed exactness checks, and the
student's learning curves against the reference's. The reference curves are computed here, in the grader's process,
by the check's own driver; the page holds only numbers and the messages already in the results, never solution code.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import html
import io
import json
import sys
import traceback
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image

from gradekit import plots
from gradekit.checks import ConvergenceCheck, ExactCheck, number
from gradekit.protocol import run_case

from autograder.notebook import reference_functions
from autograder.results import Results, error_results, gradescope, write_atomic, write_json, write_junit
from autograder.sandbox.caches import grader_cache

if TYPE_CHECKING:  # annotations only: a grade's Report, from the module that runs the grade
    from autograder.grade import Report

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
header { border-bottom: 2px solid #ccc; margin-bottom: 1rem; }
.total { font-size: 1.4rem; font-weight: bold; }
section { border-left: 6px solid; border-radius: 4px; padding: 0.4rem 1rem; margin: 1rem 0; }
section.passed { border-color: #2e7d32; background: #f1f8f1; }
section.failed { border-color: #c62828; background: #fdf2f2; }
h2 { font-size: 1.1rem; display: flex; justify-content: space-between; gap: 1rem; }
.badge { white-space: nowrap; }
.passed .badge { color: #2e7d32; } .failed .badge { color: #c62828; }
pre { white-space: pre-wrap; overflow-wrap: anywhere; background: #fff; padding: 0.6rem; border: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.5rem 0; background: #fff; }
th, td { border: 1px solid #ccc; padding: 0.3rem 0.6rem; text-align: left; vertical-align: top; }
img { max-width: 100%; }
"""


def render(report: Report, assignment) -> str:
    """The whole feedback page for one graded submission."""
    head = (f"<header><h1>{text(assignment.title)}</h1>"
            f"<p class='total'>{report.score:g} / {report.max_score:g} points</p>")
    if unreadable(report):  # the notes are the messages: show them once, as the page's only section
        return page(assignment, head + "</header>" + "".join(
            f"<section class='failed'><pre>{text(n)}</pre></section>" for n in report.notes))
    notes = "".join(f"<li>{text(n)}</li>" for n in report.notes)
    head += (f"<ul class='notes'>{notes}</ul>" if notes else "") + "</header>"
    return page(assignment, head + "".join(check_section(result, assignment) for result in report.results))


def render_results(assignment, results: dict) -> str:
    """A plain page from results.json alone (no figures): the page of a submission the grader failed on (its message,
    nothing of the error), or the fallback when the full page could not be drawn."""
    results = Results.of(results)
    title = assignment.title if assignment else "Autograder"
    head = (f"<header><h1>{text(title)}</h1><p class='total'>{results.score:g} / {results.max_score:g} points</p>"
            f"<pre>{text(results.data.get('output', ''))}</pre></header>")
    body = "".join(f"<section class='{'passed' if c.passed else 'failed'}'><h2><span>{text(c.title)}</span>"
                   f"<span class='badge'>{c.score:g} / {c.max_score:g}</span></h2><pre>{text(c.output)}</pre>"
                   "</section>" for c in results.checks.values())
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>Feedback: {text(title)}</title>"
            f"<style>{STYLE}</style></head><body>{head}{body}</body></html>\n")


def write_failure(results_path: Path, assignment, exc: BaseException, junit: Path | None = None) -> None:
    """The last line of defence, once a submission was read and anything of the grader failed: the student still gets
    a results.json and a feedback page (0 for what could not be judged, "the grader failed and the instructor was
    told"); the traceback goes to the instructor's log (stderr), never into what the student reads."""
    print(f"autograder: the grader failed on {results_path}; the student gets an 'Autograder error' result. "
          "Traceback (for the instructor):", file=sys.stderr)
    traceback.print_exception(exc, file=sys.stderr)
    data = error_results(assignment, exc)
    write_json(Path(results_path), data)
    if junit is not None:
        write_junit(Path(junit), data, assignment)
    write_atomic(Path(results_path).parent / "feedback.html", render_results(assignment, data))


def page(assignment, body: str) -> str:
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>Feedback: "
            f"{text(assignment.title)}</title><style>{STYLE}</style></head><body>{body}</body></html>\n")


def write(path: Path, report: Report, assignment) -> None:
    write_atomic(path, render(report, assignment))


def text(value) -> str:
    return html.escape(str(value))


def unreadable(report: Report) -> bool:
    """True when the submission could not be read: every check failed with the same message, which is a note."""
    outputs = {r.output for r in report.results}
    return len(outputs) == 1 and not any(r.passed for r in report.results) and outputs <= set(report.notes)


def check_section(result, assignment) -> str:
    status = "passed" if result.passed else "failed"
    parts = [f"<h2><span>{text(result.title)}</span><span class='badge'>{'✓' if result.passed else '✗'} "
             f"{result.score:g} / {result.max_score:g}</span></h2>", f"<pre>{text(result.full_output)}</pre>"]
    check = assignment.check(result.name)
    if len(result.clauses) > 1:
        parts.append(clause_table(result.clauses))
    if isinstance(check, ExactCheck) and not result.passed and result.data.get("wrong"):
        parts.append(wrong_table(result.data["wrong"]))
    if result.seeds:
        parts.append(seed_table(result.seeds))
    if isinstance(check, ConvergenceCheck) and any(result.data.get("runs") or []):
        try:
            png = figure(check, result.data, assignment)
            parts.append(f"<img alt='learning curves of your code and of the reference' "
                         f"src='data:image/png;base64,{png}'>")
        except Exception as exc:  # noqa: BLE001 - a figure must never cost the page
            print(f"autograder: figure of {result.name} not drawn: {exc!r}", file=sys.stderr)
            parts.append("<p>(The learning-curve figure could not be drawn.)</p>")
    summary = check.summary(result.data)
    if summary:
        parts.append(f"<p><b>{text(summary)}</b></p>")
    return f"<section class='{status}'>{''.join(parts)}</section>"


def clause_table(clauses) -> str:
    """An exactness check's points clause by clause: what each clause of the contract is worth, what it cost."""
    rows = "".join(f"<tr><td>{text(c['name'])}</td><td class='num'>{c['wrong']} of {c['cases']}</td>"
                   f"<td class='num'>{c['score']:g} / {c['points']:g}</td></tr>" for c in clauses)
    return (f"<table><tr><th>clause of the contract</th><th>cases broken</th><th>points</th></tr>{rows}"
            "</table>")


def seed_table(seeds) -> str:
    """A behaviour check's seeds: each criterion's value (a diverged run says so) and whether it was met."""
    rows = []
    for seed in seeds:
        criteria = "; ".join(f"{c['name']}: {number(c['value'])} ({'met' if c['passed'] else 'not met'}: "
                             f"{c['rule']} {c['bound']:g})" for c in seed["criteria"]) or seed["status"]
        rows.append(f"<tr><td>{text(seed['seed'])}</td><td>{text(criteria)}</td>"
                    f"<td>{'✓' if seed['passed'] else '✗'}</td></tr>")
    return f"<table><tr><th>seed</th><th>criteria</th><th>passed</th></tr>{''.join(rows)}</table>"


def wrong_table(wrong: list[dict]) -> str:
    rows = "".join(f"<tr><td>{text(w['case'])}</td><td>{text(w.get('expected', ''))}</td>"
                   f"<td>{text(w.get('got', ''))}</td><td>{text(w['problem'])}</td></tr>" for w in wrong)
    return (f"<table><tr><th>input</th><th>expected</th><th>yours</th><th>what went wrong</th></tr>{rows}"
            "</table>")


def reference_runs_key(assignment, name: str) -> str:
    """What the reference's runs of a check depend on: the source notebook, the drivers and the check's settings."""
    check = assignment.check(name)
    drivers = Path(sys.modules[check.driver.__module__].__file__)
    inputs = assignment.source.read_bytes() + drivers.read_bytes() + repr(asdict(check)).encode()
    return hashlib.sha256(inputs).hexdigest()[:24]


def recorded_runs(assignment, name: str, key: str) -> dict | None:
    """The same runs as recorded in the release's public_checks.json (``release`` keeps them with their key), if
    that record is of the same inputs: a fresh clone then need not train the reference again."""
    try:
        record = json.loads((assignment.release.parent / "public_checks.json").read_text())
        entry = next(e for e in record["checks"] if e["name"] == name)
        return entry["reference"] if entry.get("reference_key") == key else None
    except (OSError, ValueError, KeyError, StopIteration, TypeError):
        return None


@functools.lru_cache(maxsize=8)
def reference_runs(assignment, name: str) -> dict:
    """The reference's runs of a check on its seeds, and its feedback-only runs (seconds each). Taken from the
    release's record when it is of the same inputs, else cached on disk, keyed by the source notebook, the drivers and
    the check's settings, so a batch of students computes them once."""
    check = assignment.check(name)
    key = reference_runs_key(assignment, name)
    recorded = recorded_runs(assignment, name, key)
    if recorded is not None:
        return recorded
    folder = grader_cache()
    cache = folder / f"{name}-{key}.json" if folder else None
    if cache is not None:
        try:
            return json.loads(cache.read_text())
        except (OSError, ValueError):
            pass
    import torch  # lazy: torch costs 1.7 s; only the reference's runs, when not cached, need it

    reference = reference_functions(assignment)
    functions = [reference[f] for f in check.functions]
    torch.set_num_threads(1)  # as in the kernel: a batch grades students side by side, and small nets gain nothing
    driver, names, cases = check.feedback_runs()
    runs = {"runs": [check.keep(run_case(check.driver, functions, case)) for case in check.cases(reference)],
            "feedback_runs": [check.keep(run_case(driver, [reference[f] for f in names], case)) for case in cases]}
    if cache is not None:
        write_atomic(cache, json.dumps(runs))
    return runs


def figure(check, data: dict, assignment) -> str:
    """Base64 PNG of the check's figure (its ``view``): the student's runs against the reference's."""
    reference = reference_runs(assignment, check.name)
    extra = {"runs": data.get("feedback_runs") or [], "reference": reference["feedback_runs"]}
    return plots.base64_png(plots.figure(check, data["runs"], reference["runs"], extra))


# ------------------------------------------------------------------------------------- the page in Gradescope
FIGURES_BUDGET = 200_000  # characters of base64 PNG in one results.json; figures past it are left out (and said so)
DETAILS_SUFFIX = ": details of the wrong cases"


def compact_png(png_base64: str, colors: int = 64) -> str:
    """The feedback page's figure as a 64-colour PNG: about a quarter of the bytes (a three-panel figure: 116 KB of base64
    becomes 32 KB), the same size on screen."""
    image = Image.open(io.BytesIO(base64.b64decode(png_base64))).convert("RGB").quantize(colors=colors)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return base64.b64encode(out.getvalue()).decode("ascii")


def gradescope_html(report: Report, assignment, figures: bool = True, budget: int = FIGURES_BUDGET) -> dict:
    """results.json for Gradescope with the feedback page in it (``output_format`` html), in parts by visibility.

    Each check is a visible test with its points, verdict and hint, and its learning curves (base64 PNG, the feedback
    page's figure) while the figures stay within ``budget`` characters. A failed exactness check gets a second test,
    0 points and ``visibility: after_due_date``, with its first wrong case and the table of wrong cases (inputs and
    values, possibly of hidden cases). The top-level output is the score and the notes. ``extra_data`` is as in
    ``gradescope()``: numbers only, no figures."""
    data = gradescope(report)
    tests, spent, left_out = [], 0, []
    for result, test in zip(report.results, data["tests"], strict=True):
        verdict, details = result.output, result.details  # the first wrong case may be a hidden case's: later
        body = f"<pre>{html.escape(verdict)}</pre>"
        check = assignment.check(result.name)
        if figures and isinstance(check, ConvergenceCheck) and any(result.data.get("runs") or []):
            try:
                png = compact_png(figure(check, result.data, assignment))
            except Exception as exc:  # noqa: BLE001 - a figure must never cost a grade
                png = None
                print(f"autograder: figure of {result.name} not drawn: {exc!r}", file=sys.stderr)
            if png and spent + len(png) <= budget:
                spent += len(png)
                body += (f"<img alt='learning curves of your code and of the reference' "
                         f"src='data:image/png;base64,{png}'>")
            elif png:
                left_out.append(result.name)
                body += "<p>(The learning-curve figure was left out to keep the results small.)</p>"
        tests.append(test | {"output": body, "output_format": "html", "visibility": "visible"})
        if details:
            table = wrong_table(result.data["wrong"]) if result.data.get("wrong") else ""
            tests.append({"name": result.title + DETAILS_SUFFIX, "name_format": "text", "score": 0.0,
                          "max_score": 0.0, "status": "failed", "output": f"<pre>{html.escape(details)}</pre>{table}",
                          "output_format": "html", "visibility": "after_due_date",
                          "extra_data": {"check": result.name, "details": True}})
    head = f"<p><b>{report.score:g} / {report.max_score:g}</b> points for {html.escape(assignment.title)}.</p>"
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in report.notes)
    hidden = any(t["visibility"] == "after_due_date" for t in tests)
    data |= {"output": head + (f"<ul>{notes}</ul>" if notes else "") + (
        "<p>The inputs and values of the wrong cases of each failed check are shown after the due date.</p>"
        if hidden else ""), "output_format": "html", "tests": tests}
    data["extra_data"] = data["extra_data"] | {"figures_left_out": left_out}
    return data
