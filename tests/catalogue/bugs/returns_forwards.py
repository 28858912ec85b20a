"""Accumulates the discounted sum forwards, from the episode start, instead of backwards from its end."""
FAILS = ["discounted_returns_exact"]


def discounted_returns(rewards, gamma):
    g, out = 0.0, []
    for r in rewards:
        g = r + gamma * g
        out.append(g)
    return torch.tensor(out)
