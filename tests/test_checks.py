"""Logic that needs no kernel: sequential stopping of convergence checks cannot change a verdict; the drivers' optimiser
is torch.optim's."""

import itertools

import pytest


def answers(metrics):
    return [{"ok": {"probs": [[m, 0.0, 0.0]], "rewards": [1.0]}} for m in metrics]


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("outcomes", list(itertools.product([0.99, 0.2], repeat=5)))
def test_stopping_early_gives_the_verdict_of_all_seeds(assignment, outcomes, workers):
    """For every pass/fail pattern of 5 seeds, stopping once settled, one seed at a time or two in parallel, gives
    the same verdict as running all five, so the false-fail rate measured by `calibrate` (every seed) still holds."""
    check = assignment.check("bandit_table_learns")
    run = []
    for batch in check.batches(list(outcomes), workers):
        run += batch
        if check.settled(answers(run)):
            break
    full = check.judge([{}] * 5, answers(outcomes), reference={})
    early = check.judge([{}] * len(run), answers(run), reference={})
    assert early.passed == full.passed
    assert len(run) < 5 or not check.settled(answers(outcomes[:4]))


def test_reference_like_runs_stop_after_min_passing(assignment):
    check = assignment.check("chain_reinforce_learns")
    assert not check.settled([{"ok": {"episode_returns": [0.87] * 50}}] * 3)
    assert check.settled([{"ok": {"episode_returns": [0.87] * 50}}] * 4)
    assert check.settled([{"ok": {"episode_returns": [-5.0] * 50}}] * 2)


@pytest.mark.parametrize("decoupled", [False, True], ids=["Adam", "AdamW"])
def test_the_drivers_adam_is_torch_optims_to_the_last_bit(decoupled):
    """gradekit.drivers.Adam (what the drivers train with) against torch.optim.Adam / AdamW with their defaults: the
    same parameters after every one of 300 steps of a policy-gradient-like loss, a layer that gets no gradient for
    its first 100 steps included (torch.optim leaves it, and its state, alone until then)."""
    import torch

    from gradekit.drivers import Adam, build_network

    torch.manual_seed(0)
    ours, theirs = build_network([1, 16, 3]), build_network([1, 16, 3])
    theirs.load_state_dict(ours.state_dict())
    optimiser = (torch.optim.AdamW if decoupled else torch.optim.Adam)(theirs.parameters(), lr=0.01)
    adam = Adam(ours.parameters(), lr=0.01, decoupled=decoupled)
    states = torch.randn(300, 1)
    for step in range(300):
        losses = []
        for net in (ours, theirs):
            hidden = net[0](states[step])
            if step < 100:  # the last layer's bias: no gradient yet
                logits = hidden.relu() @ net[2].weight.T
            else:
                logits = net[2](hidden.relu())
            losses.append(-torch.log_softmax(logits, dim=-1)[step % 3] * (1 + step % 5))
        adam.update(losses[0])
        optimiser.zero_grad()
        losses[1].backward()
        optimiser.step()
        assert all(torch.equal(a, b) for a, b in zip(ours.parameters(), theirs.parameters())), step


def test_returns_without_variance_are_named_not_the_baseline(assignment):
    """A run whose returns G_t are all the same (a discounted_returns that returns zeros) has no variance for a baseline
    to lower: the ratio is +∞ and the hint says so, rather than that the baseline did not take enough out."""
    check = assignment.check("chain_baseline_learns")
    run = {"episode_returns": [0.0] * 60, "losses": [0.0] * 60}
    flat = run | {"weights": {"plain": {"n": 40, "sum": 0.0, "sumsq": 0.0}, "baselined": {"n": 40, "sum": -2.0,
                                                                                         "sumsq": 1.0}}}
    weak = run | {"weights": {"plain": {"n": 40, "sum": 40.0, "sumsq": 80.0}, "baselined": {"n": 40, "sum": 20.0,
                                                                                          "sumsq": 40.0}}}
    hints = {}
    for name, data in (("flat", flat), ("weak", weak)):
        outcomes = check.outcomes([{"ok": data}] * 2)
        assert not any(o["passed"] for o in outcomes)
        hints[name] = check.hint(outcomes)
    assert "no variance at all" in hints["flat"] and "`discounted_returns`" in hints["flat"]
    assert "did not take enough" in hints["weak"] and "no variance" not in hints["weak"]


