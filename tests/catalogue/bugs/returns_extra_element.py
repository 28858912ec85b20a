"""Allocates T + 1 slots for the backward recursion and returns them all."""
FAILS = ["discounted_returns_exact", "chain_reinforce_learns"]
HINT = "must hold"


def discounted_returns(rewards, gamma):
    out = np.zeros(len(rewards) + 1)
    for t in range(len(rewards) - 1, -1, -1):
        out[t] = rewards[t] + gamma * out[t + 1]
    return out
