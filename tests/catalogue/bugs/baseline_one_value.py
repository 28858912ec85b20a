"""One value for every state: the mean of the table's values, whatever the state of the step."""
FAILS = ["state_value_baseline_exact"]
HINT = "one value for all states"


def state_value_baseline(states, returns, table, step):
    value = sum(table.values()) / len(table) if table else 0.0
    for s, g in zip(states, returns.tolist()):
        table[s] = g if s not in table else table[s] + step * (g - table[s])
    return torch.full((len(states),), float(value))
