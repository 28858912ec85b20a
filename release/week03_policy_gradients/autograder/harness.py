"""Drivers: run one graded function on given inputs and return plain data.

Every driver runs twice for a check: in the student's kernel with the student's function, and in the grader's process
with the reference. Only the JSON-able data a driver returns crosses the process boundary; verdicts are decided in
the grader (``checks.py``). Nothing here knows the reference solution or a threshold, so a student who patches this
module, numpy or torch can only change the numbers the grader receives, never the rule that judges them.
"""

from __future__ import annotations

import functools
import importlib
import io
import json
import math
import os
import random
import selectors
import signal
import sys
import traceback
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from autograder.envs import BanditEnv, ChainEnv

MIME = "application/vnd.autograder.result+json"


class ContractError(Exception):
    """The student's function returned something the contract does not allow (wrong type, shape, no gradient)."""


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, numpy and torch: the only place the grader seeds anything."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# ---------------------------------------------------------------------------------------------------------- inputs
def build_network(sizes: list[int], params: list | None = None) -> nn.Module:
    """An MLP ``sizes[0] -> ... -> sizes[-1]`` with ReLU between layers; ``params`` (nested lists) fix its weights."""
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


def network_params(net: nn.Module) -> list:
    return [p.detach().tolist() for p in net.parameters()]


def as_vector(value, what: str, size: int) -> np.ndarray:
    """A tensor, array or list of ``size`` numbers as a float64 numpy array; a clear ContractError otherwise."""
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
    if not isinstance(loss, torch.Tensor):
        raise ContractError(f"the loss must be a torch tensor, got {type(loss).__name__}")
    if loss.numel() != 1:
        raise ContractError(f"the loss must be a scalar (one element), got shape {tuple(loss.shape)}")
    if not loss.requires_grad:
        raise ContractError(f"the loss is not connected to {inputs} (no gradient flows: was something detached, "
                            "converted to a number or rebuilt with torch.tensor?)")
    return loss.reshape(())


# --------------------------------------------------------------------------------------------- exactness drivers
def call_update(fn, case: dict) -> dict:
    """``policy_gradient_update`` on one case; the result is the returned array, or the input if updated in place."""
    logits = np.asarray(case["logits"], dtype=np.float64).reshape(case["shape"])
    returned = fn(logits, case["action"], case["reward"], case["lr"])
    result = logits if returned is None else returned
    value = as_vector(result, "the returned logits", 3)
    return {"shape": list(value.shape), "logits": value.ravel().tolist(), "in_place": returned is None}


def call_pg_loss(fn, case: dict) -> dict:
    """``pg_loss`` on the probabilities of a fixed network; returns the gradient with respect to its parameters."""
    net = build_network(case["sizes"], case["params"])
    probs = F.softmax(net(torch.tensor([case["state"]], dtype=torch.float32)), dim=0)
    loss = scalar_loss(fn(probs, case["action"], case["reward"]), "the network's parameters")
    loss.backward()
    grads = [p.grad.ravel().tolist() if p.grad is not None else [0.0] * p.numel() for p in net.parameters()]
    return {"loss": float(loss.detach()), "grad": [g for layer in grads for g in layer]}


def call_returns(fn, case: dict) -> dict:
    value = as_vector(fn(list(case["rewards"]), case["gamma"]), "the returns", len(case["rewards"]))
    return {"shape": list(value.shape), "returns": value.ravel().tolist()}


def call_reinforce_loss(fn, case: dict) -> dict:
    """``reinforce_loss`` on given log-probabilities; returns its gradient with respect to them."""
    log_probs = torch.tensor(case["log_probs"], dtype=torch.float32, requires_grad=True)
    returns = torch.tensor(case["returns"], dtype=torch.float32)
    baseline = case.get("baseline", "default")
    if baseline == "default":
        loss = fn(log_probs, returns)
    else:
        loss = fn(log_probs, returns, torch.tensor(baseline, dtype=torch.float32) if isinstance(baseline, list)
                  else baseline)
    loss = scalar_loss(loss, "the log-probabilities")
    (grad,) = torch.autograd.grad(loss, log_probs, allow_unused=True)
    return {"loss": float(loss.detach()), "grad": (torch.zeros_like(log_probs) if grad is None else grad).tolist()}


