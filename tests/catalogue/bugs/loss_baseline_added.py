"""Adds the baseline instead of subtracting it."""
FAILS = ["reinforce_loss_exact", "baseline_reduces_variance"]
HINT = "added to the returns"


def reinforce_loss(log_probs, returns, baseline=0.0):
    return -(log_probs * (returns + baseline)).sum()
