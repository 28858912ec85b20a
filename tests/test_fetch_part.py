"""The optional Fetch Slide part (assignment week03_fetch_slide): the environment and its pinned versions, the
notebook's controller and cloning loop against the grader's, the exactness check's hints, the catalogue of correct
and buggy submissions, a whole grade of the reference, and the notebook top to bottom.

Tests that clone the controller or run the notebook are marked ``slow`` (they still run in ``make test``). The
behaviour check runs its seeds one at a time (``ImitationClonesController.workers``), so these grades use one core.
"""

from __future__ import annotations

import ast
import inspect
import time
from importlib.metadata import version

import nbformat
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env
from nbclient import NotebookClient

from gradekit import drivers as harness, protocol
from week03_fetch_slide import drivers as harness_fetch

from autograder import config
from autograder.reference import reference as grader_reference
from autograder.execute import kernel_env
from autograder.grade import grade
from autograder.notebook import graded_cells, reference_functions
from autograder.release import solution_lines
from tests.conftest import CATALOGUE, fill_release, load_variant, results_by_name

PART = CATALOGUE / "week03_fetch_slide"
CORRECT = sorted((PART / "correct").glob("*.py"))
BUGS = sorted((PART / "bugs").glob("*.py"))
BUG_PARAMS = [pytest.param(p, id=p.stem, marks=[pytest.mark.slow] if "imitation_clones_controller" in
                           load_variant(p)[1] else []) for p in BUGS]  # those graded by cloning are slow
LOCKED = ("setup", "controller", "policy")  # run whole; of the other code cells only the definitions


@pytest.fixture(scope="module")
def fetch(course):
    return course.assignment("week03_fetch_slide")


@pytest.fixture(scope="module")
def notebook(fetch) -> dict:
    """The source notebook's locked and graded cells, and the definitions of its other code cells (not their
    experiments), in one namespace as a student's run would have them."""
    namespace: dict = {}
    for cell in nbformat.read(fetch.source, as_version=4).cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if cell.cell_type != "code":
            continue
        tree = ast.parse(cell.source)
        if grade_id not in (*LOCKED, *fetch.graded_cells):
            tree.body = [node for node in tree.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))]
        exec(compile(tree, grade_id, "exec"), namespace)  # noqa: S102 - our own notebook
    return namespace


def test_fetch_slide_is_the_pinned_one_and_passes_check_env():
    """gymnasium-robotics 1.4.2's FetchSlide fails with mujoco >= 3.12 (in set_joint_qpos), so both are pinned."""
    assert (version("mujoco"), version("gymnasium-robotics")) == ("3.11.0", "1.4.2")
    env = harness_fetch.make_env()
    assert env.spec.max_episode_steps == harness_fetch.STEPS
    check_env(env.unwrapped, skip_render_check=True)  # no display on the grader: nothing is rendered


def test_notebook_controller_acts_like_the_graders(notebook):
    """The controller the student reads is the one the grader clones: the same action in every state of real
    episodes, and in perturbed states that reach its other branches."""
    env, rng = harness_fetch.make_env(), np.random.default_rng(0)
    states = []
    for seed in range(3):
        obs, _ = env.reset(seed=seed)
        for _ in range(harness_fetch.STEPS):
            states.append((obs["observation"], obs["desired_goal"]))
            action = harness_fetch.scripted_controller(obs["observation"], obs["desired_goal"])
            obs, *_ = env.step(action.astype(np.float32))
    states += [(o + rng.normal(0, 0.02, o.shape), g + rng.normal(0, 0.1, g.shape)) for o, g in states]
    ours = [harness_fetch.scripted_controller(o, g) for o, g in states]
    assert all(np.array_equal(a, notebook["scripted_controller"](o, g)) for a, (o, g) in zip(ours, states))
    assert all(np.array_equal(harness_fetch.policy_input(o, g), notebook["policy_input"](o, g)) for o, g in states)
    moving = sum(bool(a.any()) for a in ours)
    assert 50 < moving < len(ours) - 50, "both the moves and the waits of the controller are compared"


