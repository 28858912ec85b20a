"""Uses Categorical(probs=...).log_prob, which renormalises the probabilities."""


def pg_loss(action_probs, action, reward):
    return -reward * torch.distributions.Categorical(probs=action_probs).log_prob(torch.tensor(action))
