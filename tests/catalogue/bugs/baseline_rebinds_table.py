"""Builds a new dict and rebinds the name ``table`` to it: the caller's table is never updated."""
FAILS = []
SCORES = {'state_value_baseline_exact': 2.0}  # a clause of its contract lost, not the function


def state_value_baseline(states, returns, table, step):
    baseline = torch.tensor([float(table.get(s, 0.0)) for s in states], dtype=torch.float32)
    table = dict(table)
    for s, g in zip(states, torch.as_tensor(returns).detach().tolist()):
        table[s] = g if s not in table else table[s] + step * (g - table[s])
    return baseline
