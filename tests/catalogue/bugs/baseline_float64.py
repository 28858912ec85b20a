"""Right values and table, but returns a float64 tensor where the docstring promises torch.float32."""
FAILS = []
SCORES = {"state_value_baseline_exact": 2.5}  # the dtype clause only


def state_value_baseline(states, returns, table, step):
    baseline = torch.tensor([float(table.get(s, 0.0)) for s in states], dtype=torch.float64)
    for s, g in zip(states, torch.as_tensor(returns).detach().tolist()):
        table[s] = g if s not in table else table[s] + step * (g - table[s])
    return baseline
