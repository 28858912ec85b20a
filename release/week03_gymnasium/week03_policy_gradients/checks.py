"""The checks of Week 3: which inputs each graded function gets, and how its answers are judged.

Exactness checks compare the student's answers with the reference's under the contract's equivalences; behaviour
checks train with the student's functions on the lecture's environments. Drivers are in ``drivers.py``, figures in
``views.py``; the named mistakes behind the hints are grader-only (``source/week03_policy_gradients/mistakes.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from gradekit.checks import Check, ConvergenceCheck, ExactCheck, as_reference, fmt, number
from gradekit.drivers import build_network, network_params

from . import drivers, views


@dataclass(frozen=True)
class PolicyGradientUpdateExact(ExactCheck):
    title: ClassVar[str] = "policy_gradient_update: the policy-gradient update of the logits"
    functions: ClassVar[tuple[str, ...]] = ("policy_gradient_update",)
    driver: ClassVar = staticmethod(drivers.call_update)
    clause_shares: ClassVar[dict[str, float]] = {"policy": 2 / 3, "shape": 1 / 3}
    clause_names: ClassVar[dict[str, str]] = {"policy": "the new policy",
                                              "shape": "the logits keep their shape, in place or returned"}
    atol: float = 1e-6
    def fixed_cases(self):
        lecture = [0.5488135, 0.71518937, 0.60276338]  # np.random.seed(0); np.random.rand(3, 1)
        return [
            {"logits": [0.0, 0.0, 0.0], "shape": [3], "action": 0, "reward": 1.0, "lr": 0.2},
            {"logits": lecture, "shape": [3, 1], "action": 0, "reward": 1.0, "lr": 0.2},
            {"logits": lecture, "shape": [3, 1], "action": 2, "reward": 1.0, "lr": 0.5},
            {"logits": [1.0, -0.5, 0.3], "shape": [3], "action": 1, "reward": -1.0, "lr": 0.3},
            {"logits": lecture, "shape": [3, 1], "action": 1, "reward": 0.0, "lr": 0.2},
            {"logits": [50.0, -20.0, 10.0], "shape": [3], "action": 1, "reward": 1.0, "lr": 1.0},
        ]

    def random_case(self, rng):
        return {"logits": rng.normal(0, 2, 3).round(6).tolist(), "shape": [3] if rng.random() < 0.5 else [3, 1],
                "action": int(rng.integers(3)), "reward": round(float(rng.uniform(-2, 2)), 4),
                "lr": round(float(rng.uniform(0.05, 1.0)), 4)}

    def show(self, case):
        return (f"logits={fmt(case['logits'])} of shape {tuple(case['shape'])}, action={case['action']}, "
                f"reward={case['reward']}, lr={case['lr']}")

    def value(self, answer):
        return "policy " + fmt(drivers.softmax(np.asarray(answer["logits"], dtype=float)))

    def compare(self, case, expected, got):
        found = {}
        want = drivers.softmax(np.asarray(expected["logits"]))
        have = drivers.softmax(np.asarray(got["logits"], dtype=float))
        if not np.all(np.isfinite(have)) or not np.allclose(have, want, rtol=0, atol=self.atol):
            found["policy"] = f"Policy softmax(new logits): expected {fmt(want)}, got {fmt(have)} " \
                              "(logits are compared through the policy they give, so adding a constant to all is fine)."
        if got["shape"] != case["shape"]:
            found["shape"] = f"The logits came back with shape {tuple(got['shape'])}; they must keep the shape " \
                             f"{tuple(case['shape'])} they came in (changed in place or returned)."
        return found or None


@dataclass(frozen=True)
class PgLossExact(ExactCheck):
    title: ClassVar[str] = "pg_loss: the policy-gradient loss of one step"
    functions: ClassVar[tuple[str, ...]] = ("pg_loss",)
    driver: ClassVar = staticmethod(drivers.call_pg_loss)
    clause_shares: ClassVar[dict[str, float]] = {"gradient": 1.0}
    clause_names: ClassVar[dict[str, str]] = {"gradient": "the gradient of the loss"}
    rtol: float = 1e-4
    atol: float = 1e-6
    def _case(self, rng, sizes, state, action, reward):
        import torch

        torch.manual_seed(int(rng.integers(2**31)))
        net = build_network(sizes)
        return {"sizes": sizes, "params": network_params(net), "state": state, "action": action,
                "reward": reward}

    def fixed_cases(self):
        rng = np.random.default_rng(self.seed + 1)
        return [self._case(rng, [1, 3], 0.0, 0, 1.0), self._case(rng, [1, 3], 1.0, 2, 1.0),
                self._case(rng, [1, 3], -1.0, 1, -0.5), self._case(rng, [1, 3], 0.0, 1, 0.0),
                self._case(rng, [1, 8, 3], 0.5, 0, 2.0), self._case(rng, [1, 8, 3], -1.0, 2, -1.5)]

    def random_case(self, rng):
        sizes = [1, 3] if rng.random() < 0.5 else [1, int(rng.integers(4, 16)), 3]
        return self._case(rng, sizes, round(float(rng.uniform(-1, 1)), 4), int(rng.integers(3)),
                          round(float(rng.uniform(-2, 2)), 4))

    def show(self, case):
        net = "Linear(1, 3)" if case["sizes"] == [1, 3] else f"MLP {case['sizes']}"
        return f"a {net} policy network in state {case['state']}, action={case['action']}, reward={case['reward']}"

    def value(self, answer):
        return "gradient " + fmt(answer["grad"])

    def compare(self, case, expected, got):
        want, have = np.asarray(expected["grad"]), np.asarray(got["grad"], dtype=float)
        if have.shape != want.shape or not np.allclose(have, want, rtol=self.rtol, atol=self.atol):
            return f"Gradient of the loss with respect to the network's parameters: expected {fmt(want)}, " \
                   f"got {fmt(have)}."
        return None


@dataclass(frozen=True)
class DiscountedReturnsExact(ExactCheck):
    title: ClassVar[str] = "discounted_returns: G_t = Σ_k γ^k r_(t+k) for every t"
    functions: ClassVar[tuple[str, ...]] = ("discounted_returns",)
    driver: ClassVar = staticmethod(drivers.call_returns)
    clause_shares: ClassVar[dict[str, float]] = {"values": 0.75, "shape": 0.25}
    clause_names: ClassVar[dict[str, str]] = {"values": "the returns", "shape": "one return per step, 1-D"}
    rtol: float = 1e-4
    def fixed_cases(self):
        rng = np.random.default_rng(self.seed + 1)
        return [
            {"rewards": [1.0, 2.0, 3.0], "gamma": 0.5},
            {"rewards": [-0.05, -0.05, -0.05, 1.0], "gamma": 0.6},
            {"rewards": [1, 0, 0, 1, 0], "gamma": 0.9},
            {"rewards": [1.0, 1.0, 1.0, 1.0], "gamma": 1.0},
            {"rewards": [3.0, -1.0, 2.0], "gamma": 0.0},
            {"rewards": [5.0], "gamma": 0.9},
            {"rewards": rng.normal(0, 1, 1000).round(4).tolist(), "gamma": 0.999},
            {"rewards": [-0.05] * 499 + [1.0], "gamma": 0.99},
        ]

    def random_case(self, rng):
        return {"rewards": rng.normal(0, 1, int(rng.integers(1, 60))).round(4).tolist(),
                "gamma": round(float(rng.uniform(0, 1)), 4)}

    def show(self, case):
        return f"rewards={fmt(case['rewards'])} (T={len(case['rewards'])}), gamma={case['gamma']}"

    def value(self, answer):
        return fmt(answer["returns"])

    def compare(self, case, expected, got):
        found = {}
        want, have = np.asarray(expected["returns"]), np.asarray(got["returns"], dtype=float)
        scale = max(1.0, float(np.abs(want).max()))
        if have.size != want.size or not np.allclose(have.ravel(), want, rtol=self.rtol, atol=self.rtol * scale):
            found["values"] = f"Returns: expected {fmt(want)}, got {fmt(have)}."
        if tuple(got["shape"]) != want.shape:
            found["shape"] = f"Expected a 1-D result of length {len(want)} (one return per step), got shape " \
                             f"{tuple(got['shape'])}."
        return found or None


@dataclass(frozen=True)
class ReinforceLossExact(ExactCheck):
    title: ClassVar[str] = "reinforce_loss: −Σ_t log π(a_t|s_t) (G_t − b_t)"
    functions: ClassVar[tuple[str, ...]] = ("reinforce_loss",)
    driver: ClassVar = staticmethod(drivers.call_reinforce_loss)
    clause_shares: ClassVar[dict[str, float]] = {"gradient": 2 / 3, "advantages_constant": 1 / 3}
    clause_names: ClassVar[dict[str, str]] = {"gradient": "the gradient with respect to the log-probabilities",
                                              "advantages_constant": "the advantages are constants (no gradient "
                                                                     "reaches the returns or the baseline)"}
    scale_example: ClassVar[str] = "e.g. a mean over steps"  # an equivalent scale of the loss, named in its message
    rtol: float = 1e-3
    def _case(self, rng, length, baseline):
        case = {"log_probs": np.log(rng.uniform(0.05, 0.95, length)).round(6).tolist(),
                "returns": rng.normal(0, 1, length).round(4).tolist()}
        if baseline == "float":
            case["baseline"] = round(float(rng.normal(0, 0.5)), 4)
        elif baseline == "tensor":
            case["baseline"] = rng.normal(0, 0.5, length).round(4).tolist()
        return case

    def fixed_cases(self):
        rng = np.random.default_rng(self.seed + 1)
        return [
            {"log_probs": [-0.1, -1.2, -0.7], "returns": [0.8, 0.9, 1.0]},
            {"log_probs": [-0.1, -1.2, -0.7], "returns": [0.8, 0.9, 1.0], "baseline": 0.5},
            {"log_probs": [-0.1, -1.2, -0.7], "returns": [0.8, 0.9, 1.0], "baseline": [0.2, 1.1, 0.4]},
            {"log_probs": [-0.5], "returns": [2.0], "baseline": 0.0},
            self._case(rng, 500, "tensor"), self._case(rng, 200, "float"),
            # returns and baseline that require grad (e.g. from a value network): the advantages are constants
            {"log_probs": [-0.1, -1.2, -0.7], "returns": [0.8, 0.9, 1.0], "baseline": [0.2, 1.1, 0.4],
             "advantages_grad": True},
            {"log_probs": [-0.3, -0.9], "returns": [0.5, -0.2], "baseline": 0.1, "advantages_grad": True},
        ]

    def random_case(self, rng):
        case = self._case(rng, int(rng.integers(1, 40)), rng.choice(["default", "float", "tensor"]))
        return case | ({"advantages_grad": True} if rng.random() < 0.2 else {})

    def show(self, case):
        baseline = case.get("baseline", "not passed (default)")
        grad = ", returns and baseline require grad" if case.get("advantages_grad") else ""
        return f"log_probs={fmt(case['log_probs'])}, returns={fmt(case['returns'])}, " \
               f"baseline={fmt(baseline) if isinstance(baseline, list) else baseline}{grad} (T={len(case['returns'])})"

    def value(self, answer):
        return "gradient " + fmt(answer["grad"])

    def tested(self, case):
        return ("gradient", "advantages_constant") if case.get("advantages_grad") else ("gradient",)

    def compare(self, case, expected, got):
        """The gradient must be a positive multiple of the reference's (sum or mean over steps are both fine)."""
        want, have = np.asarray(expected["grad"]), np.asarray(got["grad"], dtype=float)
        if have.shape != want.shape or not np.all(np.isfinite(have)):
            return {"gradient": f"Gradient with respect to log_probs: expected {fmt(want)}, got {fmt(have)}."}
        norm = float(np.linalg.norm(want))
        if norm == 0:
            ok = np.allclose(have, 0, atol=1e-6)
        else:
            scale = float(have @ want) / norm**2
            ok = scale > 0 and np.linalg.norm(have - scale * want) <= self.rtol * max(np.linalg.norm(have), 1e-12)
        found = {} if ok else {"gradient": f"Gradient with respect to log_probs: expected {fmt(want)} (or a positive "
                                           f"multiple, {self.scale_example}), got {fmt(have)}."}
        # the advantages are constants: no gradient may reach the returns or the baseline. (A known mistake that
        # lets it through is recognised by its gradient w.r.t. the log-probabilities alone.)
        if "advantage_grad" in expected and np.allclose(expected["advantage_grad"], 0.0, atol=1e-9):
            have_adv = np.asarray(got.get("advantage_grad", []), dtype=float)
            if not np.allclose(have_adv, 0.0, atol=1e-7):
                found["advantages_constant"] = (
                    f"Gradient with respect to the returns and the baseline (they require grad here): expected "
                    f"none, got {fmt(have_adv)}. The advantages G_t − b_t must be constants (detach them).")
        return found or None


