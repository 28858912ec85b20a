"""The grader's side of an experiment (``autograder.trusted``): drivers run in forked workers of the grader, the
student's functions answer from a process that serves them (here a plain subprocess serving ``gradekit.channel``,
each connection from a copy of itself, as a grading kernel does). What a case's answer is when the function hangs,
exits or is missing, when the loop's own values stop being finite numbers, and when nothing serves at all."""

import os
import signal
import subprocess
import sys
import time

import pytest

from gradekit.checks import describe_error

from autograder import trusted
from autograder.config import ROOT

STUDENT = '''
import os, sys, time
sys.path.insert(0, {root!r})
import gradekit.channel


def double(x):
    return [2 * v for v in x]


def hang(x):
    time.sleep(3600)


def leave(x):
    if x[0] < 0:
        os._exit(3)
    return x


def grow(table):
    table["n"] = table.get("n", 0) + 1
    return table["n"]


def overflow(x):
    return [v * 1e39 for v in x]


def refuse(x):
    raise RuntimeError("probability tensor contains either `inf`, `nan` or element < 0")


gradekit.channel.serve(globals(), {path!r}, background=False, fork=True)
'''


def apply(fn, case):
    """A driver: the function on the case's input; the loop's own record of what it gave."""
    return {"got": fn(list(case["x"]))}


def sample(fn, case):
    """A driver sampling an action from what the function gave, as a training loop samples from a policy."""
    import torch

    return {"action": int(torch.multinomial(torch.tensor(fn(list(case["x"])), dtype=torch.float32), 1))}


def count_twice(fn, case):
    """A driver calling the same function twice with its own table."""
    table = {}
    return {"first": fn(table), "second": fn(table), "table": table}


