"""G_t starts from the next reward."""
FAILS = ["discounted_returns_exact"]
HINT = "off by one"


def discounted_returns(rewards, gamma):
    g, out = 0.0, []
    for r in reversed(rewards):
        out.insert(0, g)
        g = r + gamma * g
    return torch.tensor(out)
