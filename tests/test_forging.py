"""Forging the records a verdict reads: a submission whose ``discounted_returns`` implements nothing (it returns zeros)
tries to pass the two behaviour checks that train with it, each test one way of forging, from its own process.

The loops run on the grader's side (``autograder.trusted``) and the kernel only answers calls to the student's
functions, so none of these reaches the loop: each test asserts 0 points on both chain checks, and that the checks the
forging does not concern keep their points. Before the loops left the kernel (main at 119dcb5), the first four forged
a pass of ``chain_reinforce_learns`` (and the first three of ``chain_baseline_learns`` too); the argument one passed
through the channel's stand-ins until they wrote back only what a function's contract lets it change in place.
"""

import dataclasses

import pytest

from autograder.grade import grade
from tests.conftest import fill_release, results_by_name

BEHAVIOUR = ("chain_reinforce_learns", "chain_baseline_learns")
UNTOUCHED = ("reinforce_loss_exact", "bandit_table_learns")  # checks that do not use discounted_returns

NOTHING = '''

def discounted_returns(rewards, gamma):
    return [0.0] * len(rewards)
'''

FORGED_RUN = '''
def _forged_run(*args):
    n = args[-1]["episodes"]
    return {"episode_returns": [1.0] * n, "losses": [0.0] * n,
            "weights": {"plain": {"n": 100, "sum": 0.0, "sumsq": 100.0},
                        "baselined": {"n": 100, "sum": 0.0, "sumsq": 1.0}}}
'''

ATTACKS = {
    # the content package's drivers, replaced in the kernel's modules before any check runs
    "driver_modules": FORGED_RUN + '''
import importlib
_drivers = importlib.import_module("week03_policy_gradients.drivers")
_drivers.chain_run = _drivers.chain_reinforce_run = _drivers.chain_baseline_run = _forged_run
''' + NOTHING,
    # no code outside the def: up the caller's frames to the loop, whose records are rewritten in place
    "caller_frames": '''
def discounted_returns(rewards, gamma):
    import sys
    frame = sys._getframe(1)
    while frame is not None:
        seen = frame.f_locals
        if isinstance(seen.get("episode_returns"), list):
            seen["episode_returns"][:] = [1.0] * len(seen["episode_returns"])
        if isinstance(seen.get("weights"), dict) and "plain" in seen["weights"]:
            seen["weights"]["plain"].update(n=1, sum=0.0, sumsq=1e6)
            seen["weights"]["baselined"].update(n=1, sum=0.0, sumsq=0.0)
        frame = frame.f_back
    return [0.0] * len(rewards)
''',
    # what the kernel shows the grader, rewritten on its way out
    "display_hook": FORGED_RUN + '''
from IPython import get_ipython
_publisher = get_ipython().display_pub
_publish = _publisher.publish


def _forge(answer):
    ok = answer.get("ok") if isinstance(answer, dict) else None
    if isinstance(ok, dict) and "episode_returns" in ok:
        ok.update(_forged_run({"episodes": len(ok["episode_returns"])}))
    return answer


def _forging_publish(data, *args, **kwargs):
    data = {key: [_forge(a) for a in value] if key.startswith("application/vnd.autograder") and isinstance(value, list)
            else value for key, value in data.items()}
    return _publish(data, *args, **kwargs)


_publisher.publish = _forging_publish
''' + NOTHING,
    # the loop's sampling, patched: right, right, then 'center' in the last state, every episode (return 0.9)
    "patched_torch": '''
import itertools
import torch
_script = itertools.cycle([2, 2, 1])
torch.multinomial = lambda probs, num_samples, *args, **kwargs: torch.tensor([next(_script)])
''' + NOTHING,
    # an argument the contract does not let change: the loop's own list of rewards, which it sums into its record
    "argument_in_place": '''
def discounted_returns(rewards, gamma):
    rewards[:] = [1.0] + [0.0] * (len(rewards) - 1)
    return [0.0] * len(rewards)
''',
}


