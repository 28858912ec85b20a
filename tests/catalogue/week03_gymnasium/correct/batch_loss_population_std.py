"""The population standard deviation (unbiased=False) and a larger epsilon (a positive factor)."""


def reinforce_batch_loss(log_probs, returns):
    advantages = (returns - returns.mean()) / (returns.std(unbiased=False) + 1e-6)
    return -torch.dot(log_probs, advantages.detach()) / len(log_probs)
