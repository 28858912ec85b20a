"""Drivers of the optional Fetch Slide part (assignment ``week03_fetch_slide``), and the instructor code they share.

The student writes one function, ``imitation_loss(mean, log_std, actions)``: the negative log-likelihood of
demonstrated actions under a diagonal Gaussian policy. ``call_imitation_loss`` checks it exactly, through its gradient
with respect to a policy's parameters. ``clone_and_evaluate`` checks it by behaviour: clone the scripted controller
below from its demonstrations with the student's loss, then count how often the clone slides the puck onto the goal
of ``FetchSlide-v4``, against how often the controller does on the same episodes.

The controller, the policy's inputs and the policy class (``policies.py``) are instructor code, not solutions: the
notebook shows the same ones in locked cells, and ``tests/test_fetch_part.py`` checks that the two controllers act
identically. Verdicts are decided in the grader (``checks_fetch.py``), as for the lecture's part. torch and the
environment are imported by the functions that use them: the grader imports this module with the checks.
"""

from __future__ import annotations

import contextlib
import io
from typing import TYPE_CHECKING

import numpy as np

from gradekit.drivers import ContractError, build_network, scalar_loss, seed_everything

if TYPE_CHECKING:
    from .policies import GaussianPolicy

ENV_ID = "FetchSlide-v4"
STEPS = 50  # FetchSlide-v4's time limit: every episode has 50 steps
NOT_CONNECTED = ("the loss is not connected to the policy's mean and log_std (no gradient reaches them: was it "
                 "converted to a number and back into a tensor?)")


def make_env(**kwargs):
    """``FetchSlide-v4`` (``reward_type="dense"`` for −distance rewards). gymnasium_robotics prints a notice about
    other (Adroit) environments to stderr when imported; it is kept out of the output."""
    import gymnasium

    with contextlib.redirect_stderr(io.StringIO()):
        import gymnasium_robotics
    gymnasium.register_envs(gymnasium_robotics)
    return gymnasium.make(ENV_ID, **kwargs)


# ------------------------------------------------------------------------------- the scripted controller (locked)
TABLE_DECELERATION = 0.1 * 9.81 * 0.04**2  # friction 0.1 × g × (one step of 0.04 s)²: speed lost per step, m/step
LAUNCH_ANGLES = np.array([0, 0.05, 0.1, 0.15, 0.3, 0.45, 0.68, 0.8, 1.0, 1.3, 1.6])  # puck's direction after a push
PUSH_ANGLES = np.array([0, 0.1, 0.22, 0.4, 0.5, 0.6, 0.7, 0.8, 0.95, 1.1, 1.3])  # the push direction that gives it


def launch_velocity(delta: np.ndarray) -> np.ndarray:
    """The puck velocity (m per step) that makes it slide by ``delta`` (x, y) and stop there.

    The table's friction acts like a pyramid (MuJoCo's default cone): it slows only the faster of the two velocity
    components until both are equal, then both at half the rate. A launch (u, w), u ≥ w, then slides
    X = (u² + w²) / 2a and Y = u·w / a, which this inverts."""
    x, y = np.abs(delta)
    big, small = max(x, y), min(x, y)
    s1 = np.sqrt(2 * TABLE_DECELERATION * (big + small))
    s2 = np.sqrt(2 * TABLE_DECELERATION * (big - small))
    u, w = (s1 + s2) / 2, (s1 - s2) / 2
    return (np.array([u, w]) if x >= y else np.array([w, u])) * np.sign(delta)


def push_direction(velocity: np.ndarray) -> np.ndarray:
    """The unit direction to push in for the puck to leave with ``velocity``'s direction. The closed gripper's front is
    flat, so a push sends the puck closer to the x axis than the push itself; the angles were measured."""
    angle = np.arctan2(velocity[1], velocity[0])
    if abs(angle) < LAUNCH_ANGLES[-1]:
        angle = np.sign(angle) * np.interp(abs(angle), LAUNCH_ANGLES, PUSH_ANGLES)
    return np.array([np.cos(angle), np.sin(angle)])


