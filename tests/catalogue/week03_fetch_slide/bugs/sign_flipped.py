"""Maximises the loss: pushes the policy away from the demonstrated actions."""
FAILS = ["imitation_loss_exact", "imitation_clones_controller"]
HINT = "sign is flipped"


def imitation_loss(mean, log_std, actions):
    return torch.distributions.Normal(mean, log_std.exp()).log_prob(actions).sum(dim=-1).mean()
