"""Divides the squared error by 2σ instead of 2σ²."""
FAILS = ["imitation_loss_exact"]
HINT = "σ is used where the variance σ² belongs"


def imitation_loss(mean, log_std, actions):
    sigma = torch.exp(log_std)
    return ((actions - mean) ** 2 / (2 * sigma) + torch.log(sigma)).sum(dim=-1).mean()
