"""Weights the probabilities, not the log-probabilities."""
FAILS = ["reinforce_batch_loss_exact"]
HINT = "probabilities instead of log-probabilities"


def reinforce_batch_loss(log_probs, returns):
    advantages = (returns - returns.mean()) / (returns.std() + 1e-8)
    return -(log_probs.exp() * advantages).mean()
