"""Hostile and broken submissions: each gets a grade in bounded time, loses the marks of what it broke and keeps the rest.

Limits are shortened here (10 s a cell) so that the cases that must hit them stay quick; the bound each test asserts
is the limit plus the cost of restarting the kernel.
"""

import dataclasses
import json
import os
import subprocess
import sys
import time

import nbformat
import pytest

from autograder.grade import grade
from autograder.results import gradescope
from tests.conftest import fill_release, results_by_name

CELL_SECONDS = 10
CORRECT_RETURNS = "discounted_returns_exact"


@pytest.fixture(scope="module")
def strict(assignment):
    limits = dataclasses.replace(assignment.limits, cell_seconds=CELL_SECONDS, submission_seconds=120)
    return dataclasses.replace(assignment, limits=limits)


def grade_with(strict, tmp_path, answers, only, blank=(), workers=1):
    path = fill_release(strict, tmp_path / "hostile.ipynb", answers, blank)
    start = time.monotonic()
    report = grade(path, strict, only=set(only), workers=workers)
    return results_by_name(report), time.monotonic() - start, report


@pytest.mark.parametrize("code, message", [
    ("def pg_loss(action_probs, action, reward):\n    while True:\n        pass\n", "Not finished within the time"),
    ("import time\ntime.sleep(600)\n\n\ndef pg_loss(action_probs, action, reward):\n    return 0\n",
     "took longer than the time limit"),
    ("import sys\nsys.exit()\n\n\ndef pg_loss(action_probs, action, reward):\n    return 0\n", "SystemExit"),
], ids=["infinite_loop", "ten_minute_sleep_at_top_level", "sys_exit_at_top_level"])
def test_broken_cell_fails_alone_in_bounded_time(strict, tmp_path, code, message):
    results, seconds, _ = grade_with(strict, tmp_path, {"pg_loss": code}, ["pg_loss_exact", CORRECT_RETURNS])
    assert results["pg_loss_exact"].score == 0 and message in results["pg_loss_exact"].output
    assert results[CORRECT_RETURNS].passed
    assert seconds < CELL_SECONDS + 30


def test_os_exit_inside_a_graded_function(strict, tmp_path):
    """Each call is answered by a copy of the kernel: a copy that exits costs its case, the next case gets a fresh
    copy, and the kernel itself lives on (no restart)."""
    code = "def reinforce_loss(log_probs, returns, baseline=0.0):\n    import os\n    os._exit(3)\n"
    results, seconds, report = grade_with(strict, tmp_path, {"reinforce_loss": code},
                                          ["reinforce_loss_exact", CORRECT_RETURNS])
    assert results["reinforce_loss_exact"].score == 0 and "stopped" in results["reinforce_loss_exact"].output
    assert results[CORRECT_RETURNS].passed
    assert report.extra["kernel_restarts"] == 0


def test_os_exit_in_a_seed_run_in_parallel(strict, tmp_path):
    """With seeds forked in parallel, a copy that exits costs its seed only: the kernel lives on, no restart."""
    code = ("def discounted_returns(rewards, gamma):\n    import os\n    if len(rewards) > 30:\n        os._exit(3)\n"
            "    out, g = [], 0.0\n    for r in reversed(rewards):\n        g = r + gamma * g\n        out.append(g)\n"
            "    return out[::-1]\n")
    results, _, report = grade_with(strict, tmp_path, {"discounted_returns": code},
                                    ["chain_reinforce_learns", "pg_loss_exact"], workers=2)
    chain = results["chain_reinforce_learns"]
    assert not chain.passed and "stopped before it finished" in chain.output
    assert results["pg_loss_exact"].passed and report.extra["kernel_restarts"] == 0


def test_endless_seed_run_in_parallel_is_stopped(strict, tmp_path):
    code = "def reinforce_loss(log_probs, returns, baseline=0.0):\n    while True:\n        pass\n"
    results, seconds, report = grade_with(strict, tmp_path, {"reinforce_loss": code},
                                          ["chain_reinforce_learns", CORRECT_RETURNS], workers=2)
    assert "Not finished within the time limit" in results["chain_reinforce_learns"].output
    assert results[CORRECT_RETURNS].passed and seconds < CELL_SECONDS + 30
    assert report.extra["kernel_restarts"] == 1


def test_forty_gigabyte_allocation(strict, tmp_path):
    code = ("def discounted_returns(rewards, gamma):\n"
            "    buffer = np.ones(40 * 2**30 // 8)\n    return buffer[:len(rewards)]\n")
    results, seconds, _ = grade_with(strict, tmp_path, {"discounted_returns": code},
                                     [CORRECT_RETURNS, "pg_loss_exact"])
    assert results[CORRECT_RETURNS].score == 0 and "MemoryError" in results[CORRECT_RETURNS].output
    assert results["pg_loss_exact"].passed