@dataclass(frozen=True)
class StateValueBaselineExact(ExactCheck):
    title: ClassVar[str] = "state_value_baseline: b_t = V(s_t) from earlier episodes, then V(s) moves towards G_t"
    functions: ClassVar[tuple[str, ...]] = ("state_value_baseline",)
    driver: ClassVar = staticmethod(drivers.call_state_value_baseline)
    clause_shares: ClassVar[dict[str, float]] = {"baseline": 1 / 3, "table": 1 / 3, "constant": 1 / 6, "dtype": 1 / 6}
    clause_names: ClassVar[dict[str, str]] = {"baseline": "the baseline b_t",
                                              "table": "the table updated in place",
                                              "constant": "no gradient flows through the baseline",
                                              "dtype": "a torch.float32 tensor"}
    atol: float = 1e-5

    def _case(self, rng, length, table_states, step, returns_grad=False):
        states = rng.choice([-1, 0, 1], size=length).astype(int).tolist()
        return {"states": states, "returns": rng.normal(0, 1, length).round(4).tolist(),
                "table": [[s, round(float(rng.normal(0, 1)), 4)] for s in table_states], "step": step,
                "returns_grad": returns_grad}

    def fixed_cases(self):
        rng = np.random.default_rng(self.seed + 1)
        return [
            # the lecture's chain, first episode: nothing seen yet, so b = 0 and V(s) takes the first return as it is
            {"states": [-1, 0, 1], "returns": [0.26, 0.6, 1.0], "table": [], "step": 0.1},
            # a later episode: b_t is V(s_t) before this episode, the same for every visit of a state
            {"states": [-1, -1, 0, 1, 1], "returns": [-0.1, 0.2, 0.5, 0.9, 1.0],
             "table": [[-1, 0.1], [0, 0.4], [1, 0.8]], "step": 0.1},
            # a state never seen before gets 0 while the others get their value; states not visited stay as they were
            {"states": [0, 1, 1], "returns": [0.5, 0.7, 1.0], "table": [[-1, 0.3], [0, -0.2]], "step": 0.5},
            # step 1: V(s) is the last return seen from s; the updates go through the steps in order
            {"states": [1, 1, 1], "returns": [0.3, -0.4, 1.0], "table": [[1, 2.0]], "step": 1.0},
            # one step
            {"states": [-1], "returns": [-0.05], "table": [[-1, -1.0]], "step": 0.25},
            # returns that require grad (e.g. from a value network): the baseline must carry no gradient
            {"states": [-1, 0, 0, 1], "returns": [-0.2, 0.1, 0.4, 1.0], "table": [[0, 0.3]], "step": 0.1,
             "returns_grad": True},
            # a long episode of a policy that wanders
            self._case(rng, 100, [-1, 0, 1], 0.1),
        ]

    def random_case(self, rng):
        seen = [s for s in (-1, 0, 1) if rng.random() < 0.6]
        return self._case(rng, int(rng.integers(1, 30)), seen, round(float(rng.uniform(0.05, 1.0)), 4),
                          bool(rng.random() < 0.2))

    def show(self, case):
        table = "{" + ", ".join(f"{s}: {v}" for s, v in case["table"]) + "}"
        grad = ", returns require grad" if case.get("returns_grad") else ""
        return (f"states={fmt(case['states'])}, returns={fmt(case['returns'])}, table={table}, "
                f"step={case['step']}{grad} (T={len(case['states'])})")

    def value(self, answer):
        table = "{" + ", ".join(f"{s}: {v:.4g}" for s, v in answer["table"]) + "}"
        return f"baseline {fmt(answer['baseline'])}, table after {table}"

    def tested(self, case):
        return ("baseline", "table", "constant", "dtype") if case.get("returns_grad") else ("baseline", "table",
                                                                                          "dtype")

    def compare(self, case, expected, got):
        found = {}
        want, have = np.asarray(expected["baseline"]), np.asarray(got["baseline"], dtype=float)
        if have.shape != want.shape or not np.allclose(have, want, rtol=0, atol=self.atol):
            found["baseline"] = f"Baseline b_t: expected {fmt(want)}, got {fmt(have)}."
        if got.get("carries_grad") and not expected.get("carries_grad"):
            found["constant"] = "The baseline carries a gradient (it requires grad): it must be a constant, e.g. " \
                                "built with torch.tensor from the table's numbers."
        want_table, have_table = dict(expected["table"]), dict(got["table"])
        if set(have_table) != set(want_table):
            found["table"] = f"The table after the episode has the states {sorted(have_table)}; expected " \
                             f"{sorted(want_table)} (it is updated in place, one entry per state seen)."
        else:
            for state in sorted(want_table):
                if not math.isclose(have_table[state], want_table[state], rel_tol=0, abs_tol=self.atol):
                    found["table"] = f"The table's value of state {state} after the episode: expected " \
                                     f"{want_table[state]:.6g}, got {have_table[state]:.6g}."
                    break
        if got.get("dtype") != expected.get("dtype"):
            found["dtype"] = f"The baseline is a {got.get('dtype')}; the docstring promises a torch.Tensor of dtype " \
                             f"{expected.get('dtype')}."
        return found or None


