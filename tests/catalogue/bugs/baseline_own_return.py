"""Uses the episode's own returns as the baseline: every advantage is 0, nothing is learned."""
FAILS = ["state_value_baseline_exact", "chain_baseline_learns"]
HINT = "this episode's own return"


def state_value_baseline(states, returns, table, step):
    for s, g in zip(states, returns.tolist()):
        table[s] = g if s not in table else table[s] + step * (g - table[s])
    return returns.clone()
