"""The checks: which inputs each graded function gets, and how its answers are judged.

A check is a frozen dataclass built from its table in course.toml. ``cases()`` makes the JSON inputs (seeded, so a
grade repeats); the grader sends them to the student's kernel, where ``harness.<driver>`` runs the student's function on
each; ``judge()`` then compares, in the grader's process, the plain data that came back with the same driver run on
the reference (exactness) or with a calibrated threshold (behaviour). Feedback names the likely mistake by matching
the student's answers against a few named wrong implementations; it never shows reference code.

Expected answers come from a ``Reference``: in the grader, the reference functions and the known mistakes
(``mistakes.py``); in the student's public checks, values recorded at release time (``public.Recorded``). So this
module holds rules and messages only, no solution, and is copied into the release for the public checks.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import torch

from autograder import harness


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
    driver: ClassVar[str]
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
        """Extra runs shown in the feedback only, never part of the verdict (run once the verdict is in)."""
        return []

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

    def __init__(self, functions: dict[str, Callable], mistakes: dict[str, dict[str, Callable]] | None = None):
        self.functions = functions
        self.mistakes = mistakes or {}

    def __getitem__(self, name: str) -> Callable:
        return self.functions[name]

    def expected(self, check, case: dict) -> dict:
        return harness.run_case(check.driver, [self.functions[f] for f in check.functions], case)["ok"]

    def mistaken(self, check, case: dict) -> dict[str, dict]:
        """Each known mistake's answer to ``case`` (a ``run_case`` result), by hint, in the order they are tried."""
        known = self.mistakes.get(type(check).__name__, check.mistakes)
        return {label: harness.run_case(check.driver, [wrong], case) for label, wrong in known.items()}


def as_reference(reference) -> Reference:
    return reference if hasattr(reference, "expected") else Reference(reference)


# --------------------------------------------------------------------------------------------------- exactness
@dataclass(frozen=True)
class ExactCheck(Check):
    """Every case must match the reference under the contract's equivalences; any mismatch fails the check."""

    seed: int
    random_cases: int
    mistakes: ClassVar[dict[str, Callable]] = {}

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


@dataclass(frozen=True)
class PolicyGradientUpdateExact(ExactCheck):
    title: ClassVar[str] = "policy_gradient_update: the policy-gradient update of the logits"
    functions: ClassVar[tuple[str, ...]] = ("policy_gradient_update",)
    driver: ClassVar[str] = "call_update"
    atol: float = 1e-6
    def fixed_cases(self):
        lecture = [0.5488135, 0.71518937, 0.60276338]  # np.random.seed(0); np.random.rand(3, 1)
        return [
            {"logits": [0.0, 0.0, 0.0], "shape": [3], "action": 0, "reward": 1.0, "lr": 0.2},
            {"logits": lecture, "shape": [3, 1], "action": 0, "reward": 1.0, "lr": 0.2},
            {"logits": lecture, "shape": [3, 1], "action": 2, "reward": 1.0, "lr": 0.5},
            {"logits": [1.0, -0.5, 0.3], "shape": [3], "action": 1, "reward": -1.0, "lr": 0.3},
            {"logits": lecture, "shape": [3, 1], "action": 1, "reward": 0.0, "lr": 0.2},
            {"logits": [50.0, -20.0, 10.0], "shape": [3], "action": 1, "reward": 1.0, "lr": 1.0},
        ]

    def random_case(self, rng):
        return {"logits": rng.normal(0, 2, 3).round(6).tolist(), "shape": [3] if rng.random() < 0.5 else [3, 1],
                "action": int(rng.integers(3)), "reward": round(float(rng.uniform(-2, 2)), 4),
                "lr": round(float(rng.uniform(0.05, 1.0)), 4)}

    def show(self, case):
        return (f"logits={fmt(case['logits'])} of shape {tuple(case['shape'])}, action={case['action']}, "
                f"reward={case['reward']}, lr={case['lr']}")

    def value(self, answer):
        return "policy " + fmt(harness.softmax(np.asarray(answer["logits"], dtype=float)))

    def compare(self, case, expected, got):
        if got["shape"] != case["shape"]:
            return f"The logits came back with shape {tuple(got['shape'])}; they must keep the shape " \
                   f"{tuple(case['shape'])} they came in."
        want = harness.softmax(np.asarray(expected["logits"]))
        have = harness.softmax(np.asarray(got["logits"], dtype=float))
        if not np.all(np.isfinite(have)) or not np.allclose(have, want, rtol=0, atol=self.atol):
            return f"Policy softmax(new logits): expected {fmt(want)}, got {fmt(have)} " \
                   "(logits are compared through the policy they give, so adding a constant to all is fine)."
        return None


