"""Gradient ascent on the loss: the policy unlearns both tasks."""
FAILS = ["reinforce_batch_loss_exact", "cartpole_reinforce_learns", "pendulum_reinforce_learns"]
HINT = "sign is flipped"


def reinforce_batch_loss(log_probs, returns):
    advantages = (returns - returns.mean()) / (returns.std() + 1e-8)
    return (log_probs * advantages).mean()
