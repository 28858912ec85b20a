"""Adds 1 to every logit on every step besides the gradient step: the same policy (softmax is shift-invariant), but
after 500 steps the logits are near 500, past the lecture Policy's clip at ±100."""


def policy_gradient_update(logits, action, reward, lr):
    z = np.asarray(logits, dtype=np.float64).ravel()
    p = np.exp(z - z.max())
    p /= p.sum()
    return (z + lr * reward * (np.eye(3)[action] - p) + 1.0).reshape(np.shape(logits))
