"""Reads the table and never writes to it: the baseline is always 0."""
FAILS = ["state_value_baseline_exact", "chain_baseline_learns"]
HINT = "never updated"


def state_value_baseline(states, returns, table, step):
    return torch.tensor([table.get(s, 0.0) for s in states], dtype=torch.float32)
