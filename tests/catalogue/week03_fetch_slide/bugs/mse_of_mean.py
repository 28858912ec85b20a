"""The usual regression loss: ignores σ altogether."""
FAILS = ["imitation_loss_exact"]
HINT = "F.mse_loss"


def imitation_loss(mean, log_std, actions):
    return F.mse_loss(mean, actions)
