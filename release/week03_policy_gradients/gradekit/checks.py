"""Check machinery: how a check makes its inputs and judges the answers, for any assignment.

A check is a frozen dataclass built from its table in course.toml. ``cases()`` makes the JSON inputs (seeded, so a
grade repeats); the grader sends them to the student's kernel, where the check's driver runs the student's function on
each; ``judge()`` then compares, in the grader's process, the plain data that came back with the same driver run on
the reference (exactness) or with a calibrated threshold (behaviour). Feedback names the likely mistake by matching
the student's answers against named wrong implementations; it never shows reference code.

Expected answers come from a ``Reference``: in the grader, the reference functions and the known mistakes (both
grader-only, from ``source/<assignment>/``); in the student's public checks, values recorded at release time
(``public.Recorded``). So this module holds machinery only, no solution, and ships with the release. Each assignment's
own checks subclass these in ``assignments/<id>/checks.py`` and are listed in its ``Registry``.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np

from gradekit.protocol import run_case


@dataclass(frozen=True)
class CheckResult:
    name: str
    title: str
    score: float
    max_score: float
    output: str
    data: dict = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.score >= self.max_score


def describe_error(function: str, error: dict) -> str:
    if error["type"] == "NotImplementedError":
        return f"`{function}` is not implemented yet: fill in its YOUR TURN cell (it still raises NotImplementedError)."
    where = f" at {error['where']}" if error.get("where") else ""
    if error["type"] == "ContractError":
        return f"`{function}`: {error['message']}."
    return f"`{function}` raised {error['type']}{where}: {error['message']}"


def fmt(value) -> str:
    """Short, readable numbers for feedback."""
    array = np.asarray(value, dtype=float)
    if array.size > 8:
        return f"[{', '.join(f'{v:.4g}' for v in array.ravel()[:6])}, … ({array.size} values)]"
    return np.array2string(array, precision=4, separator=", ", suppress_small=True).replace("\n", "")


@dataclass(frozen=True)
class Check:
    name: str
    points: float
    title: ClassVar[str]
    functions: ClassVar[tuple[str, ...]]
    driver: ClassVar[Callable]  # a function of the assignment's drivers.py, as a staticmethod
    public: ClassVar[bool] = True  # part of the student's public checks (with recorded values), or grader-only

    def __post_init__(self):
        if not isinstance(self.points, (int, float)) or self.points < 0:
            raise ValueError(f"points must be a number ≥ 0, got {self.points!r}")

    def cases(self, reference: dict[str, Callable]) -> list[dict]:
        raise NotImplementedError

    def batches(self, cases: list[dict], workers: int = 1):
        """How the cases travel to the kernel: all at once unless a check can stop early."""
        yield cases

    def workers(self, available: int) -> int:
        """Processes the kernel may fork to run this check's cases at once (only seeded training runs are worth it)."""
        return 1

    def settled(self, answers: list[dict]) -> bool:
        """True once the answers so far decide the verdict, so the remaining cases need not run."""
        return False

    def feedback_cases(self) -> list[dict]:
        """Extra runs shown in the feedback only, never part of the verdict (run once the verdict is in), of
        ``feedback_driver`` on ``feedback_functions``: by default the check's own."""
        return []

    feedback_driver: ClassVar[Callable | None] = None  # as a staticmethod, like ``driver``
    feedback_functions: ClassVar[tuple[str, ...] | None] = None

    def feedback_runs(self) -> tuple[Callable, tuple[str, ...], list[dict]]:
        """The feedback-only runs: their driver, the student's functions it runs on, their cases. When these are
        another check's graded runs (same driver, functions and case), a grade that ran them reuses their answers."""
        return self.feedback_driver or self.driver, self.feedback_functions or self.functions, self.feedback_cases()

    def summary(self, data: dict) -> str | None:
        """One line of the feedback page under the message, from the result's data (e.g. a measured ratio)."""
        return None

    def judge(self, cases: list[dict], answers: list[dict], reference: dict[str, Callable]) -> CheckResult:
        raise NotImplementedError

    def result(self, passed: bool, output: str, **data) -> CheckResult:
        return CheckResult(self.name, self.title, float(self.points) if passed else 0.0, float(self.points),
                           output, data)

    def error_result(self, answers: list[dict]) -> CheckResult | None:
        """A failed result naming the first error, if every answer is an error (e.g. not implemented)."""
        errors = [a["error"] for a in answers if "error" in a]
        if errors and len(errors) == len(answers):
            return self.result(False, self.describe(errors[0]))
        return None

    def describe(self, error: dict) -> str:
        """The error in words, naming the graded function it came from (or all this check exercises)."""
        function = error.get("function")
        return describe_error(function if function in self.functions else " / ".join(self.functions), error)


