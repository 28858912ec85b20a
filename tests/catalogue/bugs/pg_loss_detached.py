"""Detaches the probability: no gradient reaches the network."""
FAILS = ["pg_loss_exact", "bandit_network_learns"]
HINT = ""


def pg_loss(action_probs, action, reward):
    return -reward * torch.log(action_probs[action].detach())
