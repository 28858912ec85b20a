"""Treats log_std as the log of the variance."""
FAILS = ["gaussian_log_prob_exact"]
HINT = "log of the variance"


def gaussian_log_prob(mean, log_std, actions):
    var = log_std.exp()
    return (-(actions - mean) ** 2 / (2 * var) - 0.5 * torch.log(2 * np.pi * var)).sum(-1)
