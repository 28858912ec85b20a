"""Updates the logits in place and returns nothing (the lecture's `policy.logits[a] += ...` style)."""


def policy_gradient_update(logits, action, reward, lr):
    p = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    grad = -p
    grad[action] += 1
    logits += lr * reward * grad
