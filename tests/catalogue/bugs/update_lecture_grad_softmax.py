"""The lecture's `grad_softmax` p(1 - p) on the chosen logit: derivative of the probability, not of its log."""
FAILS = ["policy_gradient_update_exact"]
HINT = "p(1 − p)"


def policy_gradient_update(logits, action, reward, lr):
    p = np.exp(logits) / np.sum(np.exp(logits))
    new = logits.copy()
    new[action] += lr * reward * p[action] * (1 - p[action])
    return new
