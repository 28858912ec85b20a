"""Known mistakes of the optional Gymnasium part, named by the hint a student gets. GRADER-ONLY.

Each is one sign, one factor or one dimension away from a solution, so this file stays beside the reference notebook:
never shipped in the release, never on the kernel's path. The checks in ``assignments/week03_gymnasium/checks.py``
try them in order; the first that reproduces every wrong answer names the mistake.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from week03_gymnasium.checks import CategoricalLogProbExact, GaussianLogProbExact, ReinforceBatchLossExact, _pick

LOG_2PI = math.log(2 * math.pi)


def _gaussian(m, ls, a, *, reduce="sum", log_std=True, constant=True, var=False, square=1.0):
    std = ls.exp().sqrt() if var else ls.exp()
    log_p = -0.5 * square * ((a - m) / std) ** 2 - (torch.log(std) if log_std else 0.0) - \
        (0.5 * LOG_2PI if constant else 0.0)
    return log_p.mean(-1) if reduce == "mean" else log_p.sum(-1)


def _normalised(g: torch.Tensor) -> torch.Tensor:
    return (g - g.mean()) / (g.std() + 1e-8)


MISTAKES: dict[type, dict[str, Callable]] = {  # check class -> {hint: wrong implementation}
    CategoricalLogProbExact: {
        "these are the probabilities of the actions, not their logarithms":
            lambda z, a: _pick(F.softmax(z, dim=-1), a),
        "the logits are not normalised: log π(a|s) is z_a minus log Σ_b exp z_b (log_softmax), not z_a":
            lambda z, a: _pick(z, a),
        "the softmax runs over the batch (dim 0), not over the actions (dim -1)":
            lambda z, a: _pick(F.log_softmax(z, dim=0), a),
        "the log-probabilities of all actions are summed, not only the one of the action taken":
            lambda z, a: F.log_softmax(z, dim=-1).sum(-1),
    },
    GaussianLogProbExact: {
        "the log-probabilities of the action dimensions are averaged; a diagonal Gaussian's density is the product "
        "over the dimensions, so its log is their sum": lambda m, ls, a: _gaussian(m, ls, a, reduce="mean"),
        "the −log σ term of the normal density is missing (without it, σ only grows)":
            lambda m, ls, a: _gaussian(m, ls, a, log_std=False),
        "the constant −½·log(2π) per action dimension is missing": lambda m, ls, a: _gaussian(m, ls, a, constant=False),
        "log_std is used as the log of the variance; it is the log of the standard deviation (σ = exp(log_std))":
            lambda m, ls, a: _gaussian(m, ls, a, var=True),
        "the squared distance is not halved: the exponent of the normal density is −(a − μ)²/(2σ²)":
            lambda m, ls, a: _gaussian(m, ls, a, square=2.0),
        "the sign of the squared distance is flipped: actions far from the mean must be less likely":
            lambda m, ls, a: _gaussian(m, ls, a, square=-1.0),
    },
    ReinforceBatchLossExact: {
        "the sign is flipped: minimising the loss must raise the log-probability of steps whose return is above the "
        "batch mean": lambda lp, g: (lp * _normalised(g)).mean(),
        "the returns are not centred: subtract their mean over the batch (a baseline) before they weight the "
        "log-probabilities": lambda lp, g: -(lp * g).mean(),
        "every step gets the same weight: this multiplies the mean log-probability by the returns, the defect of "
        "Gymnasium's REINFORCE tutorial (issue #1336); weight each log π(a_t|s_t) by its own return":
            lambda lp, g: -torch.sum(lp.mean() * g),
        "every step gets the same weight, zero here: the mean log-probability times the normalised returns (whose "
        "sum is 0), the defect of Gymnasium's REINFORCE tutorial (issue #1336); weight each log π(a_t|s_t) by its "
        "own return": lambda lp, g: -torch.sum(lp.mean() * _normalised(g)),
        "the loss uses probabilities instead of log-probabilities":
            lambda lp, g: -(lp.exp() * _normalised(g)).mean(),
        "gradient flows through the normalised returns: they must be constants (detach them), or the loss also "
        "trains whatever computed the returns": lambda lp, g: -(lp * _normalised(g)).mean(),
    },
}
