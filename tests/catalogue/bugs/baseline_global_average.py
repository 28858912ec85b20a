"""One running average of all returns, kept under a single key, used for every state."""
FAILS = ["state_value_baseline_exact"]


def state_value_baseline(states, returns, table, step):
    baseline = torch.full((len(states),), float(table.get("all", 0.0)))
    for g in returns.tolist():
        table["all"] = g if "all" not in table else table["all"] + step * (g - table["all"])
    return baseline
