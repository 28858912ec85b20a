"""Checks of the optional Gymnasium part (``week03_gymnasium``): REINFORCE on CartPole-v1 and InvertedPendulum-v5.

Exactness checks compare the student's log-probabilities (value and gradient) and batched REINFORCE loss (gradient, up
to a positive factor) with the reference on fixed and random inputs; named mistakes give the hints, among them the
Gymnasium tutorial's loss (the mean log-probability times the returns, Gymnasium issue #1336). Behaviour checks train
the notebook's policies with the student's functions (``drivers.py``) and ask for Gymnasium's ``reward_threshold``
of each environment within a step budget, on k of n seeds, calibrated in docs/calibration.md. ``discounted_returns``
is the Week 3 notebook's function and keeps its check (``week03_policy_gradients.checks.DiscountedReturnsExact``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from gradekit.checks import ConvergenceCheck, ExactCheck, fmt
from week03_policy_gradients.checks import ReinforceLossExact

from . import drivers

if TYPE_CHECKING:
    import torch

LOG_2PI = math.log(2 * math.pi)


# --------------------------------------------------------------------------------------------------- exactness
@dataclass(frozen=True)
class LogProbExact(ExactCheck):
    """Log-probabilities must match the reference in value and in gradient with respect to the policy's outputs."""

    atol: float = 1e-4
    rtol: float = 1e-5

    def value(self, answer):
        return fmt(answer["values"])

    def compare(self, case, expected, got):
        want, have = np.asarray(expected["values"]), np.asarray(got["values"], dtype=float)
        if have.shape != want.shape or not np.allclose(have, want, rtol=self.rtol, atol=self.atol):
            return f"Log-probabilities: expected {fmt(want)}, got {fmt(have)}."
        want, have = np.asarray(expected["grad"]), np.asarray(got["grad"], dtype=float)
        if have.shape != want.shape or not np.allclose(have, want, rtol=self.rtol, atol=self.atol):
            return (f"The values are right but their gradient is not: expected {fmt(want)}, got {fmt(have)} (is "
                    "part of the computation detached, or done in numpy?).")
        return None


def _pick(log_p: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    return log_p.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)


@dataclass(frozen=True)
class CategoricalLogProbExact(LogProbExact):
    title: ClassVar[str] = "categorical_log_prob: log π(a|s) = z_a − log Σ_b exp z_b for every step of a batch"
    functions: ClassVar[tuple[str, ...]] = ("categorical_log_prob",)
    driver: ClassVar = staticmethod(drivers.call_categorical_log_prob)

    def _case(self, rng, n, k, scale=2.0):
        return {"logits": rng.normal(0, scale, (n, k)).round(5).tolist(), "actions": rng.integers(k, size=n).tolist()}

    def fixed_cases(self):
        rng = np.random.default_rng(self.seed + 1)
        return [
            {"logits": [[0.0, 0.0]], "actions": [1]},
            {"logits": [[1.0, -1.0], [0.5, 2.0], [-0.3, 0.1]], "actions": [0, 1, 0]},
            {"logits": [[0.2, -0.4, 1.1], [3.0, 0.0, -3.0]], "actions": [2, 1]},
            {"logits": [[40.0, -40.0], [-25.0, 30.0]], "actions": [1, 1]},
            self._case(rng, 500, 2), self._case(rng, 64, 6, scale=5.0),
            # "an integer dtype": int32 actions as well as int64
            {"logits": [[0.2, -0.4, 1.1], [3.0, 0.0, -3.0], [0.5, 0.5, -1.0]], "actions": [2, 0, 1],
             "actions_dtype": "int32"},
        ]

    def random_case(self, rng):
        case = self._case(rng, int(rng.integers(1, 40)), int(rng.integers(2, 7)))
        return case | ({"actions_dtype": "int32"} if rng.random() < 0.3 else {})

    def show(self, case):
        n, k = len(case["actions"]), len(case["logits"][0])
        return (f"logits={fmt(case['logits'])} (N={n} steps, {k} actions), actions={fmt(case['actions'])} "
                f"({case.get('actions_dtype', 'int64')})")


