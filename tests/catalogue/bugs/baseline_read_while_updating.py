"""Reads and updates in one loop: the second visit of a state already sees this episode's return."""
FAILS = ["state_value_baseline_exact"]
HINT = "updated step by step while the baseline is read"


def state_value_baseline(states, returns, table, step):
    baseline = []
    for s, g in zip(states, returns.tolist()):
        baseline.append(table.get(s, 0.0))
        table[s] = g if s not in table else table[s] + step * (g - table[s])
    return torch.tensor(baseline, dtype=torch.float32)
