"""Builds the loss from numbers: the graph is lost."""
FAILS = ["reinforce_loss_exact", "chain_reinforce_learns"]


def reinforce_loss(log_probs, returns, baseline=0.0):
    return torch.tensor(-(log_probs.detach() * (returns - baseline)).sum().item())