def test_notebook_cloning_is_the_graders(notebook, fetch):
    """Demonstrations, behaviour cloning and the settings the notebook uses are the ones the grader runs."""
    inputs, actions, wins = notebook["collect_demonstrations"](1000, 2)
    ours = harness_fetch.controller_rollouts(1000, 2)
    assert np.array_equal(inputs, ours[0]) and np.array_equal(actions, ours[1]) and tuple(wins) == ours[2]
    loss = reference_functions(fetch)["imitation_loss"]
    notebook["seed_everything"](3)
    theirs, their_losses = notebook["behaviour_cloning"](loss, inputs, actions, 2, 32, 3e-3, 16)
    harness.seed_everything(3)
    policy, losses = harness_fetch.behaviour_cloning(loss, ours[0], ours[1], 2, 32, 3e-3, 16)
    assert losses == their_losses
    assert all(torch.equal(a, b) for a, b in zip(policy.state_dict().values(), theirs.state_dict().values()))
    check = fetch.check("imitation_clones_controller")
    defaults = {k: p.default for k, p in inspect.signature(notebook["behaviour_cloning"]).parameters.items()
                if p.default is not inspect.Parameter.empty}
    assert defaults == {k: getattr(check, k) for k in ("epochs", "batch_size", "lr", "hidden")}
    source = "\n".join(c.source for c in nbformat.read(fetch.source, as_version=4).cells)
    assert f"DEMO_SEED, DEMO_EPISODES = {check.demo_seed}, {check.demos}" in source
    assert f"EVAL_SEED, EVAL_EPISODES = {check.eval_seed}," in source


def test_exactness_check_passes_the_reference_and_names_every_mistake(fetch):
    """In the grader's process: the reference passes, and each named mistake fails with its own hint."""
    check = fetch.check("imitation_loss_exact")
    reference = grader_reference(fetch)
    cases = check.cases(reference)
    expected = [{"ok": protocol.plain(reference.expected(check, case))} for case in cases]
    assert check.judge(cases, expected, reference).passed
    assert reference.mistakes[type(check)]
    for label, wrong in reference.mistakes[type(check)].items():
        answers = [protocol.plain(protocol.run_case(check.driver, [wrong], case)) for case in cases]
        result = check.judge(cases, answers, reference)
        assert not result.passed and f"Likely mistake: {label}." in result.output, (label, result.output)


def test_demonstrations_and_evaluation_episodes_must_not_overlap(fetch):
    with pytest.raises(config.ConfigError, match="must not be demonstrations"):
        config.build_check(fetch.registry.checks["imitation_clones_controller"], "imitation_clones_controller",
                           {"points": 2, "seeds": [0], "threshold": 0.2, "min_passing": 1, "demo_seed": 1000,
                            "eval_seed": 1050}, "x")


def grade_variant(fetch, tmp_path, functions: dict[str, str], only: set[str] | None = None):
    submission = fill_release(fetch, tmp_path / "submission.ipynb", functions)
    return grade(submission, fetch, only=only)


def test_the_controllers_episodes_are_collected_once_before_the_workers_fork(fetch):
    """The controller's episodes are the same for every seed and student: the grader collects them before it forks
    the cloning check's workers (``trusted.preload`` -> the drivers' ``prepare``), and a worker forked after that
    finds them collected (before: every worker and every feedback run collected them again, 17 CPU-s each). Only for
    a loss that passes the contract check (``holds``): a blank's does not, and costs no episodes."""
    import os

    from autograder import trusted

    harness_fetch.rollouts.clear()
    cases = [c | {"demos": 2, "eval_episodes": 1} for c in fetch.check("imitation_clones_controller").cases(None)]
    asked = []
    trusted.preload(harness_fetch.clone_and_evaluate, cases, holds=lambda check: asked.append(check) or False)
    assert asked == [harness_fetch.check_contract] and not harness_fetch.rollouts
    trusted.preload(harness_fetch.clone_and_evaluate, cases)
    assert len(harness_fetch.rollouts) == 2
    pid = os.fork()
    if pid == 0:  # a worker: it collects nothing
        harness_fetch.collect_rollouts = lambda *args: os._exit(1)
        harness_fetch.controller_rollouts(cases[0]["demo_seed"], 2), harness_fetch.controller_rollouts(
            cases[0]["eval_seed"], 1)
        os._exit(0)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    trusted.preload(harness_fetch.clone_and_evaluate, cases, holds=lambda check: 1 / 0)  # collected: no probe
    trusted.preload(harness_fetch.call_imitation_loss, cases)  # another driver of the module: nothing to collect
    assert len(harness_fetch.rollouts) == 2