@dataclass(frozen=True)
class PgLossExact(ExactCheck):
    title: ClassVar[str] = "pg_loss: the policy-gradient loss of one step"
    functions: ClassVar[tuple[str, ...]] = ("pg_loss",)
    driver: ClassVar[str] = "call_pg_loss"
    rtol: float = 1e-4
    atol: float = 1e-6
    def _case(self, rng, sizes, state, action, reward):
        torch.manual_seed(int(rng.integers(2**31)))
        net = harness.build_network(sizes)
        return {"sizes": sizes, "params": harness.network_params(net), "state": state, "action": action,
                "reward": reward}

    def fixed_cases(self):
        rng = np.random.default_rng(self.seed + 1)
        return [self._case(rng, [1, 3], 0.0, 0, 1.0), self._case(rng, [1, 3], 1.0, 2, 1.0),
                self._case(rng, [1, 3], -1.0, 1, -0.5), self._case(rng, [1, 3], 0.0, 1, 0.0),
                self._case(rng, [1, 8, 3], 0.5, 0, 2.0), self._case(rng, [1, 8, 3], -1.0, 2, -1.5)]

    def random_case(self, rng):
        sizes = [1, 3] if rng.random() < 0.5 else [1, int(rng.integers(4, 16)), 3]
        return self._case(rng, sizes, round(float(rng.uniform(-1, 1)), 4), int(rng.integers(3)),
                          round(float(rng.uniform(-2, 2)), 4))

    def show(self, case):
        net = "Linear(1, 3)" if case["sizes"] == [1, 3] else f"MLP {case['sizes']}"
        return f"a {net} policy network in state {case['state']}, action={case['action']}, reward={case['reward']}"

    def value(self, answer):
        return "gradient " + fmt(answer["grad"])

    def compare(self, case, expected, got):
        want, have = np.asarray(expected["grad"]), np.asarray(got["grad"], dtype=float)
        if have.shape != want.shape or not np.allclose(have, want, rtol=self.rtol, atol=self.atol):
            return f"Gradient of the loss with respect to the network's parameters: expected {fmt(want)}, " \
                   f"got {fmt(have)}."
        return None


@dataclass(frozen=True)
class DiscountedReturnsExact(ExactCheck):
    title: ClassVar[str] = "discounted_returns: G_t = Σ_k γ^k r_(t+k) for every t"
    functions: ClassVar[tuple[str, ...]] = ("discounted_returns",)
    driver: ClassVar[str] = "call_returns"
    rtol: float = 1e-4
    def fixed_cases(self):
        rng = np.random.default_rng(self.seed + 1)
        return [
            {"rewards": [1.0, 2.0, 3.0], "gamma": 0.5},
            {"rewards": [-0.05, -0.05, -0.05, 1.0], "gamma": 0.6},
            {"rewards": [1, 0, 0, 1, 0], "gamma": 0.9},
            {"rewards": [1.0, 1.0, 1.0, 1.0], "gamma": 1.0},
            {"rewards": [3.0, -1.0, 2.0], "gamma": 0.0},
            {"rewards": [5.0], "gamma": 0.9},
            {"rewards": rng.normal(0, 1, 1000).round(4).tolist(), "gamma": 0.999},
            {"rewards": [-0.05] * 499 + [1.0], "gamma": 0.99},
        ]

    def random_case(self, rng):
        return {"rewards": rng.normal(0, 1, int(rng.integers(1, 60))).round(4).tolist(),
                "gamma": round(float(rng.uniform(0, 1)), 4)}

    def show(self, case):
        return f"rewards={fmt(case['rewards'])} (T={len(case['rewards'])}), gamma={case['gamma']}"

    def value(self, answer):
        return fmt(answer["returns"])

    def compare(self, case, expected, got):
        want, have = np.asarray(expected["returns"]), np.asarray(got["returns"], dtype=float)
        if tuple(got["shape"]) != want.shape:
            return f"Expected a 1-D result of length {len(want)} (one return per step), got shape {tuple(got['shape'])}."
        scale = max(1.0, float(np.abs(want).max()))
        if not np.allclose(have, want, rtol=self.rtol, atol=self.rtol * scale):
            return f"Returns: expected {fmt(want)}, got {fmt(have)}."
        return None


