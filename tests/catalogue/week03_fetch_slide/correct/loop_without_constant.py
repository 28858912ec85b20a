"""One action dimension at a time, without the constant term."""


def imitation_loss(mean, log_std, actions):
    std = torch.exp(log_std).expand_as(mean)
    total = 0.0
    for d in range(mean.shape[1]):
        z = (actions[:, d] - mean[:, d]) / std[:, d]
        total = total + (0.5 * z**2 + torch.log(std[:, d])).sum()
    return total / mean.shape[0]
