"""Computes the gradient of log softmax with torch autograd, in float32."""


def policy_gradient_update(logits, action, reward, lr):
    z = torch.tensor(logits, dtype=torch.float32).reshape(-1).requires_grad_()
    F.log_softmax(z, dim=0)[action].backward()
    return logits + lr * reward * z.grad.numpy().reshape(logits.shape)
