"""Overwrites each state's value with its latest return: a step of 1 whatever the step."""
FAILS = []
SCORES = {'state_value_baseline_exact': 2.0}  # a clause of its contract lost, not the function
HINT = "step size is ignored"


def state_value_baseline(states, returns, table, step):
    baseline = torch.tensor([table.get(s, 0.0) for s in states], dtype=torch.float32)
    for s, g in zip(states, returns.tolist()):
        table[s] = g
    return baseline
