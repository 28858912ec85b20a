"""Verdict logic that needs no kernel: sequential stopping of convergence checks cannot change a verdict."""

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
