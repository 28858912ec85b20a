"""Reads the table and never writes to it: the baseline is always 0."""
FAILS = ['chain_baseline_learns']
SCORES = {'state_value_baseline_exact': 2.0}  # a clause of its contract lost, not the function
HINT = "never updated"


def state_value_baseline(states, returns, table, step):
    return torch.tensor([table.get(s, 0.0) for s in states], dtype=torch.float32)