# --------------------------------------------------------------------------------------------- behaviour drivers
def softmax(x: np.ndarray) -> np.ndarray:
    z = np.exp(x - x.max())
    return z / z.sum()


def bandit_table_run(fn, case: dict) -> dict:
    """The lecture's lookup-table bandit: fresh logits ``rand(3, 1)``, ``steps`` updates.

    Returns the policy after every step (``probs``, one [L, C, R] triple a step) and the reward of every step."""
    seed_everything(case["seed"])
    env = BanditEnv(max_steps=case["steps"])
    env.reset(seed=case["seed"])
    logits = np.random.rand(3, 1)
    probs, rewards = [], []
    for _ in range(case["steps"]):
        action = int(np.random.choice(3, p=softmax(logits).ravel()))
        _, reward, _, _, _ = env.step(action)
        before = logits.copy()
        returned = fn(before, action, reward, case["lr"])
        logits = np.clip(as_vector(before if returned is None else returned, "the returned logits", 3), -100, 100)
        if logits.shape != (3, 1):
            raise ContractError(f"returned logits of shape {logits.shape} for logits of shape (3, 1)")
        probs.append(softmax(logits).ravel().tolist())
        rewards.append(float(reward))
    return {"probs": probs, "rewards": rewards}


def bandit_network_run(fn, case: dict) -> dict:
    """The lecture's network bandit: ``Linear(1, 3)`` + softmax, Adam, one ``pg_loss`` step per time step."""
    seed_everything(case["seed"])
    env = BanditEnv(max_steps=case["steps"])
    state, _ = env.reset(seed=case["seed"])
    net = build_network([1, 3])
    optimiser = torch.optim.Adam(net.parameters(), lr=case["lr"])
    probs, rewards = [], []
    for _ in range(case["steps"]):
        optimiser.zero_grad()
        policy = F.softmax(net(torch.tensor([float(state)])), dim=0)
        action = int(torch.multinomial(policy.detach(), 1))
        state, reward, _, _, _ = env.step(action)
        scalar_loss(fn(policy, action, reward), "the network's parameters").backward()
        optimiser.step()
        with torch.no_grad():
            probs.append(F.softmax(net(torch.tensor([float(state)])), dim=0).tolist())
        rewards.append(float(reward))
    return {"probs": probs, "rewards": rewards}


def chain_reinforce_run(returns_fn, loss_fn, case: dict) -> dict:
    """REINFORCE on the chain as in the lecture (one update per episode, AdamW), with bounded episodes.

    With ``case["baseline"]`` true, the notebook's state baseline is subtracted: b(s) is a running average (step
    ``baseline_step``) of the returns seen from s in earlier episodes. Returns the undiscounted return and the loss of
    every episode."""
    seed_everything(case["seed"])
    env = ChainEnv(max_steps=case["max_steps"])
    net = build_network([1, 3])
    optimiser = torch.optim.AdamW(net.parameters(), lr=case["lr"])
    table: dict[int, float] = {}
    episode_returns, losses = [], []
    for episode in range(case["episodes"]):
        state, _ = env.reset(seed=case["seed"] * 100_000 + episode)
        states, log_probs, rewards, done = [], [], [], False
        while not done:
            probs = F.softmax(net(torch.tensor([float(state)])), dim=-1)
            action = int(torch.multinomial(probs.detach(), 1))
            states.append(int(state))
            log_probs.append(torch.log(probs[action]))
            state, reward, terminated, truncated, _ = env.step(action)
            rewards.append(reward)
            done = terminated or truncated
        returns = torch.tensor(as_vector(returns_fn(rewards, case["gamma"]), "the returns", len(rewards)),
                               dtype=torch.float32).reshape(-1)
        if case.get("baseline"):
            baseline = torch.tensor([table.get(s, 0.0) for s in states], dtype=torch.float32)
            loss = scalar_loss(loss_fn(torch.stack(log_probs), returns, baseline), "the log-probabilities")
            for s, g in zip(states, returns.tolist()):
                table[s] = g if s not in table else table[s] + case["baseline_step"] * (g - table[s])
        else:
            loss = scalar_loss(loss_fn(torch.stack(log_probs), returns), "the log-probabilities")
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        episode_returns.append(float(sum(rewards)))
        losses.append(float(loss.detach()))
    return {"episode_returns": episode_returns, "losses": losses}


