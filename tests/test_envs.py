"""The grader's environments follow Gymnasium's contract and the lecture's dynamics as the notebook defines them."""

import itertools

import nbformat
import numpy as np
from gymnasium.utils.env_checker import check_env

from week03_policy_gradients.envs import BanditEnv, ChainEnv
from autograder.notebook import graded_cells


def notebook_class(assignment, cell_id, name):
    nb = nbformat.read(assignment.source, as_version=4)
    namespace = {"np": np}
    exec(graded_cells(nb)[cell_id][0].source, namespace)
    return namespace[name]


def test_gymnasium_contract():
    check_env(BanditEnv(), skip_render_check=True)
    check_env(ChainEnv(), skip_render_check=True)


def test_chain_matches_the_notebook(assignment):
    Lecture = notebook_class(assignment, "chain-env", "EnvironmentSequence")
    for actions in itertools.product(range(3), repeat=5):
        ours, theirs = ChainEnv(max_steps=100), Lecture()
        ours.reset()
        for a in actions:
            s1, r1, done1 = theirs.step(a)
            s2, r2, terminated, _, _ = ours.step(a)
            assert (int(s1), r1, done1) == (s2, r2, terminated)
            if done1:
                break


def test_bandit_matches_the_notebook(assignment):
    Lecture = notebook_class(assignment, "bandit-env", "EnvironmentSimple")
    ours, theirs = BanditEnv(), Lecture()
    ours.reset()
    for a in range(3):
        s1, r1, done1 = theirs.step(a)
        s2, r2, terminated, _, _ = ours.step(a)
        assert (s1, r1, done1) == (s2, r2, terminated)


def test_chain_episodes_are_bounded():
    env = ChainEnv(max_steps=7)
    env.reset()
    steps = [env.step(0) for _ in range(7)]
    assert steps[-1][3] and not any(s[3] for s in steps[:-1])
