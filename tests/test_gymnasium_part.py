"""The optional Gymnasium part (assignment week03_gymnasium): environments, the notebook against the grader's drivers,
the exactness checks' hints, the catalogue of correct and buggy submissions, and a whole grade of the reference.

Tests that train to the step budget are marked ``slow`` (they still run in ``make test``) and grade with two workers,
so the seeds of a behaviour check train on both cores.
"""

from __future__ import annotations

import re
import time
import warnings
from pathlib import Path

import gymnasium as gym
import nbformat
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env
from nbclient import NotebookClient

from gradekit import protocol as harness
from gradekit.checks import ExactCheck
from week03_gymnasium import drivers as harness_gym
from week03_gymnasium import policies

from autograder.execute import kernel_env
from autograder.grade import grade
from autograder.reference import reference as grader_reference
from autograder.notebook import graded_cells, reference_functions
from autograder.release import solution_lines
from tests.conftest import (CATALOGUE, checks_touching, fill_release, load_variant, reference_answers, results_by_name,
                            variant_scores)

ENVIRONMENTS = ["CartPole-v1", "InvertedPendulum-v5"]
PART = CATALOGUE / "week03_gymnasium"
CORRECT = sorted((PART / "correct").glob("*.py"))
BUGS = sorted((PART / "bugs").glob("*.py"))
SHORT = {"gamma": 0.99, "lr": 0.02, "hidden": 16, "batch_steps": 300, "n_envs": 3, "max_steps": 3000,
         "max_episodes": 10_000, "log_every": 1000, "window": 5, "target": 1e9, "log_std": -0.5}  # never stops early


@pytest.fixture(scope="module")
def gym_assignment(course):
    return course.assignment("week03_gymnasium")


@pytest.fixture(scope="module")
def notebook(gym_assignment) -> dict:
    """The source notebook's setup, graded (reference) and given cells, run in one namespace as a student would."""
    nb = nbformat.read(gym_assignment.source, as_version=4)
    cells = graded_cells(nb)
    namespace: dict = {}
    for grade_id in ("setup", *gym_assignment.graded_cells, "policies", "reinforce-config", "train-reinforce"):
        exec(compile(cells[grade_id][0].source, grade_id, "exec"), namespace)  # noqa: S102 - our own notebook
    return namespace


@pytest.mark.parametrize("env_id", ENVIRONMENTS)
def test_environments_pass_gymnasium_check_env(env_id):
    """On ``env.unwrapped``, as Gymnasium recommends; rendering is never used. The only warnings are Gymnasium's
    style advice for these two official environments (unbounded observations, an action range other than [-1, 1])."""
    env = gym.make(env_id)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped, skip_render_check=True)
    advice = ("is probably too low", "is probably too high", "symmetric and normalized space")
    assert all(any(a in str(w.message) for a in advice) for w in caught), [str(w.message) for w in caught]
    assert env.spec.reward_threshold == {"CartPole-v1": 475.0, "InvertedPendulum-v5": 950.0}[env_id]


def test_thresholds_are_gymnasium_reward_thresholds(gym_assignment):
    for name, env_id in (("cartpole_reinforce_learns", "CartPole-v1"), ("pendulum_reinforce_learns",
                                                                         "InvertedPendulum-v5")):
        assert gym_assignment.check(name).threshold == gym.spec(env_id).reward_threshold


@pytest.mark.parametrize("env_id", ENVIRONMENTS)
def test_notebook_training_is_the_graders(notebook, env_id):
    """The loop students run is the loop that grades them: same policies, same seeds, same episodes."""
    config = notebook["ReinforceConfig"](**{k: v for k, v in SHORT.items() if k != "log_every"})
    cartpole = env_id == "CartPole-v1"
    log_prob = notebook["categorical_log_prob" if cartpole else "gaussian_log_prob"]
    driver = harness_gym.cartpole_run if cartpole else harness_gym.pendulum_run
    ours = driver(notebook["discounted_returns"], log_prob, notebook["reinforce_batch_loss"], SHORT | {"seed": 7})
    notebook["seed_everything"](7)
    policy = (notebook["CategoricalPolicy"](4, 2, config.hidden) if cartpole
              else notebook["GaussianPolicy"](4, 1, config.hidden, config.log_std))
    theirs = notebook["train_reinforce"](env_id, policy, log_prob, config, seed=7)
    assert len(ours["episode_returns"]) > 20
    assert theirs["episode_returns"] == ours["episode_returns"] and theirs["steps"] == ours["steps"]


def test_notebook_policies_are_the_graders(notebook):
    for ours, theirs, args in ((policies.CategoricalPolicy, notebook["CategoricalPolicy"], (4, 2, 8)),
                               (policies.GaussianPolicy, notebook["GaussianPolicy"], (4, 1, 8, -0.5))):
        torch.manual_seed(3)
        a = ours(*args)
        torch.manual_seed(3)
        b = theirs(*args)
        obs = torch.randn(5, 4)
        assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
        assert all(torch.equal(x, y) for x, y in zip(a(obs), b(obs)))
        torch.manual_seed(4)
        sampled = a.sample(obs)
        torch.manual_seed(4)
        assert torch.equal(sampled, b.sample(obs))


