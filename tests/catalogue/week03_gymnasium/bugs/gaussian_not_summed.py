"""Returns one log-density per action dimension, shape (N, D): the training loop stops at the first update."""
FAILS = ["gaussian_log_prob_exact", "pendulum_reinforce_learns"]


def gaussian_log_prob(mean, log_std, actions):
    return torch.distributions.Normal(mean, log_std.exp()).log_prob(actions)
