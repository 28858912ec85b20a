"""Updates the table first and reads the baseline afterwards: b_t already holds this episode's returns."""
FAILS = ["state_value_baseline_exact"]
HINT = "updated before the baseline is read"


def state_value_baseline(states, returns, table, step):
    for s, g in zip(states, returns.tolist()):
        table[s] = g if s not in table else table[s] + step * (g - table[s])
    return torch.tensor([table[s] for s in states], dtype=torch.float32)
