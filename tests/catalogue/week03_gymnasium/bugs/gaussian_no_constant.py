"""Drops the -log(2 pi)/2 constant: the gradient is right, the log-density is not."""
FAILS = ["gaussian_log_prob_exact"]
HINT = "constant"


def gaussian_log_prob(mean, log_std, actions):
    return (-0.5 * ((actions - mean) / log_std.exp()) ** 2 - log_std).sum(-1)
