"""Forgets gamma (every G_t is the undiscounted rest of the episode)."""
FAILS = ["discounted_returns_exact"]
HINT = "no discount"


def discounted_returns(rewards, gamma):
    return torch.tensor([float(sum(rewards[t:])) for t in range(len(rewards))])