def scripted_controller(observation: np.ndarray, goal: np.ndarray) -> np.ndarray:
    """A hand-made policy for FetchSlide: get behind the puck, strike it toward the goal at the calibrated speed.

    Observation: gripper position [0:3], puck position [3:6], the puck's velocity relative to the gripper [14:17] and
    the gripper's velocity [20:23] (both in m per step). Returns the action (dx, dy, dz, gripper) in [-1, 1]; a
    displacement of 1 moves the gripper's target by 5 cm."""
    grip, puck = observation[0:3], observation[3:6]
    velocity = observation[14:16] + observation[20:22]  # the puck's own velocity
    need = launch_velocity(goal[:2] - puck[:2])
    speed = float(np.linalg.norm(need))
    action = np.zeros(4)
    moving = np.linalg.norm(velocity) > 0.001
    if moving and velocity @ need >= speed**2:
        return action  # already as fast as it needs to be: let it slide
    direction = push_direction(need)
    offset = grip[:2] - puck[:2]
    along = offset @ direction
    across = offset - along * direction
    if along < -0.02 and np.linalg.norm(across) < 0.015 and abs(grip[2] - puck[2]) < 0.012:  # behind it: strike
        action[:2] = np.clip(1.2 * speed / 0.05, 0.2, 1.0) * direction - across / 0.05
        action[2] = 10 * (puck[2] - grip[2])
        return np.clip(action, -1, 1)
    if moving:
        return action  # wait until the puck stops
    behind = puck[:2] - 0.1 * direction  # a 10 cm run-up, so that the gripper reaches its speed before the hit
    high = puck[2] + 0.05
    if np.linalg.norm(grip[:2] - behind) < 0.01:
        target = np.r_[behind, puck[2]]  # down to the puck's height
    elif grip[2] > high - 0.01:
        target = np.r_[behind, high]  # over the puck to the run-up point
    else:
        target = np.r_[grip[:2], high]  # up first
    action[:3] = 10 * (target - grip)
    return action / max(1.0, float(np.linalg.norm(action[:3])))


# ---------------------------------------------------------- the policy's inputs and actions (locked in the notebook)
def policy_input(observation: np.ndarray, goal: np.ndarray) -> np.ndarray:
    """What the cloned policy sees (9 numbers): the gripper relative to the puck, the puck's velocity, the way to the
    goal and the launch velocity that the table's friction requires for it."""
    grip, puck = observation[0:3], observation[3:6]
    delta = goal[:2] - puck[:2]
    return np.r_[grip - puck, observation[14:16] + observation[20:22], delta, 20 * launch_velocity(delta)].astype(
        np.float32)


def env_action(displacement) -> np.ndarray:
    """The environment's action for a policy output: clipped displacements, gripper command 0 (it is blocked)."""
    values = np.nan_to_num(np.asarray(displacement, dtype=np.float64), nan=0.0, posinf=1.0, neginf=-1.0)
    return np.clip(np.r_[values, 0.0], -1, 1).astype(np.float32)


# ------------------------------------------------------------------------------- demonstrations and evaluation
def controller_episode(env, seed: int) -> tuple[list, list, bool]:
    """One episode of the scripted controller: the policy inputs seen, its displacements, and whether it succeeded."""
    obs, _ = env.reset(seed=seed)
    inputs, actions, info = [], [], {}
    for _ in range(STEPS):
        action = scripted_controller(obs["observation"], obs["desired_goal"])
        inputs.append(policy_input(obs["observation"], obs["desired_goal"]))
        actions.append(action[:3].astype(np.float32))
        obs, _, _, _, info = env.step(action.astype(np.float32))
    return inputs, actions, bool(info["is_success"])