def test_fifty_megabytes_of_print(strict, tmp_path):
    code = ("print('x' * 50_000_000)\n\n\ndef pg_loss(action_probs, action, reward):\n"
            "    print('y' * 1_000_000)\n    return -reward * torch.log(action_probs[action])\n")
    results, seconds, report = grade_with(strict, tmp_path, {"pg_loss": code}, ["pg_loss_exact"])
    assert results["pg_loss_exact"].passed
    assert len(json.dumps(gradescope(report))) < 100_000
    assert seconds < 60


def test_patching_comparisons_and_grader_modules_does_not_help(strict, tmp_path):
    code = '''import numpy, torch, math
import gradekit.checks as checks, gradekit.protocol as protocol, week03_policy_gradients.drivers as drivers
numpy.allclose = torch.allclose = math.isclose = lambda *a, **k: True
checks.ExactCheck.judge = lambda *a, **k: None
drivers.call_update = lambda fn, case: {"shape": case["shape"], "logits": case["logits"], "in_place": False}
protocol.run_case = lambda *a, **k: {"ok": {"shape": [3], "logits": [0.0, 0.0, 0.0], "in_place": False}}


def policy_gradient_update(logits, action, reward, lr):
    return logits
'''
    results, _, _ = grade_with(strict, tmp_path, {"policy_gradient_update": code},
                               ["policy_gradient_update_exact", "bandit_table_learns"])
    assert results["policy_gradient_update_exact"].score == 0
    assert results["bandit_table_learns"].score == 0


def test_edited_and_deleted_locked_cells_are_reported_not_restored(strict, tmp_path):
    path = fill_release(strict, tmp_path / "s.ipynb")
    nb = nbformat.read(path, as_version=4)
    setup = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "setup")
    setup.source = "import numpy as np  # students broke the imports\n"
    nb.cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") != "chain-env"]
    nbformat.write(nb, path)
    report = grade(path, strict, only={"pg_loss_exact"})
    assert report.score == report.max_score, "the grader runs the instructor's setup cell, not the edited copy"
    assert set(report.extra["locked_cells_changed"]) == {"locked cell 'setup' was edited",
                                                          "locked cell 'chain-env' was deleted"}
    assert "Read-only cells were changed" in gradescope(report)["output"]
    assert nbformat.read(path, as_version=4).cells == nb.cells, "the submission file is left as it was"


def test_no_process_is_left_behind(strict, tmp_path):
    marker = "987654"
    code = (f"def pg_loss(action_probs, action, reward):\n    import subprocess, os\n"
            f"    subprocess.Popen(['sleep', '{marker}'])\n    os._exit(1)\n")
    grade_with(strict, tmp_path, {"pg_loss": code}, ["pg_loss_exact"])
    time.sleep(0.5)
    survivors = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if marker.encode() in f.read():
                    survivors.append(pid)
        except OSError:
            pass
    assert not survivors


def test_grade_command_writes_results_even_when_the_grader_fails(assignment, tmp_path):
    """An internal error still leaves a results.json that says so (otter-grader's `finally` habit)."""
    bad_config = tmp_path / "course.toml"
    text = open(assignment.root / "course.toml").read().replace('setup_cell = "setup"', 'setup_cell = "nope"')
    bad_config.write_text(text)
    for sub in ("source", "release", "assignments"):
        os.symlink(assignment.root / sub, tmp_path / sub)
    out = tmp_path / "results.json"
    proc = subprocess.run([sys.executable, "-m", "autograder", "--config", str(bad_config), "grade",
                           str(assignment.release), "--results", str(out)], capture_output=True, text=True)
    assert proc.returncode != 0
    data = json.loads(out.read_text())
    assert data["score"] == 0 and data["tests"][0]["name"] == "Autograder error"


def test_jail_hides_the_reference_and_protects_the_disk(strict, tmp_path):
    """Copying the reference from disk, or writing to the grader or elsewhere, fails inside the kernel."""
    from autograder import sandbox

    if sandbox.probe().level != "full":
        pytest.skip("this machine does not allow bubblewrap's namespaces; see tests/test_sandbox.py for the fallback")
    victim = tmp_path / "other-student-results.json"
    victim.write_text('{"score": 7}')
    code = f'''def pg_loss(action_probs, action, reward):
    import json
    for target in ({str(victim)!r}, {str(strict.root / "autograder" / "pwned.py")!r}):
        try:
            open(target, "w").write("0")
        except OSError:
            pass
    try:
        cells = json.load(open({str(strict.source)!r}))["cells"]
        code = next("".join(c["source"]) for c in cells if c["metadata"]["nbgrader"].get("grade_id") == "pg_loss")
        namespace = {{"torch": torch}}
        exec(code, namespace)
        return namespace["pg_loss"](action_probs, action, reward)
    except OSError:
        return -reward * action_probs[action]
'''
    report = grade(fill_release(strict, tmp_path / "s.ipynb", {"pg_loss": code}), strict, only={"pg_loss_exact"})
    assert report.extra["isolation"]["level"] == "full"
    assert report.score == 0, "the reference could be read from disk"
    assert victim.read_text() == '{"score": 7}'
    assert not (strict.root / "autograder" / "pwned.py").exists()
