"""Discounts by gamma^t from the episode start."""
FAILS = ["discounted_returns_exact"]
HINT = "from the episode start"


def discounted_returns(rewards, gamma):
    T = len(rewards)
    return torch.tensor([sum(gamma ** k * rewards[k] for k in range(t, T)) for t in range(T)])
