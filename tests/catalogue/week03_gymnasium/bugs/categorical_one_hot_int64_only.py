"""Picks the action's log-probability with F.one_hot, which takes int64 indices only: fails on int32 actions, which
the contract allows ("an integer dtype")."""
FAILS = ["categorical_log_prob_exact"]


def categorical_log_prob(logits, actions):
    return (F.log_softmax(logits, dim=-1) * F.one_hot(actions, logits.shape[-1])).sum(-1)
