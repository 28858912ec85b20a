"""Writes the normaliser as log σ² without the ½."""
FAILS = ["imitation_loss_exact"]
HINT = "log σ term counts twice"


def imitation_loss(mean, log_std, actions):
    variance = torch.exp(2 * log_std)
    return ((actions - mean) ** 2 / (2 * variance) + torch.log(variance)).sum(dim=-1).mean()
