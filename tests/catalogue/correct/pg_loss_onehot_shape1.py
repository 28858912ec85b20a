"""A one-hot dot product that returns a tensor of shape (1,)."""


def pg_loss(action_probs, action, reward):
    onehot = F.one_hot(torch.tensor([action]), num_classes=3).float()
    return -reward * (onehot * torch.log(action_probs)).sum(dim=1)
