"""Updates the logits in place through a float32 copy of the gradient, returns nothing."""


def policy_gradient_update(logits, action, reward, lr):
    p = torch.softmax(torch.as_tensor(logits, dtype=torch.float32).reshape(-1), dim=0).numpy()
    grad = -p
    grad[action] += 1.0
    logits += (lr * reward * grad).astype(np.float32).reshape(logits.shape)
