"""A Python loop over time steps with a float or per-step baseline."""


def reinforce_loss(log_probs, returns, baseline=0.0):
    loss = 0
    for t in range(len(log_probs)):
        b = baseline[t] if isinstance(baseline, torch.Tensor) and baseline.ndim else baseline
        loss = loss - log_probs[t] * float(returns[t] - b)
    return loss