def controller_rollouts(first_seed: int, episodes: int) -> tuple[np.ndarray, np.ndarray, tuple[bool, ...]]:
    """The controller on episodes ``first_seed + i``: stacked inputs and displacements, success of each episode.
    Deterministic, so it is computed once per process (``rollouts``) for every grading seed of a check."""
    if (first_seed, episodes) not in rollouts:
        rollouts[first_seed, episodes] = collect_rollouts(first_seed, episodes)
    return rollouts[first_seed, episodes]


rollouts: dict[tuple[int, int], tuple] = {}  # (first seed, episodes) -> controller_rollouts' answer, in this process


def collect_rollouts(first_seed: int, episodes: int) -> tuple[np.ndarray, np.ndarray, tuple[bool, ...]]:
    env = make_env()
    inputs, actions, successes = [], [], []
    for i in range(episodes):
        x, a, success = controller_episode(env, first_seed + i)
        inputs += x
        actions += a
        successes.append(success)
    env.close()
    return np.asarray(inputs), np.asarray(actions), tuple(successes)


def prepare(driver, cases: list[dict], holds) -> None:
    """Run by the grader before it forks the workers of a check's cases (``autograder/trusted.py``): the controller's
    episodes that ``clone_and_evaluate`` clones and compares with are the same for every seed and every student, so
    they are collected once per grading process (17 CPU-s here), not once in every forked worker and feedback run;
    and only once the student's loss has passed ``check_contract`` (``holds``): a blank or broken loss, whose cases
    stop at that check, costs no episodes."""
    if driver is not clone_and_evaluate:
        return
    wanted = {(c["demo_seed"], c["demos"]) for c in cases} | {(c["eval_seed"], c["eval_episodes"]) for c in cases}
    if wanted <= rollouts.keys() or not holds(check_contract):
        return
    for first_seed, episodes in sorted(wanted):
        controller_rollouts(first_seed, episodes)


def policy_successes(policy: GaussianPolicy, first_seed: int, episodes: int) -> list[bool]:
    """Whether the policy's mean action (no sampling) slides the puck onto the goal, on episodes ``first_seed + i``."""
    import torch

    env = make_env()
    successes = []
    with torch.no_grad():
        for i in range(episodes):
            obs, _ = env.reset(seed=first_seed + i)
            info = {}
            for _ in range(STEPS):
                mean, _ = policy(torch.from_numpy(policy_input(obs["observation"], obs["desired_goal"])))
                obs, _, _, _, info = env.step(env_action(mean.numpy()))
            successes.append(bool(info["is_success"]))
    env.close()
    return successes