def step_by_step_chain_run(returns_fn, loss_fn, baseline_fn, case: dict) -> dict:
    """The lecture's chain loop as the notebook writes it: the network's forward pass at every step."""
    import torch
    import torch.nn.functional as F

    from assignments.week03_policy_gradients.envs import ChainEnv
    from gradekit.drivers import Adam, build_network, seed_everything

    seed_everything(case["seed"])
    env = ChainEnv(max_steps=case["max_steps"])
    net = build_network([1, 3])
    optimiser = Adam(net.parameters(), lr=case["lr"], decoupled=True)
    table, episode_returns, losses, ratio = {}, [], [], {"plain": 0.0, "baselined": 0.0}
    for episode in range(case["episodes"]):
        state, _ = env.reset(seed=case["seed"] * 100_000 + episode)
        states, log_probs, rewards, done = [], [], [], False
        while not done:
            probs = F.softmax(net(torch.tensor([float(state)])), dim=-1)
            action = int(torch.multinomial(probs.detach(), 1))
            states.append(state)
            log_probs.append(torch.log(probs[action]))
            state, reward, terminated, truncated, _ = env.step(action)
            rewards.append(reward)
            done = terminated or truncated
        returns = torch.tensor(returns_fn(rewards, case["gamma"]), dtype=torch.float32)
        if baseline_fn is None:
            loss = loss_fn(torch.stack(log_probs), returns)
        else:
            baseline = torch.as_tensor(baseline_fn(states, returns.clone(), table, case["baseline_step"]),
                                       dtype=torch.float64)
            loss = loss_fn(torch.stack(log_probs), returns, baseline.float())
            ratio["plain"] += float((returns.double() ** 2).sum())
            ratio["baselined"] += float(((returns.double() - baseline) ** 2).sum())
        optimiser.update(loss)
        episode_returns.append(float(sum(rewards)))
        losses.append(float(loss.detach()))
    return {"episode_returns": episode_returns, "losses": losses, "sumsq": ratio}


@pytest.mark.parametrize("loss", ["reference", "sign_flipped"])
@pytest.mark.parametrize("driver", ["chain_reinforce_run", "chain_baseline_run"])
def test_the_chain_loop_draws_the_lectures_episodes(assignment, driver, loss):
    """The chain's driver computes the policy once an episode (it is updated once an episode), not at every step as the
    lecture's loop does: the same actions drawn, so the same episodes, returns and baseline weights, and the same losses
    but for float rounding in the backward pass (a sum over steps taken in another order). A policy that wanders (the
    sign flipped: 100-step episodes) is where a step-by-step loop spent its time."""
    from assignments.week03_policy_gradients import drivers
    from autograder.notebook import reference_functions

    reference = reference_functions(assignment)
    returns_fn, baseline_fn = reference["discounted_returns"], reference["state_value_baseline"]
    loss_fn = reference["reinforce_loss"]
    if loss == "sign_flipped":
        loss_fn = lambda *args: -reference["reinforce_loss"](*args)  # noqa: E731
    check = assignment.check(driver.replace("_run", "_learns"))
    case = check.cases(None)[0] | {"episodes": 150}
    functions = (returns_fn, loss_fn) if driver == "chain_reinforce_run" else (returns_fn, loss_fn, baseline_fn)
    ours = getattr(drivers, driver)(*functions, dict(case))
    lecture = step_by_step_chain_run(returns_fn, loss_fn, None if len(functions) == 2 else baseline_fn, dict(case))
    assert ours["episode_returns"] == lecture["episode_returns"]
    assert ours["losses"] == pytest.approx(lecture["losses"], rel=1e-4, abs=1e-6)
    if "weights" in ours:
        for key in ("plain", "baselined"):
            assert ours["weights"][key]["sumsq"] == pytest.approx(lecture["sumsq"][key], rel=1e-9)
    if loss == "sign_flipped":
        assert sum(len(str(r)) for r in lecture["episode_returns"]) and min(lecture["episode_returns"]) < -4
