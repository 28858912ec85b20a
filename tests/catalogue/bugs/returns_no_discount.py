"""Forgets gamma."""
FAILS = ["discounted_returns_exact"]
HINT = "no discount"


def discounted_returns(rewards, gamma):
    return torch.tensor([float(sum(rewards[t:])) for t in range(len(rewards))])
