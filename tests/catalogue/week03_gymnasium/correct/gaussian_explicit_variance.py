"""The formula written with the variance and log(2πσ²)."""


def gaussian_log_prob(mean, log_std, actions):
    var = torch.exp(2 * log_std)
    return (-(actions - mean) ** 2 / (2 * var) - 0.5 * torch.log(2 * np.pi * var)).sum(-1)
