"""Gradient ascent on the loss: learns to avoid the goal."""
FAILS = ["reinforce_loss_exact", "chain_reinforce_learns"]
HINT = "sign is flipped"


def reinforce_loss(log_probs, returns, baseline=0.0):
    return (log_probs * (returns - baseline)).sum()
