"""Uses this episode's mean return as the baseline of every step (and keeps the table as it should)."""
FAILS = ["state_value_baseline_exact"]


def state_value_baseline(states, returns, table, step):
    returns = torch.as_tensor(returns).detach()
    for s, g in zip(states, returns.tolist()):
        table[s] = g if s not in table else table[s] + step * (g - table[s])
    return torch.full((len(states),), float(returns.mean()), dtype=torch.float32)
