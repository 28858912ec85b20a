"""Returns shape (3,) for (3, 1) logits."""
FAILS = ["policy_gradient_update_exact", "bandit_table_learns"]
HINT = ""


def policy_gradient_update(logits, action, reward, lr):
    z = logits.ravel()
    p = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    return z + lr * reward * (np.eye(3)[action] - p)
