"""Week 3 (optional): REINFORCE on Gymnasium — what the student's kernel may see of this assignment.

``drivers.py`` (the notebook's policies and batched REINFORCE loop on CartPole-v1 and InvertedPendulum-v5, with the
student's functions) → ``checks.py``. ``discounted_returns`` is the Week 3 function and keeps Week 3's check. The
reference and the named mistakes are grader-only, in ``source/week03_gymnasium/``.
"""

from gradekit.checks import Registry
from week03_policy_gradients.checks import DiscountedReturnsExact

from . import checks

REGISTRY = Registry(checks={
    "discounted_returns_exact": DiscountedReturnsExact,
    "categorical_log_prob_exact": checks.CategoricalLogProbExact,
    "gaussian_log_prob_exact": checks.GaussianLogProbExact,
    "reinforce_batch_loss_exact": checks.ReinforceBatchLossExact,
    "cartpole_reinforce_learns": checks.CartpoleReinforceLearns,
    "pendulum_reinforce_learns": checks.PendulumReinforceLearns,
})
