"""Check machinery: how a check makes its inputs and judges the answers, for any assignment.

A check is a frozen dataclass built from its table in course.toml. ``cases()`` makes the JSON inputs (seeded, so a
grade repeats); the grader's workers run the check's driver on each, calling the student's functions in their kernel
across the channel; ``judge()`` then compares, in the grader's process, the plain data that came back with the same driver run on
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
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import ClassVar

import numpy as np

from gradekit.protocol import run_case


@dataclass(frozen=True)
class CheckResult:
    """A check's verdict as data: every output (results.json, the feedback page, JUnit, the class report) is rendered
    from these fields, and none of them is parsed back out of the text.

    ``output`` is what a student always sees (the verdict, the likely mistake, the clauses lost); ``details`` is the
    first wrong case, whose inputs may be those of a hidden case (Gradescope shows it after the due date); ``mistake``
    the named known mistake that reproduces every wrong answer; ``clauses`` an exactness check's points per clause of
    the contract; ``seeds`` a behaviour check's outcome per seed, each with its metrics and pass criteria; ``hint`` a
    failed behaviour check's hint (which the grader replaces when a function it trains with failed its own check)."""

    name: str
    title: str
    score: float
    max_score: float
    output: str
    data: dict = field(default_factory=dict)
    details: str = ""
    mistake: str | None = None
    clauses: tuple = ()
    seeds: tuple = ()
    hint: str | None = None  # a failed behaviour check's hint, the last line of ``output``

    @property
    def passed(self) -> bool:
        return self.score >= self.max_score

    @property
    def full_output(self) -> str:
        """The verdict and the details, for those who may see both (the student's own page, the terminal)."""
        return self.output + (f"\n{self.details}" if self.details else "")


def number(value) -> str:
    """A metric in words when it is not a finite number: a diverged run is a normal outcome, not an error."""
    if value is None:
        return "not run"
    value = float(value)
    if math.isnan(value):
        return "not a number"
    if math.isinf(value):
        return f"diverged ({'+' if value > 0 else '−'}∞)"
    return f"{value:.3f}"


def describe_error(function: str, error: dict) -> str:
    if error["type"] == "NotImplementedError":
        return f"`{function}` is not implemented yet: fill in its YOUR TURN cell (it still raises NotImplementedError)."
    where = f" at {error['where']}" if error.get("where") else ""
    if error["type"] == "ContractError":
        return f"`{function}`: {error['message']}."
    return f"`{function}` raised {error['type']}{where}: {error['message']}"


DIVERGED_HINT = ("Training diverged: look at the sign and the scale of what your functions return (a sum where a mean "
                 "is expected, or a large factor, can make the loss or its gradient overflow to infinity) and at "
                 "values that are not finite numbers, e.g. NaN or −inf from the log of 0.")


