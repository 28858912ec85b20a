"""F.nll_loss on log-probabilities, scaled by the reward."""


def pg_loss(action_probs, action, reward):
    return reward * F.nll_loss(torch.log(action_probs).unsqueeze(0), torch.tensor([action]))
