"""Advanced indexing with the actions as they come (int32 or int64: any integer dtype)."""


def categorical_log_prob(logits, actions):
    return F.log_softmax(logits, dim=-1)[torch.arange(len(actions)), actions.long()]