@dataclass(frozen=True)
class ReinforceLossExact(ExactCheck):
    title: ClassVar[str] = "reinforce_loss: −Σ_t log π(a_t|s_t) (G_t − b_t)"
    functions: ClassVar[tuple[str, ...]] = ("reinforce_loss",)
    driver: ClassVar[str] = "call_reinforce_loss"
    rtol: float = 1e-3
    def _case(self, rng, length, baseline):
        case = {"log_probs": np.log(rng.uniform(0.05, 0.95, length)).round(6).tolist(),
                "returns": rng.normal(0, 1, length).round(4).tolist()}
        if baseline == "float":
            case["baseline"] = round(float(rng.normal(0, 0.5)), 4)
        elif baseline == "tensor":
            case["baseline"] = rng.normal(0, 0.5, length).round(4).tolist()
        return case

    def fixed_cases(self):
        rng = np.random.default_rng(self.seed + 1)
        return [
            {"log_probs": [-0.1, -1.2, -0.7], "returns": [0.8, 0.9, 1.0]},
            {"log_probs": [-0.1, -1.2, -0.7], "returns": [0.8, 0.9, 1.0], "baseline": 0.5},
            {"log_probs": [-0.1, -1.2, -0.7], "returns": [0.8, 0.9, 1.0], "baseline": [0.2, 1.1, 0.4]},
            {"log_probs": [-0.5], "returns": [2.0], "baseline": 0.0},
            self._case(rng, 500, "tensor"), self._case(rng, 200, "float"),
        ]

    def random_case(self, rng):
        return self._case(rng, int(rng.integers(1, 40)), rng.choice(["default", "float", "tensor"]))

    def show(self, case):
        baseline = case.get("baseline", "not passed (default)")
        return f"log_probs={fmt(case['log_probs'])}, returns={fmt(case['returns'])}, " \
               f"baseline={fmt(baseline) if isinstance(baseline, list) else baseline} (T={len(case['returns'])})"

    def value(self, answer):
        return "gradient " + fmt(answer["grad"])

    def compare(self, case, expected, got):
        """The gradient must be a positive multiple of the reference's (sum or mean over steps are both fine)."""
        want, have = np.asarray(expected["grad"]), np.asarray(got["grad"], dtype=float)
        if have.shape != want.shape or not np.all(np.isfinite(have)):
            return f"Gradient with respect to log_probs: expected {fmt(want)}, got {fmt(have)}."
        norm = float(np.linalg.norm(want))
        if norm == 0:
            ok = np.allclose(have, 0, atol=1e-6)
        else:
            scale = float(have @ want) / norm**2
            ok = scale > 0 and np.linalg.norm(have - scale * want) <= self.rtol * max(np.linalg.norm(have), 1e-12)
        if not ok:
            return f"Gradient with respect to log_probs: expected {fmt(want)} (or a positive multiple, e.g. a mean " \
                   f"over steps), got {fmt(have)}."
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
    view: ClassVar[str] = "curve"  # which figure of ``plots.py`` shows the runs
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


@dataclass(frozen=True)
class BanditTableLearns(ConvergenceCheck):
    title: ClassVar[str] = "policy_gradient_update learns the bandit (lookup-table policy)"
    functions: ClassVar[tuple[str, ...]] = ("policy_gradient_update",)
    driver: ClassVar[str] = "bandit_table_run"
    metric_name: ClassVar[str] = "P(L) after the last step"
    curve: ClassVar[str] = "probs"
    view: ClassVar[str] = "bandit"  # plots.bandit_views: its own axes
    kept: ClassVar[tuple[str, ...]] = ("probs", "rewards")
    lr: float = 0.2
    steps: int = 500

    def settings(self):
        return {"lr": self.lr, "steps": self.steps}

    def metric(self, data):
        return float(data["probs"][-1][0])  # P(L) after the last step

    def hint(self, metrics):
        if np.nanmean(metrics) < 1 / 3:
            return "P(L) fell below its starting value of about 1/3: the update moves away from the rewarded action."
        return "P(L) barely moved from about 1/3: are the logits actually updated (and returned, or changed in place)?"


@dataclass(frozen=True)
class BanditNetworkLearns(BanditTableLearns):
    """The same bandit and metric, with the lecture's policy network trained on ``pg_loss`` by Adam."""

    title: ClassVar[str] = "pg_loss trains the policy network on the bandit"
    functions: ClassVar[tuple[str, ...]] = ("pg_loss",)
    driver: ClassVar[str] = "bandit_network_run"
    lr: float = 1.0
    steps: int = 100


@dataclass(frozen=True)
class ChainReinforceLearns(ConvergenceCheck):
    title: ClassVar[str] = "discounted_returns + reinforce_loss: REINFORCE learns the 3-state chain"
    functions: ClassVar[tuple[str, ...]] = ("discounted_returns", "reinforce_loss")
    driver: ClassVar[str] = "chain_reinforce_run"
    metric_name: ClassVar[str] = "mean return of the last 50 episodes (best possible 0.90)"
    curve: ClassVar[str] = "episode_returns"
    view: ClassVar[str] = "chain"
    kept: ClassVar[tuple[str, ...]] = ("episode_returns", "losses")
    gamma: float = 0.6
    lr: float = 0.01
    episodes: int = 500
    max_steps: int = 100
    window: int = 50
    baseline_runs: int = 2  # seeds also trained with the notebook's state baseline, for the feedback figure only
    baseline_step: float = 0.1

    def settings(self):
        return {"gamma": self.gamma, "lr": self.lr, "episodes": self.episodes, "max_steps": self.max_steps}

    def feedback_cases(self):
        return [case | {"baseline": True, "baseline_step": self.baseline_step}
                for case in self.cases(None)[:self.baseline_runs]]

    def metric(self, data):
        return float(np.mean(data["episode_returns"][-self.window:]))

    def hint(self, metrics):
        return ("The policy did not learn to walk right twice and then stay: check the sign of the loss, that returns "
                "are discounted from each step to the end of the episode, and that the loss stays connected to the "
                "log-probabilities.")


