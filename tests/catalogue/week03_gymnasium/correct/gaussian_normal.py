"""torch.distributions.Normal, summed over the action dimensions."""


def gaussian_log_prob(mean, log_std, actions):
    return torch.distributions.Normal(mean, log_std.exp()).log_prob(actions).sum(dim=-1)
