"""Normalises the returns without detaching them: right while they are plain numbers, wrong once a critic computes
them (gradient then flows into it through the loss)."""
FAILS = []
SCORES = {"reinforce_batch_loss_exact": 2.0}  # a clause of its contract lost, not the function
HINT = "gradient flows through the normalised returns"


def reinforce_batch_loss(log_probs, returns):
    advantages = (returns - returns.mean()) / (returns.std() + 1e-8)
    return -(log_probs * advantages).mean()
