"""Leaves out the -log(sigma) normalisation of the density."""
FAILS = ["gaussian_log_prob_exact"]
HINT = "log σ term"


def gaussian_log_prob(mean, log_std, actions):
    return (-0.5 * ((actions - mean) / log_std.exp()) ** 2 - 0.5 * np.log(2 * np.pi)).sum(-1)
