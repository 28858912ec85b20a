"""Returns shape (3,) for (3, 1) logits."""
FAILS = ['bandit_table_learns']
SCORES = {'policy_gradient_update_exact': 2.0}  # a clause of its contract lost, not the function
HINT = ""


def policy_gradient_update(logits, action, reward, lr):
    z = logits.ravel()
    p = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    return z + lr * reward * (np.eye(3)[action] - p)
