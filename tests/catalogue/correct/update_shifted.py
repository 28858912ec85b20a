"""Returns logits shifted by a constant (max subtracted): the same policy."""


def policy_gradient_update(logits, action, reward, lr):
    z = logits.astype(float).ravel()
    p = np.exp(z) / np.sum(np.exp(z))
    new = z + lr * reward * (np.eye(3)[action] - p)
    return (new - new.max()).reshape(logits.shape)
