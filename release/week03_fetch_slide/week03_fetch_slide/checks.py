"""Checks of the optional Fetch Slide part (assignment ``week03_fetch_slide``), judged in the grader's process.

``imitation_loss_exact`` compares the gradient of the student's imitation loss with respect to a Gaussian policy's
parameters with the reference's, on fixed and random batches; named mistakes give the hints. ``imitation_clones_
controller`` clones the scripted controller with the student's loss and compares the clone's success rate on
FetchSlide-v4 with the controller's, on the same episodes. The drivers are in ``drivers.py``. Its named
mistakes are grader-only (``source/week03_fetch_slide/mistakes.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from gradekit.checks import ConvergenceCheck, ExactCheck, fmt
from gradekit.drivers import build_network, network_params

from . import drivers


@dataclass(frozen=True)
class ImitationLossExact(ExactCheck):
    title: ClassVar[str] = "imitation_loss: the Gaussian negative log-likelihood of the demonstrated actions"
    functions: ClassVar[tuple[str, ...]] = ("imitation_loss",)
    driver: ClassVar = staticmethod(drivers.call_imitation_loss)
    rtol: float = 1e-4

    def _case(self, rng, batch: int, dims: int, sizes: list[int], log_std, per_row: bool) -> dict:
        """A batch of inputs through a fixed mean network, and actions drawn around its means (as demonstrations)."""
        import torch

        torch.manual_seed(int(rng.integers(2**31)))
        net = build_network(sizes)
        inputs = rng.normal(0, 1, (batch, sizes[0])).round(4)
        with torch.no_grad():
            mean = net(torch.tensor(inputs, dtype=torch.float32)).numpy()
        sigma = np.exp(np.asarray(log_std, dtype=float))
        actions = (mean + sigma * rng.normal(0, 1.5, (batch, dims))).round(4)
        return {"sizes": sizes, "params": network_params(net), "inputs": inputs.tolist(),
                "log_std": [float(v) for v in log_std], "per_row": per_row, "actions": actions.tolist()}

    def fixed_cases(self):
        rng = np.random.default_rng(self.seed + 1)
        return [
            self._case(rng, 1, 1, [1, 1], [0.0], False),  # one demonstration of one number, σ = 1
            self._case(rng, 4, 3, [9, 3], [0.0, 0.0, 0.0], False),  # FetchSlide's three displacements
            self._case(rng, 8, 3, [9, 3], [-0.5, -1.0, 0.3], True),  # log σ given per row, shape (N, D)
            self._case(rng, 32, 3, [9, 16, 3], [-2.0, -2.5, -1.5], False),  # σ as small as after cloning
            self._case(rng, 1, 4, [5, 8, 4], [0.5, -0.5, 0.0, 1.0], False),
            self._case(rng, 64, 2, [3, 2], [-1.0, 0.2], True),
        ]

    def random_case(self, rng):
        dims, inputs = int(rng.integers(1, 5)), int(rng.integers(1, 10))
        sizes = [inputs, dims] if rng.random() < 0.5 else [inputs, int(rng.integers(4, 17)), dims]
        return self._case(rng, int(rng.integers(1, 65)), dims, sizes, rng.uniform(-2.5, 1.0, dims).round(4),
                          bool(rng.random() < 0.5))

    def show(self, case):
        batch, dims = len(case["actions"]), len(case["log_std"])
        shape = f"({batch}, {dims})" if case["per_row"] else f"({dims},)"
        return (f"a batch of N={batch} demonstrated actions of D={dims} numbers, means from an MLP {case['sizes']}, "
                f"log_std={fmt(case['log_std'])} passed with shape {shape}")

    def value(self, answer):
        return "gradient " + fmt(answer["grad"])

    def compare(self, case, expected, got):
        """The gradient with respect to every parameter of the policy must match (the loss's constant is free)."""
        want, have = np.asarray(expected["grad"]), np.asarray(got["grad"], dtype=float)
        scale = max(1.0, float(np.abs(want).max()))
        if have.shape == want.shape and np.allclose(have, want, rtol=self.rtol, atol=self.rtol * scale):
            return None
        text = (f"Gradient of the loss with respect to the policy's parameters (the mean network's, then log σ): "
                f"expected {fmt(want)}, got {fmt(have)}.")
        if have.shape != want.shape:
            return text
        got_log_std = np.asarray(got["grad_log_std"], dtype=float)
        if np.allclose(got_log_std, 0.0, atol=1e-9) and not np.allclose(expected["grad_log_std"], 0.0, atol=1e-6):
            return text + " Your loss gives log_std no gradient at all, but the likelihood of an action depends on σ."
        factor = float(have @ want) / float(want @ want) if np.any(want) else 0.0
        if factor and np.allclose(have, factor * want, rtol=1e-3, atol=1e-3 * scale * abs(factor)):
            if factor < 0:
                return text + " It points the opposite way: check the sign of the loss."
            return text + (f" It is {factor:.3g} times the expected one: the loss is the mean over the N "
                           "demonstrations of the sum over the D action dimensions.")
        return text


@dataclass(frozen=True)
class ImitationClonesController(ConvergenceCheck):
    """Behaviour cloning of the scripted controller with the student's loss, judged by success rate on FetchSlide-v4
    relative to the controller's on the same evaluation episodes. Demonstrations and evaluation episodes are fixed by
    the settings; each seed draws the policy's initial weights and its minibatches."""

    title: ClassVar[str] = "imitation_loss clones the scripted controller on FetchSlide-v4"
    functions: ClassVar[tuple[str, ...]] = ("imitation_loss",)
    driver: ClassVar = staticmethod(drivers.clone_and_evaluate)
    metric_name: ClassVar[str] = "the clone's successes / the controller's, on the same evaluation episodes"
    curve: ClassVar[str] = "relative_success"
    axes: ClassVar[tuple[str, str]] = ("Evaluation episode", "successes: clone / controller (so far)")
    ylim: ClassVar[tuple[float, float] | None] = (0.0, 1.05)
    demos: int = 100  # controller episodes cloned
    demo_seed: int = 1000  # they are reset with seeds demo_seed, demo_seed + 1, …
    eval_episodes: int = 50
    eval_seed: int = 2000
    epochs: int = 100
    batch_size: int = 128
    lr: float = 3e-3
    hidden: int = 256

    def __post_init__(self):
        super().__post_init__()
        if self.eval_seed < self.demo_seed + self.demos and self.demo_seed < self.eval_seed + self.eval_episodes:
            raise ValueError("the evaluation episodes must not be demonstrations (their seeds overlap)")

    def workers(self, available):
        """One seed at a time: every process first runs the controller's 150 episodes (about 8 s, cached for the
        next seeds), so forked copies would each repeat them. A correct grade took 38 s with one worker, 61 s with
        two."""
        return 1

    def settings(self):
        return {"demos": self.demos, "demo_seed": self.demo_seed, "eval_episodes": self.eval_episodes,
                "eval_seed": self.eval_seed, "epochs": self.epochs, "batch_size": self.batch_size, "lr": self.lr,
                "hidden": self.hidden}

    def metric(self, data):
        return float(sum(data["successes"]) / max(1.0, sum(data["controller_successes"])))

    def hint(self, outcomes):
        return ("The cloned policy slid the puck onto the goal far less often than the controller it imitates. "
                "Minimising the imitation loss must pull the policy's mean toward the demonstrated actions: check the "
                "sign of the loss, and that it stays connected to mean and log_std.")
