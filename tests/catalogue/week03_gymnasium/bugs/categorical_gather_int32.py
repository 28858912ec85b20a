"""gather needs int64 indices: fails on int32 actions, which the contract allows ("an integer dtype")."""
FAILS = ["categorical_log_prob_exact"]


def categorical_log_prob(logits, actions):
    return F.log_softmax(logits, dim=-1).gather(-1, actions.unsqueeze(-1)).squeeze(-1)
