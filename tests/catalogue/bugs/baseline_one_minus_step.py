"""Moves each value by (1 - step) of the error instead of step."""
FAILS = []
SCORES = {'state_value_baseline_exact': 2.0}  # a clause of its contract lost, not the function
HINT = "wrong way round"


def state_value_baseline(states, returns, table, step):
    baseline = torch.tensor([float(table.get(s, 0.0)) for s in states], dtype=torch.float32)
    for s, g in zip(states, torch.as_tensor(returns).detach().tolist()):
        table[s] = g if s not in table else table[s] + (1 - step) * (g - table[s])
    return baseline