def describe_divergence(functions: tuple[str, ...], error: dict, hint: str = DIVERGED_HINT) -> str:
    """The loop's own error when training with the student's ``functions`` diverged (``error["loop"] ==
    "diverged"``, ``gradekit.protocol.loop_error``): the loop stopped, not their functions, which raised nothing."""
    names = [f"`{f}`" for f in functions]
    both = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
    either = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
    if error["type"] == "Diverged":  # the driver's own words: which values, after how many updates
        reason = error["message"]
    else:  # torch's, e.g. torch.multinomial refusing to sample from them
        reason = (f"its values stopped being finite numbers, inf or NaN (the loop's own {error['type']}: "
                  f"{error['message']})")
    return (f"The training loop stopped, not your {either} ({'it' if len(names) == 1 else 'they'} raised no error): "
            f"while the loop trained with your {both}, {reason}, so it could not go on. {hint}")


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
        """Cases run at once, each by a worker of the grader and a copy of the kernel (only seeded training runs are
        worth it)."""
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

    def partial(self, score: float, output: str, **fields) -> CheckResult:
        """A result scored ``score`` of the check's points (e.g. clause by clause), with structured fields."""
        data = fields.pop("data", {})
        return CheckResult(self.name, self.title, round(max(0.0, min(score, float(self.points))), 4),
                           float(self.points), output, data, **fields)

    def error_result(self, answers: list[dict]) -> CheckResult | None:
        """A failed result naming the first error, if every answer is an error (e.g. not implemented)."""
        errors = [a["error"] for a in answers if "error" in a]
        if errors and len(errors) == len(answers):
            return self.result(False, self.describe(errors[0]))
        return None

    diverged_hint: ClassVar[str] = DIVERGED_HINT  # what to look at when training with the functions diverged

    def describe(self, error: dict) -> str:
        """The error in words, naming the graded function it came from (or all this check exercises); the loop's own
        error when training with them diverged, as such (not as an error of theirs)."""
        if error.get("loop") == "diverged":
            return describe_divergence(self.functions, error, self.diverged_hint)
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
    """Every case must match the reference under the contract's equivalences.

    The cases test clauses of the function's contract (``clause_shares``: the values, the gradient, the shape, in
    place or returned, the dtype, ...), and the check's points are split over them (course.toml's ``clauses``, else
    the shares). The first clause is the function's values: while any case breaks it, no clause scores; once it holds,
    each other clause scores its points unless a case breaks it. So one forgotten ``.detach()`` costs its clause, not
    the function."""

    seed: int
    random_cases: int
    clauses: tuple = ()  # course.toml: {clause = points, ...}, adding up to the check's points; else the shares
    clause_shares: ClassVar[dict[str, float]] = {"values": 1.0}  # clause -> share of the points; the first: values
    clause_names: ClassVar[dict[str, str]] = {}  # clause -> what it says, for the feedback

    def __post_init__(self):
        super().__post_init__()
        given = dict(self.clauses)
        if given:
            unknown = sorted(set(given) - set(self.clause_shares))
            missing = sorted(set(self.clause_shares) - set(given))
            if unknown or missing:
                raise ValueError(f"clauses must give the points of each of {', '.join(self.clause_shares)}"
                                 + (f"; {unknown[0]!r} is not one" if unknown else f"; {missing[0]!r} is missing"))
            if not all(isinstance(v, (int, float)) and v >= 0 for v in given.values()) or not math.isclose(
                    sum(given.values()), self.points, abs_tol=1e-9):
                raise ValueError(f"clauses' points must be numbers ≥ 0 adding up to the check's points "
                                 f"({self.points:g}), got {given}")
        points = {c: float(given[c]) if given else round(self.points * share, 4)
                  for c, share in self.clause_shares.items()}
        object.__setattr__(self, "clauses", tuple(points.items()))

    def fixed_cases(self) -> list[dict]:
        return []

    def random_case(self, rng: np.random.Generator) -> dict:
        raise NotImplementedError

    def cases(self, reference):
        rng = np.random.default_rng(self.seed)
        return self.fixed_cases() + [self.random_case(rng) for _ in range(self.random_cases)]

    def compare(self, case: dict, expected: dict, got: dict) -> str | dict[str, str] | None:
        """None if ``got`` is a correct answer to ``case``, else what is wrong, for the student: one text (a problem
        of the values), or {clause: text} for every clause the answer breaks."""
        raise NotImplementedError

    def tested(self, case: dict) -> tuple[str, ...]:
        """The clauses a case tests (e.g. the advantages' gradient only where they require grad): by default all."""
        return tuple(self.clause_shares)

    def problems(self, case: dict, expected: dict, got: dict) -> dict[str, str]:
        found = self.compare(case, expected, got)
        if not found:
            return {}
        return dict(found) if isinstance(found, dict) else {next(iter(self.clause_shares)): found}

    def show(self, case: dict) -> str:
        return ", ".join(f"{k}={fmt(v) if isinstance(v, list) else v}" for k, v in case.items())

    def clause_name(self, clause: str) -> str:
        return self.clause_names.get(clause, clause.replace("_", " "))

    def judge(self, cases, answers, reference):
        failed = self.error_result(answers)
        if failed:
            return failed
        reference = as_reference(reference)
        values = next(iter(self.clause_shares))
        wrong = []
        for case, answer in zip(cases, answers, strict=True):
            if "error" in answer:
                wrong.append({"case": case, "problem": self.describe(answer["error"]), "clauses": {values: ""}})
                continue
            expected = reference.expected(self, case)
            found = self.problems(case, expected, answer["ok"])
            if found:
                wrong.append({"case": case, "problem": next(iter(found.values())), "clauses": found,
                              "expected": expected, "got": answer["ok"]})
        outcomes = []
        for clause, points in self.clauses:
            broken = sum(clause in w["clauses"] for w in wrong)
            outcomes.append({"clause": clause, "name": self.clause_name(clause), "points": points,
                             "cases": sum(clause in self.tested(c) for c in cases), "wrong": broken,
                             "score": 0.0 if broken else points})
        if outcomes[0]["wrong"]:
            outcomes = [o | {"score": 0.0} for o in outcomes]
        score = sum(o["score"] for o in outcomes)
        if not wrong:
            return self.partial(score, f"All {len(cases)} cases match the expected values.", clauses=tuple(outcomes))
        lines = [f"{len(wrong)} of {len(cases)} cases are wrong."]
        if len(outcomes) > 1 and outcomes[0]["wrong"]:
            lines.append(f"Clause \"{outcomes[0]['name']}\": {outcomes[0]['wrong']} of {outcomes[0]['cases']} cases "
                         f"break it; while it is broken, no clause scores: 0 of {self.points:g} points.")
        elif len(outcomes) > 1:
            lines += [f"Clause \"{o['name']}\": {o['wrong']} of {o['cases']} cases break it: −{o['points']:g} of "
                      f"{self.points:g} points." for o in outcomes if o["wrong"]]
        hint = self.diagnose(wrong, reference)
        if hint:
            lines.append(f"Likely mistake: {hint}.")
        details = f"First wrong case: {self.show(wrong[0]['case'])}.\n{wrong[0]['problem']}"
        table = [{"case": self.show(w["case"]), "problem": w["problem"],
                  "expected": self.value(w["expected"]) if "expected" in w else "",
                  "got": self.value(w["got"]) if "got" in w else "error"} for w in wrong[:3]]
        return self.partial(score, "\n".join(lines), details=details, mistake=hint, clauses=tuple(outcomes),
                            data={"wrong_cases": len(wrong), "wrong": table})

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
            if all("ok" in r.get(label, {}) and not self.problems(w["case"], r[label]["ok"], w["got"])
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

    def criteria(self, data: dict) -> list[tuple[str, float, str, float]]:
        """The pass criteria of one seed's run, each (what, value, "≥" or "≤", bound); the seed passes when it meets
        every one. By default one: the metric reaches the threshold."""
        return [(self.metric_name, self.metric(data), "≥", self.threshold)]

    def outcome(self, seed: int, answer: dict) -> dict:
        """One seed's outcome as data: its status, each criterion with its value and whether it was met (a value that
        is not a finite number, e.g. a diverged run, meets none), and whether the seed passed."""
        if "ok" not in answer:
            return {"seed": seed, "status": "error", "criteria": [], "passed": False}
        criteria = []
        for what, value, rule, bound in self.criteria(answer["ok"]):
            value = float(value)
            met = math.isfinite(value) and (value >= bound if rule == "≥" else value <= bound)
            criteria.append({"name": what, "value": value, "rule": rule, "bound": bound, "passed": bool(met)})
        return {"seed": seed, "status": "ok", "criteria": criteria, "passed": all(c["passed"] for c in criteria)}

    def outcomes(self, answers: list[dict]) -> list[dict]:
        return [self.outcome(seed, answer) for seed, answer in zip(self.seeds, answers)]

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
        passing = sum(o["passed"] for o in self.outcomes(answers))
        return passing >= self.min_passing or len(answers) - passing > len(self.seeds) - self.min_passing

    def judge(self, cases, answers, reference):
        failed = self.error_result(answers)
        if failed:
            return failed
        outcomes = self.outcomes(answers)
        passing = sum(o["passed"] for o in outcomes)
        passed = passing >= self.min_passing
        rules = [(what, rule, bound) for what, _, rule, bound in self.criteria_shown(outcomes)]
        shown = ", ".join(f"{o['seed']}: " + (" and ".join(number(c["value"]) for c in o["criteria"]) or "error")
                          for o in outcomes)
        if len(rules) == 1:
            text = (f"{rules[0][0]} per seed ({shown}). Needed {rules[0][1]} {rules[0][2]} on at least "
                    f"{self.min_passing} of {len(self.seeds)} seeds; {passing} reached it.")
        else:
            text = (f"Per seed, {' and '.join(what for what, _, _ in rules)} ({shown}). Needed "
                    f"{' and '.join(f'{what} {rule} {bound}' for what, rule, bound in rules)} on at least "
                    f"{self.min_passing} of {len(self.seeds)} seeds; {passing} did.")
        if len(answers) < len(self.seeds):
            text += f" Seeds {list(self.seeds)[len(answers):]} were not needed: the verdict was already settled."
        errors = [a["error"] for a in answers if "error" in a]
        if errors:
            text += "\n" + self.describe(errors[0])
        hint = None if passed else self.hint(outcomes)
        if hint:
            text += "\n" + hint
        return replace(self.result(passed, text, runs=[self.keep(a) for a in answers],
                                   metrics=[None if "ok" not in a else float(self.metric(a["ok"])) for a in answers]),
                       seeds=tuple(outcomes), hint=hint)

    def criteria_shown(self, outcomes: list[dict]) -> list[tuple[str, float, str, float]]:
        """The criteria named in the message: those of a seed that ran, else the check's own."""
        ran = next((o["criteria"] for o in outcomes if o["criteria"]), None)
        if ran is not None:
            return [(c["name"], c["value"], c["rule"], c["bound"]) for c in ran]
        return [(self.metric_name, math.nan, "≥", self.threshold)]

    def hint(self, outcomes: list[dict]) -> str:
        """What to look at, from the seeds' outcomes (which criteria failed)."""
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
