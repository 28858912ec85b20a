"""Returns one loss per demonstration instead of their mean."""
FAILS = ["imitation_loss_exact", "imitation_clones_controller"]
HINT = "must be a scalar"


def imitation_loss(mean, log_std, actions):
    return -torch.distributions.Normal(mean, log_std.exp()).log_prob(actions).sum(dim=-1)
