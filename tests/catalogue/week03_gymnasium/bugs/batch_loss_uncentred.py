"""Scales the returns by their standard deviation but never subtracts their mean."""
FAILS = ["reinforce_batch_loss_exact"]
HINT = "not centred"


def reinforce_batch_loss(log_probs, returns):
    return -(log_probs * returns / (returns.std() + 1e-8)).mean()
