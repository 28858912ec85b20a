"""Building blocks of drivers: seeding, fixed networks, and the checks of a graded function's contract.

A driver (in an assignment's ``drivers.py``) calls a graded function on given inputs and returns plain numbers. These
helpers turn what the student's function returned into numbers, or raise ``ContractError`` with a sentence the student
reads (wrong type, wrong shape, no gradient). Generic: no assignment's content is named here. torch is imported
where it is used: the grader imports this module with the checks, and needs torch only once a driver runs.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch
    import torch.nn as nn


class ContractError(Exception):
    """The student's function returned something the contract does not allow (wrong type, shape, no gradient)."""


class Diverged(Exception):
    """The loop's own values (a network's parameters, the probabilities it samples from) stopped being finite
    numbers while it trained with the student's functions, so the run cannot go on. Not the student's exception, nor a
    broken contract: the functions returned values of the right kind, and training with them diverged. The message
    says which values and when, as a clause of the feedback's sentence (``finite``)."""


def finite(values, what: str, updates: int):
    """``values`` (a tensor) if all of them are finite numbers, else ``Diverged``: "``what`` stopped being finite
    numbers (inf or NaN) after ``updates`` updates"."""
    import torch

    if not bool(torch.isfinite(values).all()):
        raise Diverged(f"{what} stopped being finite numbers (inf or NaN) after {updates} "
                       f"update{'' if updates == 1 else 's'}")
    return values


def sample(probs, what: str, updates: int) -> int:
    """An action drawn from ``probs`` (``torch.multinomial(probs, 1)``); when torch refuses because they are no longer
    finite numbers, ``Diverged`` (``finite``). Checked only then: nothing is added to a run that goes on."""
    import torch

    try:
        return int(torch.multinomial(probs, 1))
    except RuntimeError:
        finite(probs, what, updates)
        raise


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, numpy and torch: the only place the grader seeds anything."""
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# ---------------------------------------------------------------------------------------------------------- inputs
def build_network(sizes: list[int], params: list | None = None) -> nn.Module:
    """An MLP ``sizes[0] -> ... -> sizes[-1]`` with ReLU between layers; ``params`` (nested lists) fix its weights."""
    import torch
    import torch.nn as nn

    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        if i:
            layers.append(nn.ReLU())
        layers.append(nn.Linear(n_in, n_out))
    net = nn.Sequential(*layers)
    if params is not None:
        with torch.no_grad():
            for p, value in zip(net.parameters(), params, strict=True):
                p.copy_(torch.tensor(value, dtype=torch.float32))
    return net


class Adam:
    """``torch.optim.Adam`` (``decoupled=True``: ``AdamW``) with its default settings, used as
    ``optimiser.update(loss)`` = ``zero_grad(); loss.backward(); step()``, to the last bit: it keeps the state that
    torch.optim keeps and calls torch's functional ``torch.optim.adam.adam`` as ``Adam.step`` does (checked against
    torch.optim in tests/test_checks.py). Without torch.optim's ``Optimizer`` class, whose first use imports
    ``torch._dynamo`` for its torch.compile hooks: about 1 CPU-s in every fresh grading kernel, for nothing here."""

    def __init__(self, params, lr: float, decoupled: bool = False):
        import inspect

        import torch

        defaults = inspect.signature((torch.optim.AdamW if decoupled else torch.optim.Adam).__init__).parameters
        self.params = list(params)
        self.lr, self.decoupled = lr, decoupled
        self.betas, self.eps, self.weight_decay = (defaults[k].default for k in ("betas", "eps", "weight_decay"))
        self.state: dict[int, tuple] = {}  # per parameter, once it has had a gradient: step, exp_avg, exp_avg_sq

    def update(self, loss: torch.Tensor) -> None:
        import torch
        from torch.optim.adam import adam

        for p in self.params:
            p.grad = None
        loss.backward()
        with torch.no_grad():
            params = [p for p in self.params if p.grad is not None]
            for p in params:
                if id(p) not in self.state:  # as Adam._init_group: a float32 step (float64 if that is the default)
                    step = torch.tensor(0.0, dtype=torch.float64 if torch.get_default_dtype() == torch.float64
                                        else torch.float32)
                    self.state[id(p)] = (step, torch.zeros_like(p, memory_format=torch.preserve_format),
                                         torch.zeros_like(p, memory_format=torch.preserve_format))
            state = [self.state[id(p)] for p in params]
            steps, exp_avgs, exp_avg_sqs = ([s[i] for s in state] for i in range(3))
            adam(params, [p.grad for p in params], exp_avgs, exp_avg_sqs, [], steps, foreach=None, capturable=False,
                 differentiable=False, fused=None, grad_scale=None, found_inf=None,
                 has_complex=any(torch.is_complex(p) for p in params), decoupled_weight_decay=self.decoupled,
                 amsgrad=False, beta1=self.betas[0], beta2=self.betas[1], lr=self.lr,
                 weight_decay=self.weight_decay, eps=self.eps, maximize=False)


def network_params(net: nn.Module) -> list:
    return [p.detach().tolist() for p in net.parameters()]


def as_vector(value, what: str, size: int) -> np.ndarray:
    """A tensor, array or list of ``size`` numbers as a float64 numpy array; a clear ContractError otherwise."""
    import torch

    try:
        if isinstance(value, torch.Tensor):
            array = value.detach().cpu().double().numpy()
        elif isinstance(value, (list, tuple)):
            array = np.asarray([float(v) for v in value], dtype=np.float64)
        else:
            array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ContractError(f"{what} must be a tensor, array or list of numbers, got {type(value).__name__}") from exc
    if array.size != size:
        raise ContractError(f"{what} must hold {size} numbers, got {array.size} (shape {array.shape})")
    return array


def scalar_loss(loss, inputs: str) -> torch.Tensor:
    """Check that a loss is a one-element tensor still connected to ``inputs``; return it as a 0-d tensor."""
    import torch

    if not isinstance(loss, torch.Tensor):
        raise ContractError(f"the loss must be a torch tensor, got {type(loss).__name__}")
    if loss.numel() != 1:
        raise ContractError(f"the loss must be a scalar (one element), got shape {tuple(loss.shape)}")
    if not loss.requires_grad:
        raise ContractError(f"the loss is not connected to {inputs} (no gradient flows: was something detached, "
                            "converted to a number or rebuilt with torch.tensor?)")
    return loss.reshape(())
