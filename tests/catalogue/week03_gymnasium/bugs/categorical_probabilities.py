"""Gathers the softmax probabilities, not their logarithms."""
FAILS = ["categorical_log_prob_exact"]
HINT = "probabilities of the actions, not their logarithms"


def categorical_log_prob(logits, actions):
    return F.softmax(logits, dim=-1)[torch.arange(len(actions)), actions]