@dataclass(frozen=True)
class GaussianLogProbExact(LogProbExact):
    title: ClassVar[str] = "gaussian_log_prob: log N(a; μ, diag σ²), summed over the action dimensions"
    functions: ClassVar[tuple[str, ...]] = ("gaussian_log_prob",)
    driver: ClassVar = staticmethod(drivers.call_gaussian_log_prob)

    def _case(self, rng, n, d, per_row):
        mean = rng.normal(0, 1, (n, d))
        log_std = rng.uniform(-2, 1, (n, d) if per_row else d)
        actions = mean + np.exp(log_std) * rng.normal(0, 1.5, (n, d))
        return {"mean": mean.round(5).tolist(), "log_std": np.round(log_std, 5).tolist(),
                "actions": actions.round(5).tolist()}

    def fixed_cases(self):
        rng = np.random.default_rng(self.seed + 1)
        return [
            {"mean": [[0.0]], "log_std": [0.0], "actions": [[0.0]]},
            {"mean": [[0.5], [-1.0], [0.0]], "log_std": [-0.5], "actions": [[0.7], [-2.5], [3.0]]},
            {"mean": [[0.0, 1.0, -1.0]], "log_std": [0.0, -1.0, 0.5], "actions": [[1.0, 1.0, 0.0]]},
            {"mean": [[0.1, 0.2], [0.3, -0.4]], "log_std": [[-1.0, 0.0], [0.5, -2.0]],
             "actions": [[0.0, 0.0], [1.0, -1.0]]},
            self._case(rng, 400, 1, per_row=False), self._case(rng, 50, 6, per_row=True),
        ]

    def random_case(self, rng):
        return self._case(rng, int(rng.integers(1, 30)), int(rng.integers(1, 5)), per_row=bool(rng.random() < 0.3))

    def show(self, case):
        n, d = len(case["actions"]), len(case["actions"][0])
        return (f"mean={fmt(case['mean'])}, log_std={fmt(case['log_std'])}, actions={fmt(case['actions'])} "
                f"(N={n} steps, {d} action dimension{'s' if d > 1 else ''})")


@dataclass(frozen=True)
class ReinforceBatchLossExact(ReinforceLossExact):
    """The gradient with respect to the log-probabilities must be a positive multiple of the reference's, as for the
    Week 3 notebook's ``reinforce_loss`` (a sum or a mean over steps; dividing by the returns' standard deviation
    or not)."""

    title: ClassVar[str] = "reinforce_batch_loss: −(1/N) Σ_t log π(a_t|s_t) · normalised G_t over a batch"
    functions: ClassVar[tuple[str, ...]] = ("reinforce_batch_loss",)
    driver: ClassVar = staticmethod(drivers.call_batch_loss)
    scale_example: ClassVar[str] = "e.g. a sum instead of a mean over steps"

    def _case(self, rng, n, episodes=None):
        """Log-probabilities of ``n`` steps and the discounted returns of ``episodes`` episodes laid end to end."""
        log_probs = np.log(rng.uniform(0.05, 0.95, n)).round(6)
        cuts = np.sort(rng.choice(np.arange(1, n), size=min(episodes or 1, n) - 1, replace=False)) if n > 1 else []
        returns = np.concatenate([(1 - 0.99 ** np.arange(len(part), 0, -1)) / 0.01
                                  for part in np.split(np.arange(n), cuts)])
        return {"log_probs": log_probs.tolist(), "returns": returns.round(4).tolist()}

    def fixed_cases(self):
        rng = np.random.default_rng(self.seed + 1)
        return [
            {"log_probs": [-0.1, -1.2], "returns": [1.0, 3.0]},
            {"log_probs": [-0.1, -1.2, -0.7, -0.3], "returns": [2.9701, 1.99, 1.0, 1.0]},
            {"log_probs": [-0.5, -0.6, -0.7], "returns": [2.0, 2.0, 2.0]},
            self._case(rng, 1000, episodes=3), self._case(rng, 300, episodes=20),
            # returns that require grad (e.g. from a critic): no gradient may flow through the normalised returns
            {"log_probs": [-0.1, -1.2, -0.7, -0.3], "returns": [2.9701, 1.99, 1.0, 1.0], "advantages_grad": True},
        ]

    def random_case(self, rng):
        grad = {"advantages_grad": True} if rng.random() < 0.2 else {}
        if rng.random() < 0.5:
            return self._case(rng, int(rng.integers(2, 80)), episodes=int(rng.integers(1, 6))) | grad
        n = int(rng.integers(2, 60))
        return {"log_probs": np.log(rng.uniform(0.05, 0.95, n)).round(6).tolist(),
                "returns": rng.normal(0, 3, n).round(4).tolist()} | grad

    def show(self, case):
        grad = ", returns require grad" if case.get("advantages_grad") else ""
        return f"log_probs={fmt(case['log_probs'])}, returns={fmt(case['returns'])}{grad} (N={len(case['returns'])})"

    def compare(self, case, expected, got):
        have = np.asarray(got["grad"], dtype=float)
        if have.shape == np.shape(expected["grad"]) and not np.all(np.isfinite(have)):
            return (f"The gradient is not finite ({fmt(have)}): when every return of the batch is the same, their "
                    "standard deviation is 0; add a small epsilon (1e-8) to it before dividing.")
        return super().compare(case, expected, got)


