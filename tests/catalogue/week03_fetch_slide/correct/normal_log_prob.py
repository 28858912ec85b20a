"""torch.distributions.Normal: log_prob per dimension, summed over the dimensions, averaged over the batch."""


def imitation_loss(mean, log_std, actions):
    return -torch.distributions.Normal(mean, log_std.exp()).log_prob(actions).sum(dim=-1).mean()
