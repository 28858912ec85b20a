"""torch.dot with detached advantages."""


def reinforce_loss(log_probs, returns, baseline=0.0):
    advantages = (torch.as_tensor(returns) - torch.as_tensor(baseline)).detach().float()
    return -torch.dot(log_probs, advantages)
