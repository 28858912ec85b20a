"""Moves the running average away from the returns: the values run off."""
FAILS = ['chain_baseline_learns']
SCORES = {'state_value_baseline_exact': 2.0}  # a clause of its contract lost, not the function
HINT = "sign flipped"


def state_value_baseline(states, returns, table, step):
    baseline = torch.tensor([table.get(s, 0.0) for s in states], dtype=torch.float32)
    for s, g in zip(states, returns.tolist()):
        table[s] = g if s not in table else table[s] - step * (g - table[s])
    return baseline