def sample_chain_episodes(params: list, n: int, seed: int, max_steps: int) -> list[dict]:
    """``n`` episodes of a fixed chain policy: states, actions and rewards (the grader computes returns from them)."""
    seed_everything(seed)
    net = build_network([1, 3], params)
    env = ChainEnv(max_steps=max_steps)
    episodes = []
    with torch.no_grad():
        for i in range(n):
            state, _ = env.reset(seed=seed * 100_000 + i)
            states, actions, rewards, done = [], [], [], False
            while not done:
                action = int(torch.multinomial(F.softmax(net(torch.tensor([float(state)])), dim=-1), 1))
                states.append(state)
                actions.append(action)
                state, reward, terminated, truncated, _ = env.step(action)
                rewards.append(reward)
                done = terminated or truncated
            episodes.append({"states": states, "actions": actions, "rewards": rewards})
    return episodes


def baseline_gradients(loss_fn, case: dict) -> dict:
    """Per-episode gradients of ``reinforce_loss`` with respect to the policy's parameters, with baseline 0 and with
    the given per-step baseline, on the same fixed episodes."""
    net = build_network([1, 3], case["params"])
    gradients: dict[str, list] = {"plain": [], "baselined": []}
    for ep in case["episodes"]:
        states = torch.tensor(ep["states"], dtype=torch.float32).unsqueeze(-1)
        log_probs = F.log_softmax(net(states), dim=-1)[torch.arange(len(ep["actions"])), ep["actions"]]
        returns = torch.tensor(ep["returns"], dtype=torch.float32)
        for key, baseline in (("plain", 0.0), ("baselined", torch.tensor(ep["baseline"], dtype=torch.float32))):
            loss = scalar_loss(loss_fn(log_probs, returns, baseline), "the log-probabilities")
            grads = torch.autograd.grad(loss, list(net.parameters()), retain_graph=True, allow_unused=True)
            gradients[key].append([float(v) for g in grads if g is not None for v in g.ravel()])
    return gradients


DRIVERS = {
    "call_update": call_update,
    "call_pg_loss": call_pg_loss,
    "call_returns": call_returns,
    "call_reinforce_loss": call_reinforce_loss,
    "bandit_table_run": bandit_table_run,
    "bandit_network_run": bandit_network_run,
    "chain_reinforce_run": chain_reinforce_run,
    "baseline_gradients": baseline_gradients,
}


# ------------------------------------------------------------------------------------------------ running a case
def driver_function(driver: str):
    """A driver by name: one of ``DRIVERS``, or ``"module:function"`` for another assignment's drivers module."""
    if ":" not in driver:
        return DRIVERS[driver]
    module, name = driver.split(":")
    return getattr(importlib.import_module(module), name)


def run_case(driver: str, functions: list, case: dict) -> dict:
    """Run one driver on one case: ``{"ok": data}`` or ``{"error": {...}}``; student errors never escape."""
    run = driver_function(driver)
    try:
        return {"ok": run(*functions, case)}
    except ContractError as exc:
        return {"error": {"type": "ContractError", "message": str(exc), "where": ""}}
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - anything the student's code raises is data
        return {"error": describe(exc)}


def describe(exc: BaseException) -> dict:
    """Exception type, message and the innermost line of student code (a notebook cell) it came from."""
    library = (sys.prefix, sys.base_prefix, str(Path(__file__).parent))
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if not f.filename.startswith(library)]
    where = f"line {frames[-1].lineno}: {(frames[-1].line or '').strip()}" if frames else ""
    return {"type": type(exc).__name__, "message": str(exc)[:500], "where": where,
            "function": frames[-1].name if frames else ""}


