"""The checks of Week 3: which inputs each graded function gets, and how its answers are judged.

Exactness checks compare the student's answers with the reference's under the contract's equivalences; behaviour
checks train with the student's functions on the lecture's environments. Drivers are in ``drivers.py``, figures in
``views.py``; the named mistakes behind the hints are grader-only (``source/week03_policy_gradients/mistakes.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from gradekit.checks import Check, ConvergenceCheck, ExactCheck, as_reference, fmt
from gradekit.drivers import build_network, network_params

from . import drivers, views


@dataclass(frozen=True)
class PolicyGradientUpdateExact(ExactCheck):
    title: ClassVar[str] = "policy_gradient_update: the policy-gradient update of the logits"
    functions: ClassVar[tuple[str, ...]] = ("policy_gradient_update",)
    driver: ClassVar = staticmethod(drivers.call_update)
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
        return "policy " + fmt(drivers.softmax(np.asarray(answer["logits"], dtype=float)))

    def compare(self, case, expected, got):
        if got["shape"] != case["shape"]:
            return f"The logits came back with shape {tuple(got['shape'])}; they must keep the shape " \
                   f"{tuple(case['shape'])} they came in."
        want = drivers.softmax(np.asarray(expected["logits"]))
        have = drivers.softmax(np.asarray(got["logits"], dtype=float))
        if not np.all(np.isfinite(have)) or not np.allclose(have, want, rtol=0, atol=self.atol):
            return f"Policy softmax(new logits): expected {fmt(want)}, got {fmt(have)} " \
                   "(logits are compared through the policy they give, so adding a constant to all is fine)."
        return None


@dataclass(frozen=True)
class PgLossExact(ExactCheck):
    title: ClassVar[str] = "pg_loss: the policy-gradient loss of one step"
    functions: ClassVar[tuple[str, ...]] = ("pg_loss",)
    driver: ClassVar = staticmethod(drivers.call_pg_loss)
    rtol: float = 1e-4
    atol: float = 1e-6
    def _case(self, rng, sizes, state, action, reward):
        torch.manual_seed(int(rng.integers(2**31)))
        net = build_network(sizes)
        return {"sizes": sizes, "params": network_params(net), "state": state, "action": action,
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
    driver: ClassVar = staticmethod(drivers.call_returns)
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
    driver: ClassVar = staticmethod(drivers.call_reinforce_loss)
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


@dataclass(frozen=True)
class BanditTableLearns(ConvergenceCheck):
    title: ClassVar[str] = "policy_gradient_update learns the bandit (lookup-table policy)"
    functions: ClassVar[tuple[str, ...]] = ("policy_gradient_update",)
    driver: ClassVar = staticmethod(drivers.bandit_table_run)
    metric_name: ClassVar[str] = "P(L) after the last step"
    curve: ClassVar[str] = "probs"
    view: ClassVar = staticmethod(views.bandit_views)
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
    driver: ClassVar = staticmethod(drivers.bandit_network_run)
    lr: float = 1.0
    steps: int = 100


@dataclass(frozen=True)
class ChainReinforceLearns(ConvergenceCheck):
    title: ClassVar[str] = "discounted_returns + reinforce_loss: REINFORCE learns the 3-state chain"
    functions: ClassVar[tuple[str, ...]] = ("discounted_returns", "reinforce_loss")
    driver: ClassVar = staticmethod(drivers.chain_reinforce_run)
    metric_name: ClassVar[str] = "mean return of the last 50 episodes (best possible 0.90)"
    curve: ClassVar[str] = "episode_returns"
    view: ClassVar = staticmethod(views.chain_views)
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
    driver: ClassVar = staticmethod(drivers.baseline_gradients)
    seed: int
    episodes: int
    max_ratio: float
    gamma: float = 0.6
    max_steps: int = 50

    def cases(self, reference):
        """Episodes of a fixed random policy; baseline b(s) = mean return seen from state s in a separate batch."""
        torch.manual_seed(self.seed)
        params = network_params(build_network([1, 3]))
        returns = reference["discounted_returns"]
        fit = drivers.sample_chain_episodes(params, self.episodes, self.seed + 1, self.max_steps)
        seen: dict[int, list[float]] = {}
        for ep in fit:
            for s, g in zip(ep["states"], returns(ep["rewards"], self.gamma)):
                seen.setdefault(s, []).append(float(g))
        value = {s: float(np.mean(v)) for s, v in seen.items()}
        episodes = drivers.sample_chain_episodes(params, self.episodes, self.seed + 2, self.max_steps)
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

    def summary(self, data):
        if data.get("variance_ratio") is None:
            return None
        return f"Variance ratio with / without the baseline: {data['variance_ratio']:.3f} (needed ≤ {self.max_ratio:g})."


def variance_ratio(gradients: dict) -> float:
    """Total variance (trace of the covariance) of the baselined per-episode gradients over that of the plain ones."""
    plain = np.asarray(gradients["plain"], dtype=float)
    baselined = np.asarray(gradients["baselined"], dtype=float)
    total = plain.var(axis=0).sum()
    return float(baselined.var(axis=0).sum() / total) if total > 0 else math.inf