@dataclass(frozen=True)
class BanditTableLearns(ConvergenceCheck):
    title: ClassVar[str] = "policy_gradient_update learns the bandit (lookup-table policy)"
    functions: ClassVar[tuple[str, ...]] = ("policy_gradient_update",)
    driver: ClassVar = staticmethod(drivers.bandit_table_run)
    metric_name: ClassVar[str] = "P(L) after the last step"
    curve: ClassVar[str] = "probs"
    view: ClassVar = staticmethod(views.bandit_views)
    kept: ClassVar[tuple[str, ...]] = ("probs", "rewards")
    lr: float = 0.2
    steps: int = 500

    def settings(self):
        return {"lr": self.lr, "steps": self.steps}

    def metric(self, data):
        return float(data["probs"][-1][0])  # P(L) after the last step

    def hint(self, outcomes):
        metrics = [o["criteria"][0]["value"] for o in outcomes if o["criteria"]]
        if metrics and np.nanmean(metrics) < 1 / 3:
            return "P(L) fell below its starting value of about 1/3: the update moves away from the rewarded action."
        return "P(L) barely moved from about 1/3: are the logits actually updated (and returned, or changed in place)?"


@dataclass(frozen=True)
class BanditNetworkLearns(BanditTableLearns):
    """The same bandit and metric, with the lecture's policy network trained on ``pg_loss`` by Adam."""

    title: ClassVar[str] = "pg_loss trains the policy network on the bandit"
    functions: ClassVar[tuple[str, ...]] = ("pg_loss",)
    driver: ClassVar = staticmethod(drivers.bandit_network_run)
    diverged_hint: ClassVar[str] = (
        "Training diverged: look at the sign and the scale of your loss (a large factor can make it or its gradient "
        "overflow to infinity) and at NaN or −inf from the log of a probability of 0.")
    lr: float = 1.0
    steps: int = 100


