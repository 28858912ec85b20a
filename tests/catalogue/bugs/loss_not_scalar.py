"""Forgets to sum over time steps."""
FAILS = ["reinforce_loss_exact", "chain_reinforce_learns"]


def reinforce_loss(log_probs, returns, baseline=0.0):
    return -log_probs * (returns - baseline)
