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
                                          ReinforceLossExact, StateValueBaselineExact)
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


def _baseline(states, returns, table, step, read="before", update="running", key=lambda s: s):
    """The state-value baseline, with one thing changed: when the table is read, or how it is updated."""
    returns = torch.as_tensor(returns).detach().double().tolist()
    values = [float(table.get(key(s), 0.0)) for s in states] if read == "before" else []
    for s, g in zip(states, returns):
        k = key(s)
        if read == "during":
            values.append(float(table.get(k, 0.0)))
        if update == "none":
            continue
        old = table.get(k)
        if update == "running":
            table[k] = g if old is None else old + step * (g - old)
        elif update == "sign":
            table[k] = g if old is None else old - step * (g - old)
        elif update == "last":
            table[k] = g
        elif update == "one_minus":
            table[k] = g if old is None else old + (1 - step) * (g - old)
        elif update == "from_zero":
            table[k] = (0.0 if old is None else old) + step * (g - (0.0 if old is None else old))
    if read == "after":
        values = [float(table.get(key(s), 0.0)) for s in states]
    return torch.tensor(values, dtype=torch.float32)


def _one_value(states, returns, table, step):
    """One value for every state: the mean of the table's values, then the table updated per state as it should."""
    value = float(np.mean([float(v) for v in table.values()])) if table else 0.0
    _baseline(states, returns, table, step)
    return torch.full((len(states),), value)


def _adv_with_grad(returns, baseline):
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
        "gradient flows through the advantages G_t − b_t: they must be constants (detach them), or the loss also "
        "trains whatever computed the returns or the baseline":
            lambda lp, g, b=None: -(lp * _adv_with_grad(g, b)).sum(),
    },
    StateValueBaselineExact: {
        "the baseline is this episode's own return G_t (the advantages are then all zero); b_t must come from "
        "earlier episodes": lambda st, g, t, step: (_baseline(st, g, t, step), torch.as_tensor(g).clone())[1],
        "the table is updated before the baseline is read, so b_t already contains this episode's returns; read "
        "every b_t first, then update": lambda st, g, t, step: _baseline(st, g, t, step, read="after"),
        "the table is updated step by step while the baseline is read, so a later step's b_t already contains this "
        "episode's returns; read every b_t first, then update":
            lambda st, g, t, step: _baseline(st, g, t, step, read="during"),
        "the table is never updated, so the baseline stays 0":
            lambda st, g, t, step: _baseline(st, g, t, step, update="none"),
        "the running average moves away from the return (sign flipped): V(s) − step·(G − V(s)) instead of "
        "V(s) + step·(G − V(s))":
            lambda st, g, t, step: _baseline(st, g, t, step, update="sign"),
        "the step size is ignored: the table keeps only the last return seen from each state":
            lambda st, g, t, step: _baseline(st, g, t, step, update="last"),
        "the step is used the wrong way round: V(s) + (1 − step)·(G − V(s)) instead of V(s) + step·(G − V(s))":
            lambda st, g, t, step: _baseline(st, g, t, step, update="one_minus"),
        "the first return seen from a state is averaged with 0; it must be stored as it is":
            lambda st, g, t, step: _baseline(st, g, t, step, update="from_zero"),
        "the baseline is one value for all states; b_t must be the value of the state s_t of step t": _one_value,
    },
}
