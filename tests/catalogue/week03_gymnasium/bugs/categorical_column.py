"""Keeps gather's column, shape (N, 1): it would broadcast against the returns into an N x N loss, so the training
loop stops at the first update and CartPole is never learned."""
FAILS = ["categorical_log_prob_exact", "cartpole_reinforce_learns"]


def categorical_log_prob(logits, actions):
    return F.log_softmax(logits, dim=-1).gather(1, actions.unsqueeze(1))
