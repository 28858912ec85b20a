"""Maximises the loss."""
FAILS = ["pg_loss_exact", "bandit_network_learns"]
HINT = "sign is flipped"


def pg_loss(action_probs, action, reward):
    return reward * torch.log(action_probs[action])
