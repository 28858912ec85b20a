"""F.gaussian_nll_loss with the variances σ², summed and divided by the batch size (its 'mean' would also average
over the dimensions); it leaves out the constant ½ log 2π."""


def imitation_loss(mean, log_std, actions):
    variance = torch.exp(2 * log_std).expand_as(mean)
    return F.gaussian_nll_loss(mean, actions, variance, reduction="sum") / mean.shape[0]
