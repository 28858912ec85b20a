"""Lets gradient flow through the returns and the baseline (fine while they are plain numbers, wrong once a value
network computes them)."""
FAILS = ["reinforce_loss_exact"]
HINT = "gradient flows through the advantages"


def reinforce_loss(log_probs, returns, baseline=0.0):
    return -(log_probs * (returns - baseline)).sum()
