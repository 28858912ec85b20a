"""Drivers of the optional Gymnasium part: REINFORCE on CartPole-v1 (categorical policy) and InvertedPendulum-v5
(Gaussian policy), with the student's ``discounted_returns``, log-probability functions and batched loss.

Like ``harness.py``, every driver runs in the student's kernel with the student's functions and in the grader with the
reference, and returns plain data only; verdicts are decided in ``checks_gym.py``. The environments are Gymnasium's
own (``gymnasium.make``, no rendering), reset with a different seed for every episode, derived from the check's seed:
the Gymnasium tutorial reset every episode with the same seed, so every episode started alike. The policies are the
notebook's (``policies.py``). torch, Gymnasium and the policies are imported by the drivers that use them: the grader
imports this module with the checks, and needs them only once a driver runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from gradekit.drivers import Adam, ContractError, as_vector, finite, scalar_loss, seed_everything

if TYPE_CHECKING:
    import torch
    import torch.nn as nn


def preload() -> None:
    """What the drivers import when they run: the kernel imports it once before it forks a copy per seed."""
    import gymnasium  # noqa: F401
    import gymnasium.envs.classic_control.cartpole  # noqa: F401
    import gymnasium.envs.mujoco.inverted_pendulum_v5  # noqa: F401 (mujoco: ~0.3 s)
    import torch  # noqa: F401

    from . import policies  # noqa: F401


# ------------------------------------------------------------------------------------------------- exactness
def call_categorical_log_prob(fn, case: dict) -> dict:
    """``categorical_log_prob`` on given logits and actions: its values and the gradient w.r.t. the logits."""
    import torch

    logits = torch.tensor(case["logits"], dtype=torch.float32, requires_grad=True)
    actions = torch.tensor(case["actions"], dtype=getattr(torch, case.get("actions_dtype", "int64")))  # any integer
    return _values_and_grads(fn(logits, actions), [logits], len(case["actions"]))


def call_gaussian_log_prob(fn, case: dict) -> dict:
    """``gaussian_log_prob`` on given means, log-stds and actions: its values and the gradients w.r.t. the means and
    the log-stds."""
    import torch

    mean = torch.tensor(case["mean"], dtype=torch.float32, requires_grad=True)
    log_std = torch.tensor(case["log_std"], dtype=torch.float32, requires_grad=True)
    actions = torch.tensor(case["actions"], dtype=torch.float32)
    return _values_and_grads(fn(mean, log_std, actions), [mean, log_std], len(case["actions"]))


def _values_and_grads(out, inputs: list[torch.Tensor], n: int) -> dict:
    """One log-probability per row, and the gradient of a fixed random weighting of them w.r.t. ``inputs``."""
    import torch

    if not isinstance(out, torch.Tensor):
        raise ContractError(f"the log-probabilities must be a torch tensor, got {type(out).__name__}")
    if tuple(out.shape) != (n,):
        raise ContractError(f"expected one log-probability per row, shape ({n},), got shape {tuple(out.shape)}")
    if not out.requires_grad:
        raise ContractError("the log-probabilities are not connected to the policy's outputs (no gradient flows: "
                            "was something detached, converted to numbers or rebuilt with torch.tensor?)")
    weights = torch.linspace(1.0, -0.5, n) if n > 1 else torch.ones(1)
    grads = torch.autograd.grad((out * weights).sum(), inputs, allow_unused=True)
    flat = [0.0 if g is None else v for x, g in zip(inputs, grads)
            for v in (torch.zeros_like(x) if g is None else g).ravel().tolist()]
    return {"shape": list(out.shape), "values": out.detach().double().tolist(), "grad": flat}


def call_batch_loss(fn, case: dict) -> dict:
    """``reinforce_batch_loss`` on given log-probabilities and returns: the gradient w.r.t. the log-probabilities.

    With ``case["advantages_grad"]`` the returns require grad (as if a critic computed them): the gradient with
    respect to them (``advantage_grad``) must then be zero."""
    import torch

    track = bool(case.get("advantages_grad"))
    log_probs = torch.tensor(case["log_probs"], dtype=torch.float32, requires_grad=True)
    returns = torch.tensor(case["returns"], dtype=torch.float32, requires_grad=track)
    loss = scalar_loss(fn(log_probs, returns), "the log-probabilities")
    inputs = [log_probs, returns] if track else [log_probs]
    grads = [torch.zeros_like(x) if g is None else g
             for g, x in zip(torch.autograd.grad(loss, inputs, allow_unused=True), inputs)]
    answer = {"loss": float(loss.detach()), "grad": grads[0].tolist()}
    if track:
        answer["advantage_grad"] = grads[1].tolist()
    return answer


# ------------------------------------------------------------------------------------------------- behaviour
def episode_seed(seed: int, episode: int) -> int:
    """The reset seed of one episode: different for every episode, and a function of the check's seed."""
    return seed * 1_000_003 + episode


