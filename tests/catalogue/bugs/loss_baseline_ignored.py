"""Accepts a baseline and never uses it."""
FAILS = ["reinforce_loss_exact", "baseline_reduces_variance"]
HINT = "baseline is ignored"


def reinforce_loss(log_probs, returns, baseline=0.0):
    return -(log_probs * returns).sum()
