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
import tempfile
from dataclasses import asdict
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from autograder import harness
from autograder.checks import BaselineReducesVariance, ChainReinforceLearns, ConvergenceCheck
from autograder.grade import Report
from autograder.notebook import reference_functions
from autograder.results import write_atomic

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

AXES = {"bandit": ("Time step", "P(action L)"), "chain": ("Episode", "Return")}


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
             f"{result.score:g} / {result.max_score:g}</span></h2>", f"<pre>{text(result.output)}</pre>"]
    check = assignment.check(result.name)
    if result.name.endswith("_exact") and not result.passed and result.data.get("wrong"):
        parts.append(wrong_table(result.data["wrong"]))
    if isinstance(check, ConvergenceCheck) and any(c is not None for c in result.data.get("curves") or []):
        parts.append(f"<img alt='learning curves of your code and of the reference' "
                     f"src='data:image/png;base64,{plot(check, result.data['curves'], assignment)}'>")
    if isinstance(check, BaselineReducesVariance) and result.data.get("variance_ratio") is not None:
        parts.append(f"<p>Variance ratio with / without the baseline: <b>{result.data['variance_ratio']:.3f}</b> "
                     f"(needed ≤ {check.max_ratio:g}).</p>")
    return f"<section class='{status}'>{''.join(parts)}</section>"


def wrong_table(wrong: list[dict]) -> str:
    rows = "".join(f"<tr><td>{text(w['case'])}</td><td>{text(w['problem'])}</td></tr>" for w in wrong)
    return f"<table><tr><th>input</th><th>what went wrong</th></tr>{rows}</table>"


@functools.lru_cache(maxsize=8)
def reference_curves(assignment, name: str) -> list:
    """The reference's learning curve on each of the check's seeds (the chain takes ~4 s). Cached on disk, keyed by
    the source notebook, the drivers and the check's settings, so a batch of students computes it once."""
    check = assignment.check(name)
    inputs = assignment.source.read_bytes() + Path(harness.__file__).read_bytes() + repr(asdict(check)).encode()
    key = hashlib.sha256(inputs).hexdigest()[:24]
    cache = Path(tempfile.gettempdir()) / "autograder-cache" / f"{name}-{key}.json"
    try:
        return json.loads(cache.read_text())
    except (OSError, ValueError):
        pass
    reference = reference_functions(assignment)
    functions = [reference[f] for f in check.functions]
    curves = [harness.run_case(check.driver, functions, case)["ok"][check.curve] for case in check.cases(reference)]
    write_atomic(cache, json.dumps(curves))
    return curves


def band(ax, curves, label: str, color: str, width: float) -> None:
    """Mean ± standard deviation over seeds."""
    values = np.asarray(curves, dtype=float)
    mean, std = np.nanmean(values, axis=0), np.nanstd(values, axis=0)
    steps = np.arange(1, len(mean) + 1)
    ax.plot(steps, mean, color=color, linewidth=width, label=label)
    ax.fill_between(steps, mean - std, mean + std, color=color, alpha=0.2)


def plot(check: ConvergenceCheck, curves: list, assignment) -> str:
    """Base64 PNG: the student's curves against the reference band, with the pass threshold dashed."""
    fig = Figure(figsize=(8, 3.6), dpi=100)
    ax = fig.subplots()
    band(ax, reference_curves(assignment, check.name), "reference", "tab:gray", 3.5)  # wide: visible under yours
    band(ax, [c for c in curves if c is not None], "your code", "tab:blue", 1.5)
    ax.axhline(check.threshold, color="tab:red", linestyle="--", label=f"threshold {check.threshold:g}")
    chain = isinstance(check, ChainReinforceLearns)
    xlabel, ylabel = AXES["chain" if chain else "bandit"]
    ax.set(xlabel=xlabel, ylabel=ylabel, title=f"mean ± std over seeds {list(check.seeds)}")
    if not chain:
        ax.set_ylim(0, 1.05)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    buffer = io.BytesIO()
    FigureCanvasAgg(fig).print_png(buffer)
    return base64.b64encode(buffer.getvalue()).decode("ascii")
