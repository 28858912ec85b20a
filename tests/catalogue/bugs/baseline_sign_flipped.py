"""Moves the running average away from the returns: the values run off."""
FAILS = ["state_value_baseline_exact", "chain_baseline_learns"]
HINT = "sign flipped"


def state_value_baseline(states, returns, table, step):
    baseline = torch.tensor([table.get(s, 0.0) for s in states], dtype=torch.float32)
    for s, g in zip(states, returns.tolist()):
        table[s] = g if s not in table else table[s] - step * (g - table[s])
    return baseline
