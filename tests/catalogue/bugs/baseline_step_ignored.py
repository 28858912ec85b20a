"""Overwrites each state's value with its latest return: a step of 1 whatever the step."""
FAILS = ["state_value_baseline_exact"]
HINT = "step size is ignored"


def state_value_baseline(states, returns, table, step):
    baseline = torch.tensor([table.get(s, 0.0) for s in states], dtype=torch.float32)
    for s, g in zip(states, returns.tolist()):
        table[s] = g
    return baseline
