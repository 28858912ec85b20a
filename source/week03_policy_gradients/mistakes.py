"""Known wrong implementations of the Week 3 functions, each named by the hint a student gets when it matches. GRADER-ONLY.

A failed exactness check runs these on the wrong cases (``gradekit.checks.Reference.mistaken``) and names the first one
that reproduces every wrong answer. They sit one sign or one factor away from the solutions, so this file stays beside
the reference notebook: never shipped in the release (``release`` records their answers to the public cases instead),
never on the kernel's path.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from week03_policy_gradients.checks import (DiscountedReturnsExact, PgLossExact, PolicyGradientUpdateExact,
                                          ReinforceLossExact)
from week03_policy_gradients.drivers import softmax


def _log_softmax_grad(z: np.ndarray, a: int) -> tuple[np.ndarray, np.ndarray]:
    p = softmax(z.ravel())
    g = -p
    g[a] += 1.0
    return g.reshape(z.shape), p


def _only_chosen(z, a, r, lr, step):
    z = z.copy()
    z.ravel()[a] += lr * r * step(softmax(z.ravel())[a])
    return z


def _returns(rewards, gamma, reverse=False, shift=0):
    g, out = 0.0, []
    for r in reversed(rewards):
        g = r + gamma * g
        out.append(g)
    out.reverse()
    out = out[shift:] + [0.0] * shift
    return out[::-1] if reverse else out


def _adv(returns, baseline):
    return returns - (0.0 if baseline is None else torch.as_tensor(baseline, dtype=returns.dtype))


MISTAKES: dict[type, dict[str, Callable]] = {  # check class -> {hint: wrong implementation}
    PolicyGradientUpdateExact: {
        "the sign is flipped: the update must raise the log-probability of a rewarded action":
            lambda z, a, r, lr: z - lr * r * _log_softmax_grad(z, a)[0],
        "only the chosen logit changes; the gradient of log softmax also lowers every other logit by lr·reward·p":
            lambda z, a, r, lr: _only_chosen(z, a, r, lr, lambda p: 1 - p),
        "only the chosen logit changes, by p(1 − p) — the derivative of the probability, not of its logarithm":
            lambda z, a, r, lr: _only_chosen(z, a, r, lr, lambda p: p * (1 - p)),
        "this follows the gradient of the probability, not of the log-probability (a factor p_action too many)":
            lambda z, a, r, lr: z + lr * r * _log_softmax_grad(z, a)[1][a] * _log_softmax_grad(z, a)[0],
        "the reward is ignored": lambda z, a, r, lr: z + lr * _log_softmax_grad(z, a)[0],
        "the learning rate is ignored": lambda z, a, r, lr: z + r * _log_softmax_grad(z, a)[0],
        "the logits are not changed": lambda z, a, r, lr: z.copy(),
    },
    PgLossExact: {
        "the loss uses the probability instead of its logarithm": lambda p, a, r: -r * p[a],
        "the sign is flipped: minimising the loss must raise the log-probability of a rewarded action":
            lambda p, a, r: r * torch.log(p[a]),
        "the reward is ignored": lambda p, a, r: -torch.log(p[a]),
        "the loss uses the log-probabilities of all actions, not only of the action taken":
            lambda p, a, r: -r * torch.log(p).sum(),
    },
    DiscountedReturnsExact: {
        "there is no discount (gamma is ignored)": lambda r, g: _returns(r, 1.0),
        "the returns come out in reverse order (G_0 must be the return of the whole episode)":
            lambda r, g: _returns(r, g, reverse=True),
        "off by one: G_t must include the reward r_t of step t itself": lambda r, g: _returns(r, g, shift=1),
        "these are the immediate rewards, not the returns": lambda r, g: list(r),
        "the discount is counted from the episode start (γ^t G_t), not from step t":
            lambda r, g: [g ** t * v for t, v in enumerate(_returns(r, g))],
    },
    ReinforceLossExact: {
        "the sign is flipped: minimising the loss must raise the log-probability of actions with a positive advantage":
            lambda lp, g, b=None: (lp * _adv(g, b)).sum(),
        "the baseline is ignored": lambda lp, g, b=None: -(lp * g).sum(),
        "the baseline is added to the returns instead of subtracted":
            lambda lp, g, b=None: -(lp * (g + (0.0 if b is None else torch.as_tensor(b)))).sum(),
        "the loss uses probabilities instead of log-probabilities":
            lambda lp, g, b=None: -(lp.exp() * _adv(g, b)).sum(),
    },
}