def test_a_blank_loss_costs_no_controller_episodes(fetch, tmp_path):
    """The blank release graded on the cloning check: the probe of ``check_contract`` fails (NotImplementedError), so
    the grader collects no episodes (before: ~17 CPU-s for a loss that never runs, a blank grade 3.4x its cost before
    the loops left the kernel), and the check says what the student's function raised, as before."""
    harness_fetch.rollouts.clear()
    submission = tmp_path / "blank.ipynb"
    submission.write_bytes(fetch.release.read_bytes())
    report = grade(submission, fetch, only={"imitation_clones_controller"})
    (result,) = report.results
    assert result.score == 0 and "NotImplementedError" in result.output, result.output
    assert not harness_fetch.rollouts


@pytest.mark.slow
def test_reference_gets_full_marks_within_the_budget(fetch, tmp_path):
    start = time.monotonic()
    report = grade_variant(fetch, tmp_path, {})
    assert report.score == report.max_score == 5, [r.output for r in report.results]
    assert time.monotonic() - start < fetch.limits.submission_seconds / 2


@pytest.mark.parametrize("variant", CORRECT, ids=[p.stem for p in CORRECT])
def test_correct_variant_passes_the_exactness_check(fetch, tmp_path, variant):
    """Graded in a kernel. The behaviour check is the reference's grade above: a correct form has the reference's
    gradients up to float rounding, so it trains the same clones in distribution (calibrated over 150 seeds)."""
    functions, _, _ = load_variant(variant)
    results = results_by_name(grade_variant(fetch, tmp_path, functions, {"imitation_loss_exact"}))
    assert results["imitation_loss_exact"].passed, results["imitation_loss_exact"].output


@pytest.mark.parametrize("variant", BUG_PARAMS)
def test_bug_loses_marks_on_the_right_check(fetch, tmp_path, variant):
    """Each bug is graded on the checks it must fail (the others may pass: Adam learns the same mean from several
    wrong losses, which is why exactness decides)."""
    functions, fails, hint = load_variant(variant)
    assert fails and hint, f"{variant.name} must say which checks it fails and the hint it gets"
    results = results_by_name(grade_variant(fetch, tmp_path, functions, set(fails)))
    for name in fails:
        assert results[name].score == 0 and results[name].output.strip(), (name, results[name].output)
    seen = results["imitation_loss_exact"].full_output  # the verdict and the first wrong case, as the page shows them
    assert hint in seen, seen
    feedback = "\n".join(r.full_output for r in results.values())
    assert not [line for line in solution_lines(fetch.source) if len(line) > 12 and line in feedback]


def test_catalogue_covers_the_graded_function(fetch):
    for folder in (CORRECT, BUGS):
        assert set().union(*(load_variant(p)[0] for p in folder)) == set(fetch.graded_cells)
    assert any("imitation_clones_controller" in load_variant(p)[1] for p in BUGS)


@pytest.mark.slow
def test_source_notebook_runs_top_to_bottom(fetch, tmp_path):
    """With the reference solutions, in a few minutes, without errors or stderr, with its plots; no outputs are
    committed."""
    nb = nbformat.read(fetch.source, as_version=4)
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in nb.cells if c.cell_type == "code")
    env = {k: v for k, v in kernel_env().items() if k != "MPLBACKEND"}
    start = time.monotonic()
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute(
        env=env)
    assert time.monotonic() - start < 600
    outputs = [(c.get("id"), o) for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [cid for cid, o in outputs if o.output_type == "error"]
    assert not [(cid, o.text[:200]) for cid, o in outputs if o.output_type == "stream" and o.name == "stderr"]
    plotted = {cid for cid, o in outputs if o.output_type == "display_data" and "image/png" in o.data}
    assert {"behaviour-cloning", "finetune-plots"} <= plotted
    text = "".join(o.text for cid, o in outputs if o.output_type == "stream" and cid == "finetune-plots")
    assert "clone + REINFORCE" in text and "REINFORCE from scratch" in text


def test_release_notebook_keeps_the_graded_signature(fetch):
    release = graded_cells(nbformat.read(fetch.release, as_version=4))
    cell = release["imitation_loss"][0]
    assert cell.source.startswith("def imitation_loss(") and "raise NotImplementedError()" in cell.source
    assert cell.metadata["nbgrader"]["solution"] and release["controller"][0].metadata["nbgrader"]["locked"]
    pasted = release["week3-functions"][0].source
    assert pasted.count("raise NotImplementedError()") == 2, "the Week 3 solutions must not be in the release"
