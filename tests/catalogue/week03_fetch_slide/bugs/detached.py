"""Converts the loss to a number and back: no gradient reaches the policy."""
FAILS = ["imitation_loss_exact", "imitation_clones_controller"]
HINT = "not connected"


def imitation_loss(mean, log_std, actions):
    value = -torch.distributions.Normal(mean, log_std.exp()).log_prob(actions).sum(dim=-1).mean()
    return torch.tensor(value.item(), requires_grad=True)
