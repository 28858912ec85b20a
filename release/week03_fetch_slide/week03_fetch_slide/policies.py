"""The policy of the optional Fetch Slide part (locked in the notebook), as ``drivers.behaviour_cloning`` trains it
(imported when a run starts: the grader loads the checks without torch)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn


class GaussianPolicy(nn.Module):
    """π(a | s) = N(μ(s), diag σ²) over the three displacements (the gripper stays closed in FetchSlide): an MLP for
    the mean, one learned log σ per action dimension. Inputs are standardised with the demonstrations' statistics."""

    def __init__(self, input_mean, input_std, hidden: int = 256, actions: int = 3, log_std: float = -0.5):
        super().__init__()
        self.register_buffer("input_mean", torch.as_tensor(np.asarray(input_mean), dtype=torch.float32))
        self.register_buffer("input_std", torch.as_tensor(np.asarray(input_std), dtype=torch.float32))
        size = self.input_mean.numel()
        self.mean_net = nn.Sequential(nn.Linear(size, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                      nn.Linear(hidden, actions))
        self.log_std = nn.Parameter(torch.full((actions,), float(log_std)))

    def forward(self, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.mean_net((inputs - self.input_mean) / self.input_std), self.log_std

