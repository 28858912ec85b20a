"""Drivers of Week 3: run one graded function on given inputs and return plain data.

Every driver runs twice for a check: in the student's kernel with the student's function, and in the grader's process
with the reference. Only the JSON-able data a driver returns crosses the process boundary; verdicts are decided in
the grader (``checks.py``). Nothing here knows the reference solution or a threshold, so a student who patches this
module, numpy or torch can only change the numbers the grader receives, never the rule that judges them.

torch and the environments (Gymnasium) are imported by the drivers that use them: the grader imports this module with
the checks, and needs them only once a driver runs.
"""

from __future__ import annotations

import numpy as np

from gradekit.drivers import Adam, ContractError, as_vector, build_network, sample, scalar_loss, seed_everything


IN_PLACE = {"policy_gradient_update": (0,), "state_value_baseline": (2,)}
"""The arguments a graded function may update in place, by position (the logits; the baseline's table): the grader
writes their state after a call back into the loop's objects. No other argument's changes reach the loop."""


def preload() -> None:
    """What the drivers import when they run: the kernel imports it once before it forks a copy per seed."""
    import torch  # noqa: F401

    from . import envs  # noqa: F401 (Gymnasium)


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
    import torch
    import torch.nn.functional as F

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
    """``reinforce_loss`` on given log-probabilities; returns its gradient with respect to them.

    With ``case["advantages_grad"]``, the returns (and a per-step baseline) come as tensors that require grad, as
    if computed by a value network: the gradient with respect to them (``advantage_grad``) must then be zero."""
    import torch

    track = bool(case.get("advantages_grad"))
    log_probs = torch.tensor(case["log_probs"], dtype=torch.float32, requires_grad=True)
    returns = torch.tensor(case["returns"], dtype=torch.float32, requires_grad=track)
    baseline = case.get("baseline", "default")
    if isinstance(baseline, list):
        baseline = torch.tensor(baseline, dtype=torch.float32, requires_grad=track)
    loss = fn(log_probs, returns) if isinstance(baseline, str) else fn(log_probs, returns, baseline)
    loss = scalar_loss(loss, "the log-probabilities")
    inputs = [log_probs] + [t for t in (returns, baseline) if isinstance(t, torch.Tensor) and t.requires_grad]
    grads = torch.autograd.grad(loss, inputs, allow_unused=True)
    grads = [torch.zeros_like(x) if g is None else g for g, x in zip(grads, inputs)]
    answer = {"loss": float(loss.detach()), "grad": grads[0].tolist()}
    if track:
        answer["advantage_grad"] = [v for g in grads[1:] for v in g.ravel().tolist()]
    return answer


def table_key(key) -> str:
    """A key of the baseline's table as text (JSON keys are text): ``-1``, ``0``, ``1`` for the chain's states."""
    try:
        if float(key) == int(key):
            return str(int(key))
    except (TypeError, ValueError):
        pass
    return str(key)


def read_table(table, what: str) -> dict[str, float]:
    """The table as {key as text: value as float}; any number type (float, numpy, 0-d tensor) is fine."""
    import torch

    if not isinstance(table, dict):
        raise ContractError(f"{what} must stay a dict (state -> value), got {type(table).__name__}")
    out = {}
    for key, value in table.items():
        try:
            out[table_key(key)] = float(value.detach() if isinstance(value, torch.Tensor) else value)
        except (TypeError, ValueError) as exc:
            raise ContractError(f"{what} must map states to numbers; state {key!r} maps to "
                                f"{type(value).__name__}") from exc
    return out


def call_state_value_baseline(fn, case: dict) -> dict:
    """``state_value_baseline`` on one episode and a table from earlier episodes; returns the baseline and the table
    after the call (updated in place). ``returns`` may come as a tensor that requires grad (``returns_grad``): the
    baseline must then carry no gradient."""
    import torch

    table = {int(s): float(v) for s, v in case["table"]}
    returns = torch.tensor(case["returns"], dtype=torch.float32, requires_grad=bool(case.get("returns_grad")))
    baseline = fn(list(case["states"]), returns, table, case["step"])
    carries_grad = isinstance(baseline, torch.Tensor) and baseline.requires_grad
    dtype = f"{type(baseline).__name__} of dtype {baseline.dtype}" if hasattr(baseline, "dtype") else \
        type(baseline).__name__
    value = as_vector(baseline, "the baseline", len(case["states"]))
    after = read_table(table, "the table")
    return {"baseline": value.ravel().tolist(), "table": sorted(after.items()), "carries_grad": carries_grad,
            "dtype": dtype}


# --------------------------------------------------------------------------------------------- behaviour drivers
def softmax(x: np.ndarray) -> np.ndarray:
    z = np.exp(x - x.max())
    return z / z.sum()


def bandit_table_run(fn, case: dict) -> dict:
    """The lecture's lookup-table bandit: fresh logits ``rand(3, 1)``, ``steps`` updates.

    The logits are re-centred (maximum 0) after every step before the lecture ``Policy``'s clip at ±100: softmax is
    shift-invariant, so an update that adds the same constant to all logits (correct under the contract) gives the
    same policy, and never drifts into the clip. An update in place or returned, of any float dtype, is the same.

    Returns the policy after every step (``probs``, one [L, C, R] triple a step) and the reward of every step."""
    from .envs import BanditEnv

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
        logits = as_vector(before if returned is None else returned, "the returned logits", 3)
        if not np.all(np.isfinite(logits)):
            raise ContractError("the returned logits are not all finite numbers")
        logits = np.clip(logits - logits.max(), -100, 100)
        if logits.shape != (3, 1):
            raise ContractError(f"returned logits of shape {logits.shape} for logits of shape (3, 1)")
        probs.append(softmax(logits).ravel().tolist())
        rewards.append(float(reward))
    return {"probs": probs, "rewards": rewards}


