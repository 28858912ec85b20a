"""Squares the weighted sum of log-probabilities instead of negating it."""
FAILS = ["reinforce_loss_exact"]


def reinforce_loss(log_probs, returns, baseline=0.0):
    return ((log_probs * (returns - baseline).detach()).sum()) ** 2
