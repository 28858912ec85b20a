"""A run that diverges while it trains with the student's functions (the policy's parameters become inf or NaN) stops
in the trusted loop, not in the student's function: the feedback says that the loop stopped, names the functions it
trained with and what to look at, in the grade (the grader's trusted workers, results.json) as in the student's public
checks (in-process). A student's own exception, even with torch's words, is still "`f` raised X at line N"."""

from __future__ import annotations

import json
import linecache
import os
import subprocess
import sys

import pytest

from gradekit import protocol, public
from tests.conftest import fill_release

MULTINOMIAL = "probability tensor contains either `inf`, `nan` or element < 0"  # torch.multinomial's words
STOPPED = ("The training loop stopped, not your `pg_loss` (it raised no error): while the loop trained with your "
           "`pg_loss`")
DIVERGING = "def pg_loss(action_probs, action, reward):\n    return -1e40 * torch.log(action_probs[action]) * reward\n"
ENV = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")


@pytest.fixture(scope="module")
def record(assignment):
    return json.loads((assignment.release.parent / public.RECORD).read_text())


def cell(name: str, source: str):
    """A function defined in a notebook cell, as the public checks run it (``public.run_cells``)."""
    filename = f"<cell {name}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace: dict = {}
    exec(compile(source, filename, "exec"), namespace)  # noqa: S102
    return namespace[name]


def sample(fn, case):
    """A trusted loop: samples an action from the probabilities the student's function gave."""
    import torch

    return {"action": int(torch.multinomial(torch.tensor(fn(list(case["x"])), dtype=torch.float32), 1))}


def judged(check, fn) -> str:
    cases = [{"x": [1.0, 2.0]}]
    answers = [protocol.plain(protocol.run_case(sample, [fn], case)) for case in cases]
    return check.judge(cases, answers, None).output


def test_the_loops_error_on_non_finite_values_is_not_the_students(assignment):
    """Values that overflow float32 in the loop: torch.multinomial raises there, not in `pg_loss`."""
    check = assignment.check("bandit_network_learns")
    output = judged(check, cell("pg_loss", "def pg_loss(x):\n    return [v * 1e39 for v in x]\n"))
    assert output.startswith(STOPPED), output
    assert "`pg_loss` raised" not in output and f"RuntimeError: {MULTINOMIAL}" in output
    assert "look at the sign and the scale of your loss" in output
    chain = assignment.check("chain_reinforce_learns").describe(protocol.loop_error(RuntimeError(MULTINOMIAL)))
    assert chain.startswith("The training loop stopped, not your `discounted_returns` or `reinforce_loss` (they "
                            "raised no error): while the loop trained with your `discounted_returns` and "
                            "`reinforce_loss`, its values stopped being finite numbers"), chain
    assert "loop" not in protocol.loop_error(IndexError("index 3 is out of bounds"))  # not a divergence


def test_the_students_own_exception_is_still_theirs(assignment):
    """Even in torch's words about inf and NaN: a line of the student's raised it (a guard: as before the change)."""
    check = assignment.check("bandit_network_learns")
    output = judged(check, cell("pg_loss", f"def pg_loss(x):\n    raise RuntimeError({MULTINOMIAL!r})\n"))
    assert output == f"`pg_loss` raised RuntimeError at line 2: raise RuntimeError({MULTINOMIAL!r}): {MULTINOMIAL}"


def test_a_diverging_pg_loss_is_graded_with_the_loops_words(assignment, record, tmp_path):
    """Through the command line, as Gradescope runs it: the bandit-network check's output in results.json says that
    the training loop stopped (after the first update: the loss is infinite), not that `pg_loss` raised; the
    student's public check says the same."""
    notebook = fill_release(assignment, tmp_path / "policy_gradients.ipynb", {"pg_loss": DIVERGING})
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "autograder", "grade", str(notebook), "--results",
                           str(out / "results.json"), "--check", "bandit_network_learns"],
                          capture_output=True, text=True, env=ENV, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (test,) = json.loads((out / "results.json").read_text())["tests"]
    assert test["extra_data"]["check"] == "bandit_network_learns" and test["score"] == 0
    assert "`pg_loss` raised" not in test["output"], test["output"]
    assert test["output"].startswith(STOPPED + ", the policy's probabilities stopped being finite numbers (inf or "
                                     "NaN) after 1 update, so it could not go on."), test["output"]
    entry = next(e for e in record["checks"] if e["name"] == "bandit_network_learns")
    namespace, problems = public.run_cells({"setup": record["setup_source"], "pg_loss": DIVERGING})
    mine, _ = public.run(entry, record, namespace)
    assert not problems and mine.output == test["output"]
