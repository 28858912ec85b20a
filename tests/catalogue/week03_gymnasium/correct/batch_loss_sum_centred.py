"""A sum over the steps, returns centred but not divided by their standard deviation (a positive factor)."""


def reinforce_batch_loss(log_probs, returns):
    advantages = (returns - returns.mean()).detach()
    return -(log_probs * advantages).sum()