def plain(value):
    """JSON-safe copy: numbers as floats, NaN and infinities as the strings ``float()`` reads back."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, (bool, str)) or value is None:
        return value
    number = float(value)
    return number if math.isfinite(number) else str(number)


def serve(namespace: dict, request: str) -> None:
    """Entry point in the student's kernel: run the request's cases and display the results as one JSON output."""
    from IPython.display import display

    spec = json.loads(request)
    missing = [name for name in spec["functions"] if not callable(namespace.get(name))]
    if missing:
        error = {"type": "NameError", "message": f"function `{missing[0]}` is not defined", "where": "",
                 "function": missing[0]}
        results = [{"error": error} for _ in spec["cases"]]
    else:
        functions = [namespace[name] for name in spec["functions"]]
        torch.set_num_threads(1)
        if spec.get("workers", 1) > 1 and len(spec["cases"]) > 1:
            results = run_forked(spec["driver"], functions, spec["cases"], spec["workers"])
        else:
            results = [run_case(spec["driver"], functions, case) for case in spec["cases"]]
    display({MIME: plain(results)}, raw=True)


def run_forked(driver: str, functions: list, cases: list[dict], workers: int) -> list[dict]:
    """Each case in a forked copy of this process, ``workers`` at a time: the seeds of a behaviour check on several
    cores, one thread each. A case is seeded by itself, so its result is the same as in this process. A copy that
    dies (os._exit, a crash) or prints answers that are not JSON gives an error for its case only."""
    warm_up()
    results: list[dict | None] = [None] * len(cases)
    pending = list(enumerate(cases))
    running: dict[int, tuple[int, int, bytearray]] = {}  # read end -> (index, pid, bytes so far)
    with selectors.DefaultSelector() as selector:
        try:
            while pending or running:
                while pending and len(running) < workers:
                    index, case = pending.pop(0)
                    read, write = os.pipe()
                    pid = os.fork()
                    if pid == 0:  # the copy: run the case, write its JSON, leave without any cleanup of the kernel's
                        os.close(read)
                        try:
                            sys.stdout = sys.stderr = io.StringIO()  # the kernel's output streams are not ours
                            torch.set_num_threads(1)  # a forked torch forgets the parent's setting
                            os.write(write, json.dumps(plain(run_case(driver, functions, case))).encode())
                        finally:
                            os._exit(0)
                    os.close(write)
                    running[read] = (index, pid, bytearray())
                    selector.register(read, selectors.EVENT_READ)
                for key, _ in selector.select():
                    index, pid, data = running[key.fd]
                    chunk = os.read(key.fd, 1 << 16)
                    if chunk:
                        data += chunk
                        continue
                    selector.unregister(key.fd)
                    os.close(key.fd)
                    del running[key.fd]
                    os.waitpid(pid, 0)
                    results[index] = forked_result(bytes(data))
        finally:
            for read, (_, pid, _) in running.items():  # interrupted (time limit): stop the copies still running
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                os.close(read)
    return results


@functools.cache
def warm_up() -> None:
    """Pay torch's first-use costs (lazy imports of autograd and the optimisers, ~2 s) once, in the process that
    forks, instead of once in every copy."""
    net = build_network([1, 3])
    for optimiser in (torch.optim.Adam(net.parameters()), torch.optim.AdamW(net.parameters())):
        optimiser.zero_grad()
        F.softmax(net(torch.zeros(1)), dim=0).log()[0].backward()
        optimiser.step()


def forked_result(data: bytes) -> dict:
    try:
        result = json.loads(data)
        if isinstance(result, dict) and ("ok" in result or "error" in result):
            return result
    except ValueError:
        pass
    return {"error": {"type": "ProcessExit", "message": "the Python process running this seed stopped before it "
                      "finished (os._exit, sys.exit in a thread, a crash or too much memory?)", "where": ""}}
