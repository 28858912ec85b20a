"""Divides by the standard deviation with no epsilon: 0/0 when every return of the batch is the same."""
FAILS = ["reinforce_batch_loss_exact"]
HINT = "epsilon"


def reinforce_batch_loss(log_probs, returns):
    return -(log_probs * (returns - returns.mean()) / returns.std()).mean()
