"""Independent(Normal, 1) sums the log-probabilities over the action dimension itself."""


def imitation_loss(mean, log_std, actions):
    policy = torch.distributions.Independent(torch.distributions.Normal(mean, torch.exp(log_std)), 1)
    return -policy.log_prob(actions).mean()
