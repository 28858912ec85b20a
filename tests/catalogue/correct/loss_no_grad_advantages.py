"""Advantages computed under torch.no_grad(), then a sum: constants for autograd."""


def reinforce_loss(log_probs, returns, baseline=0.0):
    with torch.no_grad():
        advantages = torch.as_tensor(returns, dtype=torch.float32) - torch.as_tensor(baseline, dtype=torch.float32)
    return -(log_probs * advantages).sum()
