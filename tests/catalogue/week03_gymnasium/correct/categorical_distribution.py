"""torch.distributions.Categorical with logits."""


def categorical_log_prob(logits, actions):
    return torch.distributions.Categorical(logits=logits).log_prob(actions)
