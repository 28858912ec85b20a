"""Normalises over the batch instead of over the actions (F.log_softmax's dim=0)."""
FAILS = ["categorical_log_prob_exact"]
HINT = "over the batch (dim 0)"


def categorical_log_prob(logits, actions):
    return F.log_softmax(logits, dim=0).gather(1, actions.unsqueeze(1)).squeeze(1)
