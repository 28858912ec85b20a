"""Known mistakes of the optional Fetch Slide part, named by the hint a student gets. GRADER-ONLY.

Each is one sign or one factor away from the solution, so this file stays beside the reference notebook: never shipped
in the release, never on the kernel's path.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from week03_fetch_slide.checks import ImitationLossExact


def _terms(mean: torch.Tensor, log_std: torch.Tensor, actions: torch.Tensor, variance_power: float = 2.0,
           log_weight: float = 1.0) -> torch.Tensor:
    """Per demonstration and dimension: (a − μ)² / 2σ^p + w·log σ (p = 2, w = 1 is the negative log-likelihood up to
    the constant ½ log 2π); the mistakes below change one piece of it."""
    return (actions - mean) ** 2 / (2 * log_std.exp() ** variance_power) + log_weight * log_std


MISTAKES: dict[type, dict[str, Callable]] = {  # check class -> {hint: wrong implementation}
    ImitationLossExact: {
        "the sign is flipped: minimising the loss must make the demonstrated actions more likely, not less likely":
            lambda m, s, a: -_terms(m, s, a).sum(-1).mean(),
        "the log σ term is missing: without it the loss keeps falling as σ grows, so σ never fits the demonstrations":
            lambda m, s, a: _terms(m, s, a, log_weight=0.0).sum(-1).mean(),
        "the loss averages over the action dimensions; the log-likelihood of an action vector is the sum over its "
        "dimensions": lambda m, s, a: _terms(m, s, a).mean(),
        "the loss sums over the demonstrations; it must be their mean":
            lambda m, s, a: _terms(m, s, a).sum(),
        "this is F.mse_loss of the mean: σ gets no gradient and the errors are not weighted by 1/σ²":
            lambda m, s, a: F.mse_loss(m, a),
        "this is a squared error of the mean only: σ gets no gradient and the errors are not weighted by 1/σ²":
            lambda m, s, a: (0.5 * (a - m) ** 2).sum(-1).mean(),
        "σ is used where the variance σ² belongs": lambda m, s, a: _terms(m, s, a, variance_power=1.0).sum(-1).mean(),
        "the log σ term counts twice: the Gaussian's normaliser is ½ log σ² = log σ, not log σ²":
            lambda m, s, a: _terms(m, s, a, log_weight=2.0).sum(-1).mean(),
    },
}
