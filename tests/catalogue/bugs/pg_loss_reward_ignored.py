"""Ignores the reward: every sampled action is reinforced."""
FAILS = ["pg_loss_exact"]
HINT = "reward is ignored"


def pg_loss(action_probs, action, reward):
    return -torch.log(action_probs[action])
