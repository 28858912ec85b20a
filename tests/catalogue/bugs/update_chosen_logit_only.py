"""Updates only the chosen logit by (1 - p): a partial gradient (convergence alone would not notice)."""
FAILS = ["policy_gradient_update_exact"]
HINT = "only the chosen logit changes; the gradient of log softmax"


def policy_gradient_update(logits, action, reward, lr):
    p = np.exp(logits) / np.sum(np.exp(logits))
    new = logits.copy()
    new[action] += lr * reward * (1 - p[action])
    return new
