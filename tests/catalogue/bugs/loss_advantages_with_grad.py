"""Lets gradient flow through the returns and the baseline (fine while they are plain numbers, wrong once a value
network computes them)."""
FAILS = []
SCORES = {'reinforce_loss_exact': 2.0}  # a clause of its contract lost, not the function
HINT = "gradient flows through the advantages"


def reinforce_loss(log_probs, returns, baseline=0.0):
    return -(log_probs * (returns - baseline)).sum()