@pytest.fixture
def served(tmp_path):
    path = str(tmp_path / "channel.sock")
    proc = subprocess.Popen([sys.executable, "-c", STUDENT.format(root=str(ROOT), path=path)], start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while not (tmp_path / "channel.sock").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        yield path
    finally:  # the server and the copies it forked (one still sleeping in `hang`): a kernel's sandbox kills them all
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_cases_answered_one_after_the_other_and_in_parallel(served):
    cases = [{"x": [1.0, 2.0]}, {"x": [3.0]}, {"x": []}]
    for workers in (1, 2):
        status, answers = trusted.run(served, apply, ["double"], cases, workers, time.monotonic() + 30)
        assert status == "ok"
        assert answers == [{"ok": {"got": [2.0, 4.0]}}, {"ok": {"got": [6.0]}}, {"ok": {"got": []}}]


def test_an_argument_comes_back_only_where_the_contract_lets_it(served):
    """``count_twice``'s module has no IN_PLACE: the function grows its own copy of the table at each call, and the
    loop's table stays as the loop left it (empty), so both calls see an empty table."""
    status, answers = trusted.run(served, count_twice, ["grow"], [{}], 1, time.monotonic() + 30)
    assert status == "ok" and answers == [{"ok": {"first": 1, "second": 1, "table": {}}}]


def test_a_function_that_hangs_is_stopped_at_the_limit(served):
    start = time.monotonic()
    status, answers = trusted.run(served, apply, ["hang"], [{"x": [1.0]}, {"x": [2.0]}], 2, start + 3)
    assert status == "timeout" and time.monotonic() - start < 6
    assert all("error" in a for a in answers)


def test_a_copy_that_exits_costs_its_case_and_the_next_case_gets_a_fresh_copy(served):
    cases = [{"x": [1.0]}, {"x": [-1.0]}, {"x": [2.0]}]
    status, answers = trusted.run(served, apply, ["leave"], cases, 1, time.monotonic() + 30)
    assert status == "ok"
    assert answers[0] == {"ok": {"got": [1.0]}} and answers[2] == {"ok": {"got": [2.0]}}
    assert answers[1]["error"]["type"] == "ProcessExit" and "stopped before it finished" in answers[1]["error"]["message"]


def test_a_missing_function_is_its_cases_error(served):
    status, answers = trusted.run(served, apply, ["nowhere"], [{"x": [1.0]}], 1, time.monotonic() + 30)
    assert status == "ok" and answers[0]["error"]["type"] == "NameError"


def test_nothing_serving_is_a_dead_kernel(tmp_path):
    start = time.monotonic()
    status, answers = trusted.run(str(tmp_path / "none.sock"), apply, ["double"], [{"x": [1.0]}], 1, start + 30)
    assert status == "died" and answers[0]["error"]["type"] == "KernelGone"
    assert time.monotonic() - start < 15


def test_the_loops_own_error_on_values_that_are_not_finite_is_not_the_functions(served, assignment):
    """Values that overflow float32 in the loop: torch.multinomial raises in the grader's worker, not in the function,
    and the check says the loop stopped; the function's own exception, in the same words, is still the function's."""
    status, answers = trusted.run(served, sample, ["overflow"], [{"x": [1.0, 2.0]}], 1,
                                  time.monotonic() + 30)
    error = answers[0]["error"]
    assert status == "ok" and error["function"] == "" and error.get("loop") == "diverged", error
    text = assignment.check("bandit_network_learns").describe(error)
    assert text.startswith("The training loop stopped, not your `pg_loss` (it raised no error)") and \
        "`pg_loss` raised" not in text, text
    _, answers = trusted.run(served, sample, ["refuse"], [{"x": [1.0]}], 1, time.monotonic() + 30)
    error = answers[0]["error"]
    assert error["function"] == "refuse" and "loop" not in error and error["where"].startswith("line ")
    assert describe_error("refuse", error).startswith("`refuse` raised RuntimeError at line ")


def positive(fn):
    """A module's contract check: the function gives numbers back."""
    if fn([1.0])[0] <= 0:
        raise ValueError("not positive")


def test_a_probe_holds_only_for_a_function_that_passes_it(served):
    """``trusted.probe``'s ``holds`` (what a drivers module's ``prepare`` asks before it spends on what the cases
    share): true for a function that passes the check, false for one that raises, breaks the check, hangs (at the
    probe's limit, and the worker is stopped) or is missing; the server goes on answering the cases afterwards."""
    limit = time.monotonic() + 30
    assert trusted.probe(served, apply, ("double",), limit)(positive)
    assert not trusted.probe(served, apply, ("refuse",), limit)(positive)
    assert not trusted.probe(served, apply, ("overflow",), limit)(lambda fn: positive(lambda x: [-v for v in fn(x)]))
    assert not trusted.probe(served, apply, ("nowhere",), limit)(positive)
    start = time.monotonic()
    assert not trusted.probe(served, apply, ("hang",), start + 2)(positive)
    assert time.monotonic() - start < 5
    status, answers = trusted.run(served, apply, ["double"], [{"x": [1.0]}], 1, time.monotonic() + 30)
    assert status == "ok" and answers == [{"ok": {"got": [2.0]}}]


def prepared_driver(fn, case):
    return {"prepared": sorted(PREPARED)}


PREPARED: list = []


def prepare(driver, cases, holds):
    """This module as a drivers module: ``prepare`` computes what the cases share only if the function holds."""
    if driver is prepared_driver and holds(positive):
        PREPARED.append(len(cases))


def test_run_lets_the_drivers_module_prepare_only_for_a_function_that_holds(served):
    """``trusted.run`` calls the drivers module's ``prepare`` with a probe of the student's functions before it forks
    the workers: a worker sees what it prepared; a function that fails the probe (a blank's NotImplementedError, a
    broken contract) gets nothing prepared and its cases run as ever."""
    PREPARED.clear()
    status, answers = trusted.run(served, prepared_driver, ["refuse"], [{}, {}], 2, time.monotonic() + 30)
    assert status == "ok" and answers == [{"ok": {"prepared": []}}] * 2 and PREPARED == []
    status, answers = trusted.run(served, prepared_driver, ["double"], [{}, {}], 2, time.monotonic() + 30)
    assert status == "ok" and answers == [{"ok": {"prepared": [2]}}] * 2 and PREPARED == [2]
