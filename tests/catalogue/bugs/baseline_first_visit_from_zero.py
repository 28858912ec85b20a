"""Starts every state's average at 0 instead of at the first return seen from it."""
FAILS = []
SCORES = {'state_value_baseline_exact': 2.0}  # a clause of its contract lost, not the function
HINT = "averaged with 0"


def state_value_baseline(states, returns, table, step):
    baseline = torch.tensor([table.get(s, 0.0) for s in states], dtype=torch.float32)
    for s, g in zip(states, returns.tolist()):
        table[s] = table.get(s, 0.0) + step * (g - table.get(s, 0.0))
    return baseline
