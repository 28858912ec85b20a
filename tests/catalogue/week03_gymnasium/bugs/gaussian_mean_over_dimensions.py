"""Averages over the action dimensions. InvertedPendulum has one, so training cannot tell; the exactness check can."""
FAILS = ["gaussian_log_prob_exact"]
HINT = "averaged"


def gaussian_log_prob(mean, log_std, actions):
    return torch.distributions.Normal(mean, log_std.exp()).log_prob(actions).mean(dim=-1)
