"""Gymnasium's tutorial: the mean log-probability times the returns (issue #1336)."""
FAILS = ["reinforce_batch_loss_exact"]
HINT = "issue #1336"


def reinforce_batch_loss(log_probs, returns):
    return -torch.sum(log_probs.mean() * returns)
