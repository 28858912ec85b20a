"""Returns the logits unchanged (the release's `+= 0`)."""
FAILS = ["policy_gradient_update_exact", "bandit_table_learns"]
HINT = "not changed"


def policy_gradient_update(logits, action, reward, lr):
    return logits
