"""Accumulates from the end but forgets to reverse the list."""
FAILS = ["discounted_returns_exact"]
HINT = "reverse order"


def discounted_returns(rewards, gamma):
    g, out = 0.0, []
    for r in reversed(rewards):
        g = r + gamma * g
        out.append(g)
    return torch.tensor(out)