class Reference:
    """Expected answers in the grader: the same driver run on the reference functions (read from the source notebook,
    never sent to the kernel), and on the known mistakes for hints."""

    def __init__(self, functions: dict[str, Callable], mistakes: dict[type, dict[str, Callable]] | None = None):
        self.functions = functions
        self.mistakes = mistakes or {}
        self._answers: dict[tuple, dict] = {}  # drivers are deterministic in their case: each case runs once

    def __getitem__(self, name: str) -> Callable:
        return self.functions[name]

    def _run(self, check, label: str, functions: list, case: dict) -> dict:
        key = (type(check).__qualname__, check.name, label, json.dumps(case, sort_keys=True))
        if key not in self._answers:
            self._answers[key] = run_case(check.driver, functions, case)
        return copy.deepcopy(self._answers[key])

    def expected(self, check, case: dict) -> dict:
        return self._run(check, "", [self.functions[f] for f in check.functions], case)["ok"]

    def mistaken(self, check, case: dict) -> dict[str, dict]:
        """Each known mistake's answer to ``case`` (a ``run_case`` result), by hint, in the order they are tried."""
        known = self.mistakes.get(type(check), {})
        return {label: self._run(check, label, [wrong], case) for label, wrong in known.items()}


def as_reference(reference) -> Reference:
    return reference if hasattr(reference, "expected") else Reference(reference)


# --------------------------------------------------------------------------------------------------- exactness
@dataclass(frozen=True)
class ExactCheck(Check):
    """Every case must match the reference under the contract's equivalences; any mismatch fails the check."""

    seed: int
    random_cases: int

    def fixed_cases(self) -> list[dict]:
        return []

    def random_case(self, rng: np.random.Generator) -> dict:
        raise NotImplementedError

    def cases(self, reference):
        rng = np.random.default_rng(self.seed)
        return self.fixed_cases() + [self.random_case(rng) for _ in range(self.random_cases)]

    def compare(self, case: dict, expected: dict, got: dict) -> str | None:
        """None if ``got`` is a correct answer to ``case``, else what is wrong, for the student."""
        raise NotImplementedError

    def show(self, case: dict) -> str:
        return ", ".join(f"{k}={fmt(v) if isinstance(v, list) else v}" for k, v in case.items())

    def judge(self, cases, answers, reference):
        failed = self.error_result(answers)
        if failed:
            return failed
        reference = as_reference(reference)
        wrong = []
        for case, answer in zip(cases, answers, strict=True):
            if "error" in answer:
                wrong.append({"case": case, "problem": self.describe(answer["error"])})
                continue
            expected = reference.expected(self, case)
            problem = self.compare(case, expected, answer["ok"])
            if problem:
                wrong.append({"case": case, "problem": problem, "expected": expected, "got": answer["ok"]})
        if not wrong:
            return self.result(True, f"All {len(cases)} cases match the expected values.")
        text = (f"{len(wrong)} of {len(cases)} cases are wrong. First wrong case: {self.show(wrong[0]['case'])}.\n"
                f"{wrong[0]['problem']}")
        hint = self.diagnose(wrong, reference)
        table = [{"case": self.show(w["case"]), "problem": w["problem"],
                  "expected": self.value(w["expected"]) if "expected" in w else "",
                  "got": self.value(w["got"]) if "got" in w else "error"} for w in wrong[:3]]
        return self.result(False, text + (f"\nLikely mistake: {hint}." if hint else ""), wrong_cases=len(wrong),
                           wrong=table)

    def value(self, answer: dict) -> str:
        """A driver's answer in a few numbers, for the feedback table of wrong cases."""
        return fmt(next(v for v in answer.values() if isinstance(v, list)))

    def diagnose(self, wrong: list[dict], reference: Reference) -> str | None:
        """Name the first known mistake that reproduces every wrong answer."""
        answered = [w for w in wrong if "got" in w]
        if not answered:
            return None
        runs = [reference.mistaken(self, w["case"]) for w in answered]
        for label in runs[0]:
            if all("ok" in r.get(label, {}) and self.compare(w["case"], r[label]["ok"], w["got"]) is None
                   for r, w in zip(runs, answered)):
                return label
        return None


