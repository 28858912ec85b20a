"""Only the squared error weighted by 1/σ²: σ grows without bound."""
FAILS = ["imitation_loss_exact"]
HINT = "log σ term is missing"


def imitation_loss(mean, log_std, actions):
    return (0.5 * ((actions - mean) / log_std.exp()) ** 2).sum(dim=-1).mean()
