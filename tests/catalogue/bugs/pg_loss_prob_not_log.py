"""The probability instead of its logarithm (the lecture's REINFORCE loss)."""
FAILS = ["pg_loss_exact"]
HINT = "probability instead of its logarithm"


def pg_loss(action_probs, action, reward):
    return -reward * action_probs[action]