# --------------------------------------------------------------------------------------------------- behaviour
@dataclass(frozen=True)
class ConvergenceCheck(Check):
    """Train with the student's functions on ``seeds``; pass if at least ``min_passing`` seeds reach ``threshold``."""

    seeds: tuple[int, ...]
    threshold: float
    min_passing: int
    metric_name: ClassVar[str]
    curve: ClassVar[str]  # the driver's learning curve kept for feedback plots: one value per step or episode
    axes: ClassVar[tuple[str, str]] = ("Episode", "Return")  # the feedback plot's x and y labels
    ylim: ClassVar[tuple[float, float] | None] = None  # the feedback plot's y range, if fixed
    view: ClassVar[Callable | None] = None  # the figure of the runs (a function of the assignment's views.py, as a
    #                                         staticmethod); None: ``plots.curve_view``
    kept: ClassVar[tuple[str, ...]] = ()  # the driver's series kept for that figure (default: ``curve``)

    def __post_init__(self):
        super().__post_init__()
        if not self.seeds or not all(isinstance(s, int) for s in self.seeds):
            raise ValueError("seeds must be a non-empty list of integers")
        if not 1 <= self.min_passing <= len(self.seeds):
            raise ValueError(f"min_passing must be between 1 and the number of seeds ({len(self.seeds)})")

    def settings(self) -> dict:
        raise NotImplementedError

    def cases(self, reference):
        return [{"seed": seed, **self.settings()} for seed in self.seeds]

    def keep(self, answer: dict) -> dict | None:
        """The series of one run that the feedback figure draws, rounded to keep results small."""
        if "ok" not in answer:
            return None
        return {k: np.round(np.asarray(answer["ok"][k], dtype=float), 4).tolist() for k in self.kept or (self.curve,)}

    def metric(self, data: dict) -> float:
        raise NotImplementedError

    def batches(self, cases, workers=1):
        """``workers`` seeds at a time (run in parallel), so that grading stops as soon as the k-of-n verdict is
        settled. Always a prefix of the seeds, so an early verdict is the verdict of all of them."""
        for start in range(0, len(cases), workers):
            yield cases[start:start + workers]

    def workers(self, available):
        return available

    def metrics(self, answers: list[dict]) -> list[float]:
        return [self.metric(a["ok"]) if "ok" in a else math.nan for a in answers]

    def settled(self, answers):
        """Sequential stopping that cannot change the verdict: enough seeds passed, or too many failed."""
        passing = sum(m >= self.threshold for m in self.metrics(answers))
        return passing >= self.min_passing or len(answers) - passing > len(self.seeds) - self.min_passing

    def judge(self, cases, answers, reference):
        failed = self.error_result(answers)
        if failed:
            return failed
        metrics = self.metrics(answers)
        passing = sum(m >= self.threshold for m in metrics)
        passed = passing >= self.min_passing
        seeds = list(self.seeds)[:len(answers)]
        shown = ", ".join(f"{seed}: " + ("error" if math.isnan(m) else f"{m:.3f}") for seed, m in zip(seeds, metrics))
        text = (f"{self.metric_name} per seed ({shown}). Needed ≥ {self.threshold} on at least {self.min_passing} "
                f"of {len(self.seeds)} seeds; {passing} reached it.")
        if len(answers) < len(self.seeds):
            text += f" Seeds {list(self.seeds)[len(answers):]} were not needed: the verdict was already settled."
        errors = [a["error"] for a in answers if "error" in a]
        if errors:
            text += "\n" + self.describe(errors[0])
        if not passed:
            text += "\n" + self.hint(metrics)
        return self.result(passed, text, seeds=seeds, runs=[self.keep(a) for a in answers],
                           metrics=[None if math.isnan(m) else m for m in metrics])

    def hint(self, metrics) -> str:
        return "Training with your functions did not learn reliably enough."




# ---------------------------------------------------------------------------------------------------- registry
@dataclass(frozen=True)
class Export:
    """A file made from one run of a check's driver, on the reference or on a submission: a command of the engine
    (``python -m autograder <name> [SUBMISSION] --out FILE``), e.g. an animation."""

    check: str  # the course.toml name of the check whose driver runs (its first case, with ``--seed``)
    help: str
    out: str  # the default file name
    write: Callable[[dict, Path], str]  # (the driver's answer, the file) -> a line saying what was written


@dataclass(frozen=True)
class Registry:
    """Everything the engine takes from an assignment's content package (``assignments/<id>/__init__.py``), which
    course.toml names: its checks by course.toml name (each check names its functions, driver and figure), and its
    exports. Nothing else of the content is looked up by name."""

    checks: dict[str, type[Check]]
    exports: dict[str, Export] = field(default_factory=dict)

    def __post_init__(self):
        for name, cls in self.checks.items():
            if not (isinstance(cls, type) and issubclass(cls, Check)):
                raise TypeError(f"registry entry {name!r} is not a Check class: {cls!r}")
            if not callable(getattr(cls, "driver", None)):
                raise TypeError(f"check {cls.__name__} has no driver function")
