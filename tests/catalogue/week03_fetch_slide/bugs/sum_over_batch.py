"""Sums over the demonstrations instead of averaging (a factor N)."""
FAILS = ["imitation_loss_exact"]
HINT = "sums over the demonstrations"


def imitation_loss(mean, log_std, actions):
    return -torch.distributions.Normal(mean, log_std.exp()).log_prob(actions).sum()
