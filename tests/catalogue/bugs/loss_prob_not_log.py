"""The lecture's loss: probabilities weighted by the returns (convergence alone does not notice)."""
FAILS = ["reinforce_loss_exact"]
HINT = "probabilities instead of log-probabilities"


def reinforce_loss(log_probs, returns, baseline=0.0):
    return -(torch.exp(log_probs) * (returns - baseline)).sum()