@dataclass(frozen=True)
class BaselineReducesVariance(Check):
    """The baseline must lower the variance of REINFORCE's per-episode gradient estimate on fixed episodes."""

    title: ClassVar[str] = "reinforce_loss: a baseline lowers the variance of the gradient estimate"
    public: ClassVar[bool] = False  # its 200 episodes would make the release's record ~10× larger
    functions: ClassVar[tuple[str, ...]] = ("reinforce_loss",)
    driver: ClassVar[str] = "baseline_gradients"
    seed: int
    episodes: int
    max_ratio: float
    gamma: float = 0.6
    max_steps: int = 50

    def cases(self, reference):
        """Episodes of a fixed random policy; baseline b(s) = mean return seen from state s in a separate batch."""
        torch.manual_seed(self.seed)
        params = harness.network_params(harness.build_network([1, 3]))
        returns = reference["discounted_returns"]
        fit = harness.sample_chain_episodes(params, self.episodes, self.seed + 1, self.max_steps)
        seen: dict[int, list[float]] = {}
        for ep in fit:
            for s, g in zip(ep["states"], returns(ep["rewards"], self.gamma)):
                seen.setdefault(s, []).append(float(g))
        value = {s: float(np.mean(v)) for s, v in seen.items()}
        episodes = harness.sample_chain_episodes(params, self.episodes, self.seed + 2, self.max_steps)
        for ep in episodes:
            ep["returns"] = [float(g) for g in returns(ep.pop("rewards"), self.gamma)]
            ep["baseline"] = [value.get(s, 0.0) for s in ep["states"]]
        return [{"params": params, "episodes": episodes}]

    def judge(self, cases, answers, reference):
        """Compare variances after undoing each episode's positive scale (a mean over steps scales by 1/T)."""
        failed = self.error_result(answers)
        if failed:
            return failed
        expected = as_reference(reference).expected(self, cases[0])
        got = {k: np.asarray(v, dtype=float) for k, v in answers[0]["ok"].items()}
        ref_plain = np.asarray(expected["plain"])
        norms = np.maximum((ref_plain**2).sum(axis=1), 1e-12)
        scales = (got["plain"] * ref_plain).sum(axis=1) / norms
        if not np.all(scales > 0):
            return self.result(False, "Without a baseline, the gradient of your loss points away from REINFORCE's "
                                      "on some episodes: check the sign of the loss, and that it weights "
                                      "log-probabilities (not probabilities) by the returns.")
        ratio = variance_ratio({k: v / scales[:, None] for k, v in got.items()})
        reference_ratio = variance_ratio(expected)
        passed = ratio <= self.max_ratio
        text = (f"Variance of the per-episode gradient with the baseline / without it: {ratio:.3f} over "
                f"{self.episodes} episodes (needed ≤ {self.max_ratio}; the reference gets {reference_ratio:.3f}).")
        if not passed:
            text += (" The baseline should be subtracted from the returns before they weight the log-probabilities."
                     if ratio > 1 else " The baseline barely changes the gradient: is it used?")
        return self.result(passed, text, variance_ratio=ratio)


def variance_ratio(gradients: dict) -> float:
    """Total variance (trace of the covariance) of the baselined per-episode gradients over that of the plain ones."""
    plain = np.asarray(gradients["plain"], dtype=float)
    baselined = np.asarray(gradients["baselined"], dtype=float)
    total = plain.var(axis=0).sum()
    return float(baselined.var(axis=0).sum() / total) if total > 0 else math.inf


CHECKS: dict[str, type[Check]] = {
    "policy_gradient_update_exact": PolicyGradientUpdateExact,
    "bandit_table_learns": BanditTableLearns,
    "pg_loss_exact": PgLossExact,
    "bandit_network_learns": BanditNetworkLearns,
    "discounted_returns_exact": DiscountedReturnsExact,
    "reinforce_loss_exact": ReinforceLossExact,
    "baseline_reduces_variance": BaselineReducesVariance,
    "chain_reinforce_learns": ChainReinforceLearns,
}