@dataclass(frozen=True)
class ChainReinforceLearns(ConvergenceCheck):
    title: ClassVar[str] = "discounted_returns + reinforce_loss: REINFORCE learns the 3-state chain"
    functions: ClassVar[tuple[str, ...]] = ("discounted_returns", "reinforce_loss")
    driver: ClassVar = staticmethod(drivers.chain_reinforce_run)
    metric_name: ClassVar[str] = "mean return of the last 50 episodes (best possible 0.90)"
    curve: ClassVar[str] = "episode_returns"
    view: ClassVar = staticmethod(views.chain_views)
    diverged_hint: ClassVar[str] = (
        "Training diverged: look at the sign and the scale of your loss and of the returns it weights (a sum where a "
        "mean is expected, or a large factor, can make the loss or its gradient overflow to infinity) and at NaN or "
        "−inf from the log of a probability of 0.")
    kept: ClassVar[tuple[str, ...]] = ("episode_returns", "losses")
    gamma: float = 0.6
    lr: float = 0.01
    episodes: int = 500
    max_steps: int = 100
    window: int = 50
    baselined: ClassVar[bool] = False  # its graded runs are without a baseline
    baseline_step: float = 0.1  # of the state-value baseline's running average (ChainBaselineLearns)

    def settings(self):
        return {"gamma": self.gamma, "lr": self.lr, "episodes": self.episodes, "max_steps": self.max_steps}

    def metric(self, data):
        return float(np.mean(data["episode_returns"][-self.window:]))

    def hint(self, outcomes):
        return ("The policy did not learn to walk right twice and then stay: check the sign of the loss, that returns "
                "are discounted from each step to the end of the episode, and that the loss stays connected to the "
                "log-probabilities.")