# --------------------------------------------------------------------------------------------------- behaviour
@dataclass(frozen=True)
class GymReinforceLearns(ConvergenceCheck):
    """Batched REINFORCE (``drivers.train_reinforce``) with the student's functions: a seed passes when the mean
    return of the last ``window`` episodes reaches ``threshold`` within ``max_steps`` environment steps and
    ``max_episodes`` episodes. Training stops there, so a correct submission costs a few seconds per seed; one that
    never learns costs the budget."""

    curve: ClassVar[str] = "curve"
    log_every: ClassVar[int] = 10_000  # the feedback curve's resolution in environment steps (axes say so)
    window: ClassVar[int]
    gamma: float = 0.99
    lr: float = 0.02
    hidden: int = 64
    batch_steps: int = 1000
    n_envs: int = 8
    max_steps: int = 300_000
    max_episodes: int = 10_000
    diverged_hint: ClassVar[str] = (
        "Training diverged: look at the sign and the scale of your batch loss (a large factor can make it or its "
        "gradient overflow to infinity), at a division by a standard deviation of 0 when you normalise the returns, "
        "and at NaN or −inf in your log-probabilities (the log of 0).")

    def __post_init__(self):
        super().__post_init__()
        if self.max_steps < self.log_every or min(self.batch_steps, self.n_envs, self.hidden, self.max_episodes) < 1:
            raise ValueError(f"max_steps must be at least {self.log_every}; batch_steps, n_envs, hidden and "
                             "max_episodes at least 1")

    def settings(self):
        return {"gamma": self.gamma, "lr": self.lr, "hidden": self.hidden, "batch_steps": self.batch_steps,
                "n_envs": self.n_envs, "max_steps": self.max_steps, "max_episodes": self.max_episodes,
                "log_every": self.log_every, "window": self.window, "target": self.threshold}

    def metric(self, data):
        returns = data["episode_returns"]
        return float(np.mean(returns[-self.window:])) if returns else math.nan


@dataclass(frozen=True)
class CartpoleReinforceLearns(GymReinforceLearns):
    title: ClassVar[str] = "discounted_returns + categorical_log_prob + reinforce_batch_loss: REINFORCE solves " \
                           "CartPole-v1"
    functions: ClassVar[tuple[str, ...]] = ("discounted_returns", "categorical_log_prob", "reinforce_batch_loss")
    driver: ClassVar = staticmethod(drivers.cartpole_run)
    metric_name: ClassVar[str] = "mean return of the last 100 episodes (best possible 500)"
    axes: ClassVar[tuple[str, str]] = ("Environment steps (×10,000); a run stops at the threshold",
                                     "Mean return, last 100 episodes")
    ylim: ClassVar[tuple[float, float] | None] = (0.0, 520.0)
    window: ClassVar[int] = 100

    def hint(self, outcomes):
        return ("The policy did not learn to balance the pole within the step budget: check the sign of the loss, "
                "that each step is weighted by its own normalised return, and that categorical_log_prob returns the "
                "log-probabilities of the actions taken (log_softmax), still connected to the logits.")


@dataclass(frozen=True)
class PendulumReinforceLearns(GymReinforceLearns):
    title: ClassVar[str] = "discounted_returns + gaussian_log_prob + reinforce_batch_loss: REINFORCE solves " \
                           "InvertedPendulum-v5"
    functions: ClassVar[tuple[str, ...]] = ("discounted_returns", "gaussian_log_prob", "reinforce_batch_loss")
    driver: ClassVar = staticmethod(drivers.pendulum_run)
    metric_name: ClassVar[str] = "mean return of the last 20 episodes (best possible 1000)"
    axes: ClassVar[tuple[str, str]] = ("Environment steps (×10,000); a run stops at the threshold",
                                     "Mean return, last 20 episodes")
    ylim: ClassVar[tuple[float, float] | None] = (0.0, 1040.0)
    window: ClassVar[int] = 20
    log_std: float = -0.5

    def settings(self):
        return super().settings() | {"log_std": self.log_std}

    def hint(self, outcomes):
        return ("The policy did not learn to keep the pendulum up within the step budget: check gaussian_log_prob "
                "(−(a − μ)²/(2σ²) − log σ − ½·log 2π, summed over the action dimensions, with σ = exp(log_std)) and "
                "the sign of the loss.")
