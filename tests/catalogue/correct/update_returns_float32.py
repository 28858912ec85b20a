"""Returns a float32 array (the contract asks for an array of the same shape, any float dtype)."""


def policy_gradient_update(logits, action, reward, lr):
    z = logits.astype(np.float32)
    p = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    onehot = np.zeros_like(z)
    onehot.reshape(-1)[action] = 1.0
    return z + np.float32(lr * reward) * (onehot - p)