@dataclass(frozen=True)
class ChainBaselineLearns(ChainReinforceLearns):
    """REINFORCE on the chain with the student's state-value baseline: it must learn as well as without one, and
    the baseline must lower the variance of the weights of the log-probabilities on the student's own runs.

    The weights are the advantages G_t − b_t, against the returns G_t without the baseline, over all the steps of a
    run. A state-value baseline is the mean return from each state, so it takes out the part of G_t's variance that
    the state explains (the reference leaves about a third). The variance of the gradient itself is not a safe rule
    here: on the chain, the policy soon takes a wrong action in the last state only rarely, and then its
    log-probability's gradient is large and its advantage G_t − V(s_t) ≈ −1 is ten times its return. So the
    reference's per-step gradient variance over a run went up on some seeds, and its per-episode one on every seed
    tried (docs/calibration.md)."""

    title: ClassVar[str] = ("state_value_baseline: REINFORCE with your baseline learns the chain, and the advantages "
                            "vary less than the returns")
    functions: ClassVar[tuple[str, ...]] = ("discounted_returns", "reinforce_loss", "state_value_baseline")
    driver: ClassVar = staticmethod(drivers.chain_baseline_run)
    metric_name: ClassVar[str] = "mean return of the last 50 episodes with your baseline"
    baselined: ClassVar[bool] = True
    max_ratio: float = 0.6  # variance of G_t − b_t / variance of G_t, over the steps of a run
    baseline_runs: int = 2  # seeds also trained without the baseline, for the feedback figure only
    feedback_driver: ClassVar = staticmethod(drivers.chain_reinforce_run)
    feedback_functions: ClassVar[tuple[str, ...]] = ChainReinforceLearns.functions

    def settings(self):
        return super().settings() | {"baseline_step": self.baseline_step}

    def feedback_cases(self):
        """The first ``baseline_runs`` seeds without the baseline: with the same settings, the very runs that
        ``chain_reinforce_learns`` grades, which a grade of both then trains once."""
        return [{"seed": seed, **ChainReinforceLearns.settings(self)} for seed in self.seeds[:self.baseline_runs]]

    def keep(self, answer):
        kept = super().keep(answer)
        if kept is not None and "weights" in answer["ok"]:
            kept["variance_ratio"] = round(weight_variance_ratio(answer["ok"]["weights"]), 4)
        return kept

    def ratio(self, data) -> float:
        return weight_variance_ratio(data["weights"])

    def criteria(self, data):
        """Two per seed: the last-50 mean return, as without a baseline, and the variance ratio of the weights."""
        return super().criteria(data) + [("variance of G_t − b_t / variance of G_t", self.ratio(data), "≤",
                                          self.max_ratio)]

    def hint(self, outcomes):
        if any(c["value"] == math.inf for o in outcomes for c in o["criteria"][1:]):
            return ("The returns G_t of a run had no variance at all (every G_t the same: are your discounted returns "
                    "all zero, or constant?), so no baseline can lower it: check `discounted_returns` first.")
        if any(not c["passed"] for o in outcomes for c in o["criteria"][1:]):
            return ("Your baseline did not take enough of the returns' variance out: b_t must be the value V(s_t) of "
                    "the state of step t, read from the table before this episode updates it, and each V(s) must move "
                    "towards the returns seen from s (V(s) + step·(G − V(s))).")
        return ("With your baseline the policy did not learn to walk right twice and then stay: b_t must come from "
                "earlier episodes only (read the table before you update it), and be subtracted from the returns.")

    def summary(self, data):
        ratios = [r["variance_ratio"] for r in data.get("runs") or [] if r and r.get("variance_ratio") is not None]
        if not ratios:
            return None
        return (f"Variance of G_t − b_t / variance of G_t per seed: {', '.join(number(v) for v in ratios)} "
                f"(needed ≤ {self.max_ratio:g}).")


