"""A plain Python list."""


def discounted_returns(rewards, gamma):
    out, g = [], 0.0
    for r in rewards[::-1]:
        g = r + gamma * g
        out.insert(0, g)
    return out
