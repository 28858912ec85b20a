"""Returns a loss per action (shape (3,)) instead of a scalar."""
FAILS = ["pg_loss_exact", "bandit_network_learns"]


def pg_loss(action_probs, action, reward):
    return -reward * torch.log(action_probs)