@dataclass(frozen=True)
class BaselineReducesVariance(Check):
    """The baseline must lower the variance of REINFORCE's per-episode gradient estimate on fixed episodes."""

    title: ClassVar[str] = "reinforce_loss: a baseline lowers the variance of the gradient estimate"
    public: ClassVar[bool] = False  # its 200 episodes would make the release's record ~10× larger
    functions: ClassVar[tuple[str, ...]] = ("reinforce_loss",)
    driver: ClassVar = staticmethod(drivers.baseline_gradients)
    seed: int
    episodes: int
    max_ratio: float
    gamma: float = 0.6
    max_steps: int = 50

    def cases(self, reference):
        """Episodes of a fixed random policy; baseline b(s) = mean return seen from state s in a separate batch."""
        import torch

        torch.manual_seed(self.seed)
        params = network_params(build_network([1, 3]))
        returns = reference["discounted_returns"]
        fit = drivers.sample_chain_episodes(params, self.episodes, self.seed + 1, self.max_steps)
        seen: dict[int, list[float]] = {}
        for ep in fit:
            for s, g in zip(ep["states"], returns(ep["rewards"], self.gamma)):
                seen.setdefault(s, []).append(float(g))
        value = {s: float(np.mean(v)) for s, v in seen.items()}
        episodes = drivers.sample_chain_episodes(params, self.episodes, self.seed + 2, self.max_steps)
        for ep in episodes:
            ep["returns"] = [float(g) for g in returns(ep.pop("rewards"), self.gamma)]
            ep["baseline"] = [value.get(s, 0.0) for s in ep["states"]]
        return [{"params": params, "episodes": episodes}]

    def judge(self, cases, answers, reference):
        """Compare variances after undoing each episode's positive scale (a mean over steps scales by 1/T)."""
        failed = self.error_result(answers)
        if failed:
            return failed
        expected = as_reference(reference).expected(self, cases[0])
        got = {k: np.asarray(v, dtype=float) for k, v in answers[0]["ok"].items()}
        ref_plain = np.asarray(expected["plain"])
        norms = np.maximum((ref_plain**2).sum(axis=1), 1e-12)
        scales = (got["plain"] * ref_plain).sum(axis=1) / norms
        if not np.all(scales > 0):
            return self.result(False, "Without a baseline, the gradient of your loss points away from REINFORCE's "
                                      "on some episodes: check the sign of the loss, and that it weights "
                                      "log-probabilities (not probabilities) by the returns.")
        ratio = variance_ratio({k: v / scales[:, None] for k, v in got.items()})
        reference_ratio = variance_ratio(expected)
        passed = ratio <= self.max_ratio
        text = (f"Variance of the per-episode gradient with the baseline / without it: {ratio:.3f} over "
                f"{self.episodes} episodes (needed ≤ {self.max_ratio}; the reference gets {reference_ratio:.3f}).")
        if not passed:
            text += (" The baseline should be subtracted from the returns before they weight the log-probabilities."
                     if ratio > 1 else " The baseline barely changes the gradient: is it used?")
        return self.result(passed, text, variance_ratio=ratio)

    def summary(self, data):
        if data.get("variance_ratio") is None:
            return None
        return f"Variance ratio with / without the baseline: {data['variance_ratio']:.3f} (needed ≤ {self.max_ratio:g})."


def variance_ratio(gradients: dict) -> float:
    """Total variance (trace of the covariance) of the baselined per-episode gradients over that of the plain ones."""
    plain = np.asarray(gradients["plain"], dtype=float)
    baselined = np.asarray(gradients["baselined"], dtype=float)
    total = plain.var(axis=0).sum()
    return float(baselined.var(axis=0).sum() / total) if total > 0 else math.inf


def weight_variance_ratio(weights: dict) -> float:
    """Variance of the advantages G_t − b_t over the steps of a run, over that of the returns G_t (the weights of the
    log-probabilities with and without the baseline), from their counts, sums and sums of squares."""
    def variance(w):
        n = max(int(w["n"]), 1)
        return max(float(w["sumsq"]) / n - (float(w["sum"]) / n) ** 2, 0.0)
    plain = variance(weights["plain"])
    return variance(weights["baselined"]) / plain if plain > 0 else math.inf