def behaviour_cloning(loss_fn, inputs: np.ndarray, actions: np.ndarray, epochs: int, batch_size: int, lr: float,
                      hidden: int) -> tuple[GaussianPolicy, list[float]]:
    """Fit a GaussianPolicy to (input, action) pairs by minimising ``loss_fn`` with Adam on shuffled minibatches, the
    learning rate falling linearly to 0 (the last steps settle the policy instead of jittering it: at a constant
    1e-3, three seeds cloned to 16 %, 19 % and 65 % of the controller's successes; with the decay, six to 32–42 %).
    Returns the policy and the mean loss of every epoch. Seed torch before calling: it draws the initial weights and
    the shuffles."""
    import torch

    from .policies import GaussianPolicy

    policy = GaussianPolicy(inputs.mean(axis=0), inputs.std(axis=0) + 1e-3, hidden, actions.shape[1])
    optimiser = torch.optim.Adam(policy.parameters(), lr=lr)
    steps = epochs * -(-len(inputs) // batch_size)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda step: 1 - step / steps)
    x, a = torch.as_tensor(inputs, dtype=torch.float32), torch.as_tensor(actions, dtype=torch.float32)
    losses = []
    for _ in range(epochs):
        order = torch.randperm(len(x))
        total = 0.0
        for start in range(0, len(x), batch_size):
            batch = order[start:start + batch_size]
            mean, log_std = policy(x[batch])
            loss = scalar_loss(loss_fn(mean, log_std, a[batch]), "the policy's mean and log_std")
            if not torch.isfinite(loss):
                raise ContractError(f"the loss became {float(loss)} after {len(losses)} epochs of cloning (does "
                                    "minimising it make the demonstrated actions more likely?)")
            optimiser.zero_grad()
            loss.backward()
            if all(p.grad is None for p in policy.parameters()):
                raise ContractError(NOT_CONNECTED)
            optimiser.step()
            schedule.step()
            total += float(loss.detach()) * len(batch)
        losses.append(total / len(x))
    return policy, losses


# ------------------------------------------------------------------------------- drivers
def check_contract(fn) -> None:
    """The loss on a tiny batch, before the demonstrations are collected: a loss that breaks the contract (not a
    tensor, not a scalar, no gradient) fails in a moment instead of after a minute of episodes."""
    import torch

    mean, log_std = torch.zeros(2, 3, requires_grad=True), torch.zeros(3, requires_grad=True)
    loss = scalar_loss(fn(mean, log_std, torch.ones(2, 3)), "the policy's mean and log_std")
    if all(g is None for g in torch.autograd.grad(loss, [mean, log_std], allow_unused=True)):
        raise ContractError(NOT_CONNECTED)


def call_imitation_loss(fn, case: dict) -> dict:
    """``imitation_loss`` on a batch of a fixed policy's means and log σ's and given actions; returns the gradient of
    the loss with respect to the policy's parameters (the mean network's, then log σ)."""
    import torch

    net = build_network(case["sizes"], case["params"])
    log_std = torch.tensor(case["log_std"], dtype=torch.float32, requires_grad=True)
    mean = net(torch.tensor(case["inputs"], dtype=torch.float32))
    given = log_std.expand_as(mean) if case["per_row"] else log_std
    loss = fn(mean, given, torch.tensor(case["actions"], dtype=torch.float32))
    loss = scalar_loss(loss, "the policy's mean and log_std")
    parameters = [*net.parameters(), log_std]
    grads = torch.autograd.grad(loss, parameters, allow_unused=True)
    if all(g is None for g in grads):
        raise ContractError(NOT_CONNECTED)
    flat = [g.ravel() if g is not None else torch.zeros(p.numel()) for g, p in zip(grads, parameters)]
    if not all(torch.isfinite(g).all() for g in flat):
        raise ContractError("the gradient of the loss is not finite (NaN or infinity)")
    return {"grad": torch.cat(flat).tolist(), "grad_log_std": flat[-1].tolist(), "loss": float(loss.detach())}


def clone_and_evaluate(fn, case: dict) -> dict:
    """Behaviour cloning of the controller with the student's loss, then both on the same evaluation episodes.

    The demonstrations (``demos`` episodes) and the evaluation episodes are fixed by the case; the seed draws the
    policy's initial weights and the minibatches. ``relative_success`` is the running ratio of the clone's successes
    to the controller's over the evaluation episodes (its last value is the metric). Torch runs on one thread, as in
    the student's kernel, also where the grader runs the reference for the feedback page: two threads made cloning
    2.5 times slower on a busy 2-core machine."""
    import torch

    torch.set_num_threads(1)
    check_contract(fn)
    inputs, actions, _ = controller_rollouts(case["demo_seed"], case["demos"])
    _, _, expert = controller_rollouts(case["eval_seed"], case["eval_episodes"])
    seed_everything(case["seed"])
    policy, losses = behaviour_cloning(fn, inputs, actions, case["epochs"], case["batch_size"], case["lr"],
                                       case["hidden"])
    clone = policy_successes(policy, case["eval_seed"], case["eval_episodes"])
    relative = np.cumsum(clone) / np.maximum(1, np.cumsum(expert))
    return {"relative_success": relative.tolist(), "successes": [float(s) for s in clone],
            "controller_successes": [float(s) for s in expert], "losses": losses}