def test_every_episode_is_reset_with_its_own_seed(gym_assignment, monkeypatch):
    """The tutorial reset every episode with the same seed; the grader's episodes all start differently."""
    seeds: list = []
    make = gym.make

    class Recorder(gym.Wrapper):
        def reset(self, *, seed=None, options=None):
            seeds.append(seed)
            return super().reset(seed=seed, options=options)

    monkeypatch.setattr(gym, "make", lambda env_id: Recorder(make(env_id)))
    reference = reference_functions(gym_assignment)
    out = harness_gym.cartpole_run(reference["discounted_returns"], reference["categorical_log_prob"],
                                   reference["reinforce_batch_loss"], SHORT | {"seed": 5})
    assert None not in seeds and len(set(seeds)) == len(seeds) >= len(out["episode_returns"])
    assert seeds[0] == harness_gym.episode_seed(5, 0) != harness_gym.episode_seed(6, 0)


def test_exactness_checks_pass_the_reference_and_name_every_mistake(gym_assignment):
    """In the grader's process (no kernel): the reference passes every exactness check, and each named mistake fails
    its check with its own hint, so every hint can be given."""
    reference = grader_reference(gym_assignment)
    for check in (c for c in gym_assignment.checks if isinstance(c, ExactCheck)):
        cases = check.cases(reference)
        answers = [harness.plain(reference.expected(check, case)) for case in cases]
        assert check.judge(cases, [{"ok": a} for a in answers], reference).passed, check.name
        for label, answered in mistakes_answers(reference, check, cases).items():
            result = check.judge(cases, answered, reference)
            assert not result.passed and label in result.output, (check.name, label, result.output)


def mistakes_answers(reference, check, cases) -> dict[str, list[dict]]:
    by_case = [reference.mistaken(check, case) for case in cases]
    return {label: [harness.plain(runs[label]) for runs in by_case] for label in by_case[0]}


def test_the_tutorial_defect_is_a_named_mistake(gym_assignment):
    check = gym_assignment.check("reinforce_batch_loss_exact")
    labels = " ".join(grader_reference(gym_assignment).mistakes[type(check)])
    assert "issue #1336" in labels


def test_batch_loss_gradient_weights_each_step_by_its_own_return(gym_assignment):
    """The contract in numbers: d loss / d log_prob_t is proportional to −(G_t − mean G)."""
    loss = reference_functions(gym_assignment)["reinforce_batch_loss"]
    log_probs = torch.tensor([-0.1, -1.2, -0.7, -0.3], requires_grad=True)
    returns = torch.tensor([4.0, 3.0, 2.0, 1.0])
    loss(log_probs, returns).backward()
    centred = -(returns - returns.mean())
    assert torch.allclose(log_probs.grad / log_probs.grad.norm(), centred / centred.norm(), atol=1e-6)


# --------------------------------------------------------------------------------- graded end to end, in a kernel
def grade_variant(assignment, tmp_path: Path, variant: Path, workers: int = 2):
    """Grade a catalogue file in a reference-filled release, on the exactness checks of the functions it replaces
    and on the checks it must fail (a behaviour check it passes would cost seconds per seed for nothing)."""
    functions, fails, hint = load_variant(variant)
    touched = checks_touching(assignment, functions)
    only = {c for c in touched if c.endswith("_exact")} | set(fails)
    submission = fill_release(assignment, tmp_path / "submission.ipynb", functions)
    return results_by_name(grade(submission, assignment, only=only, workers=workers, figures=False)), fails, hint


@pytest.mark.parametrize("variant", CORRECT, ids=[p.stem for p in CORRECT])
def test_correct_variant_passes_its_exactness_checks(gym_assignment, tmp_path, variant):
    results, fails, _ = grade_variant(gym_assignment, tmp_path, variant)
    assert results and not fails
    for name, result in results.items():
        assert result.passed, f"{name}: {result.output}"


def is_slow(variant: Path) -> bool:
    return any(name.endswith("_learns") for name in load_variant(variant)[1])


@pytest.mark.parametrize("variant", [pytest.param(p, marks=pytest.mark.slow) if is_slow(p) else p for p in BUGS],
                         ids=[p.stem for p in BUGS])