def bandit_network_run(fn, case: dict) -> dict:
    """The lecture's network bandit: ``Linear(1, 3)`` + softmax, Adam, one ``pg_loss`` step per time step."""
    import torch
    import torch.nn.functional as F

    from .envs import BanditEnv

    seed_everything(case["seed"])
    env = BanditEnv(max_steps=case["steps"])
    state, _ = env.reset(seed=case["seed"])
    net = build_network([1, 3])
    optimiser = Adam(net.parameters(), lr=case["lr"])
    probs, rewards = [], []
    for step in range(case["steps"]):
        policy = F.softmax(net(torch.tensor([float(state)])), dim=0)
        action = sample(policy.detach(), "the policy's probabilities", step)
        state, reward, _, _, _ = env.step(action)
        optimiser.update(scalar_loss(fn(policy, action, reward), "the network's parameters"))
        with torch.no_grad():
            probs.append(F.softmax(net(torch.tensor([float(state)])), dim=0).tolist())
        rewards.append(float(reward))
    return {"probs": probs, "rewards": rewards}


def chain_reinforce_run(returns_fn, loss_fn, case: dict) -> dict:
    """REINFORCE on the chain as in the lecture (one update per episode, AdamW), with bounded episodes and no baseline.

    Returns the undiscounted return and the loss of every episode."""
    return chain_run(returns_fn, loss_fn, None, case)


def chain_baseline_run(returns_fn, loss_fn, baseline_fn, case: dict) -> dict:
    """The same REINFORCE, with the student's state-value baseline. The run also returns the count, sum and sum of
    squares of the weights of the log-probabilities over all its steps (``weights``): the advantages G_t − b_t
    (``baselined``) and the returns G_t (``plain``), from which the grader computes their variances."""
    return chain_run(returns_fn, loss_fn, baseline_fn, case)


def chain_run(returns_fn, loss_fn, baseline_fn, case: dict) -> dict:
    import torch
    import torch.nn.functional as F

    from .envs import ChainEnv

    seed_everything(case["seed"])
    env = ChainEnv(max_steps=case["max_steps"])
    net = build_network([1, 3])
    optimiser = Adam(net.parameters(), lr=case["lr"], decoupled=True)  # AdamW, as in the lecture
    table: dict = {}
    episode_returns, losses = [], []
    weights = {key: {"n": 0, "sum": 0.0, "sumsq": 0.0} for key in ("plain", "baselined")}
    positions = torch.tensor([[-1.0], [0.0], [1.0]])  # the network's input in each state (row = position + 1)
    for episode in range(case["episodes"]):
        state, _ = env.reset(seed=case["seed"] * 100_000 + episode)
        # One update per episode: within an episode the policy is fixed, so its probabilities in the three states are
        # computed once (the same values, the same actions drawn), not once a step: a policy that wanders for 100
        # steps cost 3-4x more (tests/test_checks.py: the same returns as the step-by-step loop).
        policy = F.softmax(net(positions), dim=-1)
        rows = policy.detach().unbind()
        states, actions, rewards, done = [], [], [], False
        while not done:
            action = sample(rows[state + 1], "the policy's probabilities", episode)
            states.append(int(state))
            actions.append(action)
            state, reward, terminated, truncated, _ = env.step(action)
            rewards.append(reward)
            done = terminated or truncated
        log_probs = torch.log(policy[torch.tensor(states) + 1, torch.tensor(actions)])
        returns = torch.tensor(as_vector(returns_fn(rewards, case["gamma"]), "the returns", len(rewards)),
                               dtype=torch.float32).reshape(-1)
        if baseline_fn is None:
            loss = scalar_loss(loss_fn(log_probs, returns), "the log-probabilities")
        else:
            baseline = as_vector(baseline_fn(list(states), returns.clone(), table, case["baseline_step"]),
                                 "the baseline", len(states))
            read_table(table, "the table")
            loss = scalar_loss(loss_fn(log_probs, returns, torch.tensor(baseline, dtype=torch.float32)),
                               "the log-probabilities")
            g = returns.double().numpy()
            for key, weight in (("plain", g), ("baselined", g - baseline)):
                weights[key]["n"] += len(weight)
                weights[key]["sum"] += float(weight.sum())
                weights[key]["sumsq"] += float((weight**2).sum())
        optimiser.update(loss)
        episode_returns.append(float(sum(rewards)))
        losses.append(float(loss.detach()))
    run = {"episode_returns": episode_returns, "losses": losses}
    if baseline_fn is None:
        return run
    return run | {"weights": weights}


def sample_chain_episodes(params: list, n: int, seed: int, max_steps: int) -> list[dict]:
    """``n`` episodes of a fixed chain policy: states, actions and rewards (the grader computes returns from them)."""
    import torch
    import torch.nn.functional as F

    from .envs import ChainEnv

    seed_everything(seed)
    net = build_network([1, 3], params)
    env = ChainEnv(max_steps=max_steps)
    episodes = []
    with torch.no_grad():
        states_of = range(env.observation_space.start, env.observation_space.start + env.observation_space.n)
        policy = {s: F.softmax(net(torch.tensor([float(s)])), dim=-1) for s in states_of}  # fixed: once per state
        for i in range(n):
            state, _ = env.reset(seed=seed * 100_000 + i)
            states, actions, rewards, done = [], [], [], False
            while not done:
                action = int(torch.multinomial(policy[state], 1))
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
    import torch
    import torch.nn.functional as F

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
