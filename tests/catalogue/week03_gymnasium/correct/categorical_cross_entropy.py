"""The negative per-row cross-entropy is the log-probability of the target class."""


def categorical_log_prob(logits, actions):
    return -F.cross_entropy(logits, actions.long(), reduction="none")