def test_bug_loses_marks_on_the_right_check(gym_assignment, tmp_path, variant):
    results, fails, hint = grade_variant(gym_assignment, tmp_path, variant)
    scores = variant_scores(variant)
    assert fails or scores, f"{variant.name} must say which checks it fails (FAILS = [...], or SCORES = {{...}})"
    for name in fails:
        assert results[name].score == 0, f"{name} should fail for {variant.stem}: {results[name].output}"
        assert results[name].output.strip()
    for name, score in scores.items():  # a clause of the contract lost: its share, not the function's points
        assert results[name].score == score and not results[name].passed, (name, results[name].output)
    if hint:
        exact = next(results[name] for name in [*fails, *scores] if name.endswith("_exact"))
        assert hint in exact.full_output, exact.full_output  # the verdict and the first wrong case, as on the page
    feedback = "\n".join(r.full_output for r in results.values())
    leaked = [line for line in solution_lines(gym_assignment.source) if len(line) > 12 and line in feedback]
    assert not leaked, "feedback quotes the reference solution"


def test_catalogue_covers_every_graded_function_and_check(gym_assignment):
    for folder in (CORRECT, BUGS):
        covered = set().union(*(load_variant(p)[0] for p in folder))
        assert covered == set(gym_assignment.graded_cells)
    failed = set().union(*(load_variant(p)[1] for p in BUGS))
    assert failed == {c.name for c in gym_assignment.checks}, "every check is failed by some catalogued bug"


@pytest.mark.slow
def test_reference_gets_full_marks_within_the_limits(gym_assignment, tmp_path):
    start = time.monotonic()
    report = grade(fill_release(gym_assignment, tmp_path / "reference.ipynb"), gym_assignment, workers=2,
                   figures=False)
    seconds = time.monotonic() - start
    assert report.score == report.max_score, [(r.name, r.output) for r in report.results if not r.passed]
    assert seconds < gym_assignment.limits.submission_seconds / 3, seconds
    learns = [r for r in report.results if r.name.endswith("_learns")]
    assert all(len(r.data["runs"][0]) and all(m >= c.threshold for m in r.data["metrics"][:3])
               for r, c in zip(learns, (gym_assignment.check(r.name) for r in learns)))


def test_blank_release_gets_zero_with_a_message(gym_assignment):
    report = grade(gym_assignment.release, gym_assignment, workers=2, figures=False)
    assert report.score == 0
    assert all("not implemented yet" in r.output for r in report.results), [r.output for r in report.results]


def test_reference_answers_fill_every_graded_cell(gym_assignment):
    answers = reference_answers(gym_assignment)
    assert set(answers) == set(gym_assignment.graded_cells)
    assert not any("SOLUTION" in source for source in answers.values())


@pytest.mark.slow
def test_source_notebook_runs_top_to_bottom_quickly(gym_assignment, tmp_path):
    """No error, nothing on stderr (nbgrader scores such a cell 0), plots drawn, well within two minutes."""
    nb = nbformat.read(gym_assignment.source, as_version=4)
    env = {k: v for k, v in kernel_env().items() if k != "MPLBACKEND"}
    start = time.monotonic()
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute(
        env=env)
    assert time.monotonic() - start < 120
    outputs = [(c.get("id"), o) for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [cid for cid, o in outputs if o.output_type == "error"]
    assert not [(cid, o.text[:200]) for cid, o in outputs if o.output_type == "stream" and o.name == "stderr"]
    plots = {cid for cid, o in outputs if o.output_type == "display_data" and "image/png" in o.data}
    assert {"cartpole-run", "tutorial-loss", "pendulum-run"} <= plots
    printed = "".join(o.text for _, o in outputs if o.output_type == "stream")
    cartpole = re.search(r"CartPole-v1: .* the last 100 episodes ([0-9.]+)", printed)
    pendulum = re.search(r"InvertedPendulum-v5: .* the last 20 episodes ([0-9.]+)", printed)
    assert float(cartpole.group(1)) >= 475 and float(pendulum.group(1)) >= 950, printed


def test_source_has_no_outputs(gym_assignment):
    nb = nbformat.read(gym_assignment.source, as_version=4)
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in nb.cells if c.cell_type == "code")


def test_metric_is_the_mean_of_the_window(gym_assignment):
    check = gym_assignment.check("cartpole_reinforce_learns")
    returns = [10.0] * 50 + [500.0] * 100
    assert check.metric({"episode_returns": returns}) == 500.0
    assert np.isclose(check.metric({"episode_returns": returns[:120]}), (30 * 10 + 70 * 500) / 100)


def test_three_seeds_settle_the_verdict_either_way(gym_assignment):
    """The 3-of-5 rule: a correct submission is graded on three seeds, one that never learns on three budgets."""
    check = gym_assignment.check("pendulum_reinforce_learns")
    solved = {"ok": {"episode_returns": [1000.0] * 20, "curve": [1000.0] * 30}}
    stuck = {"ok": {"episode_returns": [3.0] * 20, "curve": [3.0] * 30}}
    assert not check.settled([solved, solved]) and check.settled([solved, solved, solved])
    assert not check.settled([stuck, stuck]) and check.settled([stuck, stuck, stuck])
    assert check.judge([{}] * 4, [solved, stuck, solved, solved], reference={}).passed
