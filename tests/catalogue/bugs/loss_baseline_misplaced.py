"""Subtracts the baseline from the loss, not from the returns: a constant with no effect on the gradient."""
FAILS = ["reinforce_loss_exact", "baseline_reduces_variance"]


def reinforce_loss(log_probs, returns, baseline=0.0):
    return -(log_probs * returns).sum() - torch.as_tensor(baseline).sum()
