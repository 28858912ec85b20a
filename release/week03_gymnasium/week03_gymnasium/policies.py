"""The notebook's policies for the optional Gymnasium part, as the behaviour checks' drivers train them (``drivers.py``
imports this module when a run starts: the grader loads the checks without torch)."""

from __future__ import annotations

import torch
import torch.nn as nn


class CategoricalPolicy(nn.Module):
    """An MLP from observations to the logits of a categorical distribution over discrete actions (CartPole)."""

    def __init__(self, obs_dim: int, n_actions: int, hidden: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(obs_dim, hidden), nn.Tanh(), nn.Linear(hidden, n_actions))

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor]:
        return (self.net(obs),)

    @torch.no_grad()
    def sample(self, obs: torch.Tensor) -> torch.Tensor:
        (logits,) = self(obs)
        return torch.multinomial(torch.softmax(logits, dim=-1), 1).squeeze(-1)


class GaussianPolicy(nn.Module):
    """An MLP from observations to the mean of a diagonal Gaussian; its log standard deviation is one learned
    parameter per action dimension, independent of the observation (InvertedPendulum)."""

    def __init__(self, obs_dim: int, action_dim: int, hidden: int, log_std: float):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(obs_dim, hidden), nn.Tanh(), nn.Linear(hidden, action_dim))
        self.log_std = nn.Parameter(torch.full((action_dim,), float(log_std)))

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.net(obs), self.log_std

    @torch.no_grad()
    def sample(self, obs: torch.Tensor) -> torch.Tensor:
        mean, log_std = self(obs)
        return mean + log_std.exp() * torch.randn_like(mean)
