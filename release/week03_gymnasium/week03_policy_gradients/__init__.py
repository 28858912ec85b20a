"""Week 3: Policy Gradients — what the student's kernel may see of this assignment, and what its release ships.

``envs.py`` (the lecture's bandit and 3-state chain) → ``drivers.py`` (run a graded function, return numbers) →
``checks.py`` (cases and verdicts) → ``views.py`` (figures). The engine reaches all of it through ``REGISTRY``, which
course.toml names (``content``). The reference and the named mistakes are grader-only, in
``source/week03_policy_gradients/``.
"""

from gradekit.checks import Export, Registry

from . import checks, views

REGISTRY = Registry(
    checks={
        "policy_gradient_update_exact": checks.PolicyGradientUpdateExact,
        "bandit_table_learns": checks.BanditTableLearns,
        "pg_loss_exact": checks.PgLossExact,
        "bandit_network_learns": checks.BanditNetworkLearns,
        "discounted_returns_exact": checks.DiscountedReturnsExact,
        "reinforce_loss_exact": checks.ReinforceLossExact,
        "baseline_reduces_variance": checks.BaselineReducesVariance,
        "chain_reinforce_learns": checks.ChainReinforceLearns,
        "state_value_baseline_exact": checks.StateValueBaselineExact,
        "chain_baseline_learns": checks.ChainBaselineLearns,
    },
    exports={
        "animate": Export(check="bandit_table_learns", out="action-distribution.gif", write=views.animation_file,
                          help="the lecture's animation of the action distribution over time, as a GIF"),
    },
)