MALFORMED = '''
import gradekit.channel as _channel
_reply = _channel.Server.reply


def _garbled(self, sock, answer):  # the kernel's answers to calls of discounted_returns: a frame that is not JSON
    if answer.get("fn") == "discounted_returns":
        return sock.sendall(_channel.PREFIX.pack(12, 0) + b"not json {{{")
    return _reply(self, sock, answer)


_channel.Server.reply = _garbled
''' + NOTHING


@pytest.fixture(scope="module")
def quick(assignment):
    limits = dataclasses.replace(assignment.limits, cell_seconds=60, submission_seconds=300)
    return dataclasses.replace(assignment, limits=limits)


def graded(quick, tmp_path, code, only=BEHAVIOUR + UNTOUCHED, workers=2):
    path = fill_release(quick, tmp_path / "forging.ipynb", {"discounted_returns": code})
    return results_by_name(grade(path, quick, only=set(only), workers=workers, figures=False))


@pytest.mark.parametrize("attack", ATTACKS)
def test_forging_from_the_students_process_gets_no_behaviour_point(quick, tmp_path, attack):
    results = graded(quick, tmp_path, ATTACKS[attack])
    assert {name: results[name].score for name in BEHAVIOUR} == {name: 0 for name in BEHAVIOUR}, \
        {name: results[name].output for name in BEHAVIOUR}
    assert all(results[name].passed for name in UNTOUCHED), {name: results[name].output for name in UNTOUCHED}


def test_the_same_submission_without_forging_also_gets_none(quick, tmp_path):
    """The control: implementing nothing is what the forging had to hide."""
    results = graded(quick, tmp_path, NOTHING, only=BEHAVIOUR)
    assert all(results[name].score == 0 for name in BEHAVIOUR)


@pytest.mark.parametrize("code, message", [
    ("def discounted_returns(rewards, gamma):\n    import numpy\n    return numpy.zeros(20_000_000)\n",
     "cannot be sent to the grader: more than 67108864 bytes"),
    ("def discounted_returns(rewards, gamma):\n    return object()\n", "cannot be sent to the grader"),
    (MALFORMED, "Malformed"),
    ("def discounted_returns(rewards, gamma):\n    import time\n    time.sleep(3600)\n", "Not finished"),
], ids=["oversized", "not_a_value", "malformed_frames", "after_the_deadline"])
def test_answers_that_cannot_be_read_fail_their_check_only(quick, tmp_path, code, message):
    """Oversized, unreadable or late answers are an error of the checks that call the function, with what happened;
    the other checks keep their points."""
    quick = dataclasses.replace(quick, limits=dataclasses.replace(quick.limits, cell_seconds=15))
    results = graded(quick, tmp_path, code, only=("chain_reinforce_learns", *UNTOUCHED))
    assert results["chain_reinforce_learns"].score == 0
    assert message in results["chain_reinforce_learns"].output, results["chain_reinforce_learns"].output
    assert all(results[name].passed for name in UNTOUCHED), {name: results[name].output for name in UNTOUCHED}


NUMPY_FORGING = '''
import numpy as _np
_np.random.rand = lambda *shape: _np.array([[100.0], [0.0], [0.0]])  # the bandit's first logits: P(L) = 1 already


def policy_gradient_update(logits, action, reward, lr):
    return logits
'''


def test_patching_numpy_in_the_kernel_does_not_reach_the_loop(quick, tmp_path):
    """An update that implements nothing, and numpy's ``random.rand`` patched so that the bandit's loop would draw
    first logits that already prefer the best arm: before, ``bandit_table_learns`` passed (its loop drew them in the
    kernel); now the loop's numpy is the grader's. The checks that do not use the update keep their points."""
    path = fill_release(quick, tmp_path / "numpy.ipynb", {"policy_gradient_update": NUMPY_FORGING})
    results = results_by_name(grade(path, quick, only={"bandit_table_learns", "reinforce_loss_exact",
                                                       "chain_reinforce_learns"}, workers=2, figures=False))
    assert results["bandit_table_learns"].score == 0, results["bandit_table_learns"].output
    assert results["reinforce_loss_exact"].passed and results["chain_reinforce_learns"].passed
