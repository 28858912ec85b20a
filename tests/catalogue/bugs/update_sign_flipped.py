"""Descends instead of ascending."""
FAILS = ["policy_gradient_update_exact", "bandit_table_learns"]
HINT = "sign is flipped"


def policy_gradient_update(logits, action, reward, lr):
    p = np.exp(logits) / np.sum(np.exp(logits))
    grad = -p
    grad[action] += 1
    return logits - lr * reward * grad