def train_reinforce(env_id: str, policy: nn.Module, log_prob_fn, returns_fn, loss_fn, case: dict) -> dict:
    """Batched REINFORCE with Adam, as in the notebook's ``train_reinforce``: ``n_envs`` copies of the environment
    step in lockstep (one forward pass of the policy for all of them); whole episodes are collected until the batch
    holds at least ``batch_steps`` steps, then the policy takes one gradient step on the loss of the whole batch, with
    log-probabilities recomputed in one batched forward pass.

    Stops once the mean return of the last ``window`` episodes reaches ``target``, or after ``max_steps`` environment
    steps or ``max_episodes`` episodes (a policy that never learns plays very short episodes, whose resets would
    otherwise dominate the budget). Returns the undiscounted return of every episode, the steps used, and ``curve``: the mean return of the
    last ``window`` episodes after every ``log_every`` steps of the budget (equally long for every run; after an
    early stop it repeats the last value).
    """
    import gymnasium as gym
    import torch

    envs = [gym.make(env_id) for _ in range(case["n_envs"])]
    optimiser = Adam(policy.parameters(), lr=case["lr"])
    continuous = isinstance(envs[0].action_space, gym.spaces.Box)
    episode_returns: list[float] = []
    progress: list[tuple[int, float]] = []  # (steps so far, mean return of the last `window` episodes) per update
    obs = [env.reset(seed=episode_seed(case["seed"], i))[0] for i, env in enumerate(envs)]
    started, steps = len(envs), 0
    while steps < case["max_steps"] and len(episode_returns) < case["max_episodes"]:
        batch_obs, batch_actions, batch_returns = [], [], []
        episodes = [{"obs": [], "actions": [], "rewards": []} for _ in envs]
        active, batch_steps = list(range(len(envs))), 0
        while active:  # every copy plays until the batch is full, then finishes the episode it is in
            actions = policy.sample(torch.as_tensor(np.stack([obs[i] for i in active]), dtype=torch.float32))
            still = []
            for i, action in zip(active, actions.numpy()):
                episode = episodes[i]
                episode["obs"].append(obs[i])
                episode["actions"].append(action)
                if continuous:  # the environment gets the action clipped to its bounds; the sample is trained
                    action = np.clip(action, envs[i].action_space.low, envs[i].action_space.high)
                obs[i], reward, terminated, truncated, _ = envs[i].step(action if continuous else int(action))
                episode["rewards"].append(float(reward))
                batch_steps += 1
                if not (terminated or truncated):
                    still.append(i)
                    continue
                rewards = episode["rewards"]
                batch_returns.append(as_vector(returns_fn(list(rewards), case["gamma"]), "the returns", len(rewards)))
                batch_obs += episode["obs"]
                batch_actions += episode["actions"]
                episode_returns.append(sum(rewards))
                episodes[i] = {"obs": [], "actions": [], "rewards": []}
                obs[i] = envs[i].reset(seed=episode_seed(case["seed"], started))[0]
                started += 1
                if batch_steps < case["batch_steps"]:
                    still.append(i)
            active = still
        steps += batch_steps
        update(policy, optimiser, log_prob_fn, loss_fn, batch_obs, batch_actions, batch_returns)
        finite(torch.cat([p.detach().ravel() for p in policy.parameters()]), "the policy's parameters",
               len(progress) + 1)
        progress.append((steps, float(np.mean(episode_returns[-case["window"]:]))))
        if len(episode_returns) >= case["window"] and progress[-1][1] >= case["target"]:
            break
    for env in envs:
        env.close()
    return {"episode_returns": episode_returns, "steps": steps, "curve": sampled(progress, case)}


def update(policy, optimiser, log_prob_fn, loss_fn, batch_obs: list, batch_actions: list, batch_returns: list) -> None:
    """One gradient step on the student's loss of a whole batch, with the student's log-probabilities."""
    import torch

    n = len(batch_obs)
    outputs = policy(torch.as_tensor(np.stack(batch_obs), dtype=torch.float32))
    log_probs = log_prob_fn(*outputs, torch.as_tensor(np.stack(batch_actions)))
    if not isinstance(log_probs, torch.Tensor) or tuple(log_probs.shape) != (n,):
        got = tuple(log_probs.shape) if isinstance(log_probs, torch.Tensor) else type(log_probs).__name__
        raise ContractError(f"the log-probabilities of a batch of {n} steps must have shape ({n},), got {got}")
    returns = torch.as_tensor(np.concatenate(batch_returns), dtype=torch.float32)
    optimiser.update(scalar_loss(loss_fn(log_probs, returns), "the log-probabilities"))


def sampled(progress: list[tuple[int, float]], case: dict) -> list[float]:
    """The mean return of the last ``window`` episodes at every ``log_every`` steps of the budget (0 before the first
    update, the last value after the run stopped)."""
    curve, last, i = [], 0.0, 0
    for checkpoint in range(case["log_every"], case["max_steps"] + 1, case["log_every"]):
        while i < len(progress) and progress[i][0] <= checkpoint:
            last = progress[i][1]
            i += 1
        curve.append(last)
    if progress and progress[-1][0] > case["max_steps"] - case["log_every"]:
        curve[-1] = progress[-1][1]
    return curve


def cartpole_run(returns_fn, log_prob_fn, loss_fn, case: dict) -> dict:
    """REINFORCE on CartPole-v1 with the categorical MLP policy."""
    from .policies import CategoricalPolicy

    seed_everything(case["seed"])
    policy = CategoricalPolicy(4, 2, case["hidden"])
    return train_reinforce("CartPole-v1", policy, log_prob_fn, returns_fn, loss_fn, case)


def pendulum_run(returns_fn, log_prob_fn, loss_fn, case: dict) -> dict:
    """REINFORCE on InvertedPendulum-v5 with the Gaussian MLP policy."""
    from .policies import GaussianPolicy

    seed_everything(case["seed"])
    policy = GaussianPolicy(4, 1, case["hidden"], case["log_std"])
    return train_reinforce("InvertedPendulum-v5", policy, log_prob_fn, returns_fn, loss_fn, case)
