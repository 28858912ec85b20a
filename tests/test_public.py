"""The student's public checks: the grader's rules and messages on the public cases, from recorded values; the
release holds no reference code; they run from a notebook cell and from the command line."""

import json
import shutil
import subprocess
import sys

import nbformat
import pytest
from nbclient import NotebookClient

from gradekit import protocol as harness, public
from gradekit.checks import ExactCheck

from autograder.execute import kernel_env
from autograder.reference import reference as grader_reference
from autograder.notebook import graded_cells
from autograder.release import leaks, solution_lines
from tests.conftest import CATALOGUE, fill_release, load_variant


@pytest.fixture(scope="module")
def record(assignment):
    return json.loads((assignment.release.parent / public.RECORD).read_text())


@pytest.fixture
def release_copy(assignment, tmp_path):
    """The release folder as a student gets it: notebook, autograder/ and public_checks.json."""
    folder = tmp_path / "release"
    shutil.copytree(assignment.release.parent, folder, ignore=shutil.ignore_patterns("__pycache__"))
    return folder


def functions_of(sources: dict[str, str]) -> dict:
    namespace: dict = {}
    exec("import numpy as np, torch, torch.nn as nn, torch.nn.functional as F", namespace)  # the setup cell's names
    for source in sources.values():
        exec(source, namespace)
    return namespace


@pytest.mark.parametrize("path", sorted((CATALOGUE / "bugs").glob("*.py")), ids=lambda p: p.stem)
def test_public_messages_are_the_graders_on_the_public_cases(assignment, record, path):
    """For every catalogue bug: the public check's verdict and message equal what the grader's check says about the
    same cases, judged against the reference and the known mistakes."""
    sources = load_variant(path)[0]
    namespace = functions_of(sources)
    reference = grader_reference(assignment)
    compared = 0
    for entry in record["checks"]:
        check = assignment.check(entry["name"])
        if not isinstance(check, ExactCheck) or not set(check.functions) & set(sources):
            continue
        answers = [harness.plain(harness.run_case(check.driver, [namespace[f] for f in check.functions], case))
                   for case in entry["cases"]]
        graders = check.judge(entry["cases"], answers, reference)
        mine, _ = public.run(entry, record, namespace)
        assert (mine.passed, mine.output) == (graders.passed, graders.output)
        compared += 1
    assert compared


def test_record_holds_no_reference_code(assignment, record):
    """Only numbers and messages: no solution line, no known mistake module, nothing of the source's code cells."""
    assert leaks(assignment.source, assignment.release) == []
    shipped = {p.name for p in assignment.release.parent.iterdir()}
    assert shipped == {assignment.notebook, "public_checks.json", "requirements.txt", "gradekit", assignment.content.name}
    assert not list(assignment.release.parent.rglob("mistakes.py")) and "autograder" not in shipped
    text = json.dumps(record)
    assert not [line for line in solution_lines(assignment.source) if len(line) > 12 and line in text]
    assert record["hidden"] == [{"name": "baseline_reduces_variance", "functions": ["reinforce_loss"],
                                 "title": "reinforce_loss: a baseline lowers the variance of the gradient estimate"}]


def test_leak_check_covers_the_shipped_files(assignment, release_copy):
    leaked = sorted(solution_lines(assignment.source))[0]
    with open(release_copy / assignment.content.name / "checks.py", "a") as f:
        f.write(f"\n{leaked}\n")
    shutil.copy(assignment.source.parent / "mistakes.py", release_copy / assignment.content.name)
    problems = leaks(assignment.source, release_copy / assignment.notebook)
    assert any(leaked in p and "checks.py" in p for p in problems)
    assert any("mistakes.py" in p for p in problems)


def student_env() -> dict:
    """A student's environment: nothing of the course repository on the import path (the release folder has all)."""
    return {k: v for k, v in kernel_env().items() if k not in ("MPLBACKEND", "PYTHONPATH")}


def run_cli(folder, *args):
    return subprocess.run([sys.executable, "-m", "gradekit", *args], cwd=folder, capture_output=True,
                          text=True, timeout=300, env=student_env())


def test_cli_passes_the_reference_and_says_hidden_checks_exist(assignment, release_copy):
    fill_release(assignment, release_copy / "mine.ipynb")
    proc = run_cli(release_copy, "mine.ipynb")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Hidden checks exist" in proc.stdout and "All public checks passed." in proc.stdout
    assert proc.stdout.count("✓ passed") == 9
    assert sorted(p.name for p in (release_copy / "public-check-plots").iterdir()) == [
        "bandit_network_learns.png", "bandit_table_learns.png", "chain_baseline_learns.png",
        "chain_reinforce_learns.png"]


def test_cli_names_the_mistake_of_one_part(assignment, release_copy):
    sources, _, hint = load_variant(CATALOGUE / "bugs" / "returns_off_by_one.py")
    fill_release(assignment, release_copy / "mine.ipynb", sources)
    proc = run_cli(release_copy, "mine.ipynb", "--part", "discounted_returns")
    assert proc.returncode == 1
    assert "✗ failed  discounted_returns: G_t" in proc.stdout and hint in proc.stdout
    assert "expected: [2.75, 3.5 , 3.  ]" in proc.stdout
    assert "pg_loss" not in proc.stdout  # only the part asked for
    # the grader-only check of reinforce_loss (a baseline lowers the variance) is not this part's
    assert "a baseline lowers the variance" not in proc.stdout and "Grader-only checks" not in proc.stdout
    assert "Public checks for Week 3: Policy Gradients: 3 checks." in proc.stdout
    assert "runs 30 random cases of these functions" in proc.stdout and "(2 points when graded)" in proc.stdout


def test_wording_counts_one_point_one_check_and_a_parts_own_hidden_checks(record):
    """"1 point", not "1 points"; a part's header names the grader-only checks of that part only."""
    one = public.report(public.checks.CheckResult("x", "x: learns", 1, 1, "Passed."))
    assert "(1 point when graded)" in one and "(2 points when graded)" in public.report(
        public.checks.CheckResult("y", "y: exact", 0, 2, "Wrong."))
    assert "(0.5 points when graded)" in public.report(public.checks.CheckResult("z", "z", 0, 0.5, "Wrong."))
    baseline = "reinforce_loss: a baseline lowers the variance of the gradient estimate"
    for part, listed in (("discounted_returns", False), ("reinforce_loss", True), (None, True),
                         ("baseline_reduces_variance", True), ("pg_loss_exact", False)):
        text = public.header(record, public.selected(record, part) if part != "baseline_reduces_variance" else [],
                             part)
        assert (baseline in text) == listed, (part, text)
    text = public.header(record, public.selected(record, "bandit_table_learns"), "bandit_table_learns")
    assert ": 1 check. " in text and "check(s)" not in text
    assert ": 9 checks. " in public.header(record, public.selected(record, None))


def test_cli_reports_a_broken_cell_and_a_missing_record(assignment, release_copy):
    fill_release(assignment, release_copy / "mine.ipynb", {"pg_loss": "def pg_loss(action_probs, action, reward)\n"})
    proc = run_cli(release_copy, "mine.ipynb", "--part", "pg_loss")
    assert "your `pg_loss` cell failed to run on its own: SyntaxError" in proc.stdout
    assert "`pg_loss` is not defined: run its cell first." in proc.stdout
    (release_copy / public.RECORD).unlink()
    proc = run_cli(release_copy, "mine.ipynb")
    assert proc.returncode == 2 and "public_checks.json not found" in proc.stderr


def test_one_line_in_the_notebook(assignment, release_copy):
    """A student runs the release notebook's setup and graded cells, then the check cell under pg_loss."""
    nb = nbformat.read(fill_release(assignment, release_copy / "mine.ipynb"), as_version=4)
    keep = {assignment.setup_cell, *assignment.graded_cells}
    nb.cells = [c for c in nb.cells if c.get("id") in keep] + [c for c in nb.cells if c.get("id") == "check-pg-loss"]
    assert nb.cells[-1].source.endswith('check("pg_loss")') and set(assignment.graded_cells) <= set(graded_cells(nb))
    env = student_env()
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(release_copy)}}).execute(
        env=env)
    outputs = nb.cells[-1].outputs
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "✓ passed  pg_loss: the policy-gradient loss of one step" in text
    assert "✓ passed  pg_loss trains the policy network on the bandit" in text and "Hidden checks exist" in text
    assert sum("image/png" in o.get("data", {}) for o in outputs) == 1  # the bandit's learning curves


def test_a_helper_from_another_cell_fails_here_as_in_the_grade(assignment, release_copy):
    """The in-notebook check runs each graded cell on its own, as the grader does: a function that leans on a helper
    defined in another cell works in the student's session but fails the check, with the grader's NameError."""
    helper = nbformat.v4.new_code_cell("def _log(p):\n    return torch.log(p)\n")
    uses = "def pg_loss(action_probs, action, reward):\n    return -reward * _log(action_probs[action])\n"
    nb = nbformat.read(fill_release(assignment, release_copy / "mine.ipynb", {"pg_loss": uses}), as_version=4)
    keep = {assignment.setup_cell, *assignment.graded_cells}
    nb.cells = ([c for c in nb.cells if c.get("id") == assignment.setup_cell] + [helper] +
                [c for c in nb.cells if c.get("id") in keep - {assignment.setup_cell}] +
                [c for c in nb.cells if c.get("id") == "check-pg-loss"])
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(release_copy)}}).execute(
        env=student_env())
    text = "".join(o.get("text", "") for o in nb.cells[-1].outputs if o.output_type == "stream")
    assert "✗ failed  pg_loss: the policy-gradient loss of one step" in text
    assert "NameError" in text and "_log" in text


def test_the_students_functions_are_called_with_the_graders_semantics():
    """``copying``: copies of the arguments and of the result, as the channel carries them; only the arguments the
    contract lets a function update in place come back; tensors that require grad are the caller's (the gradient
    flows); a result that cannot cross is the same error as in the grade."""
    import numpy as np
    import torch

    from gradekit.channel import copying
    from gradekit.drivers import ContractError

    def meddle(rewards, table, logits):
        rewards[:] = [9.0] * len(rewards)
        table[1] = 2.0
        logits += 1
        return logits

    rewards, table, logits = [1.0, 2.0], {0: 0.5}, np.zeros((3, 1))
    returned = copying(meddle, in_place=(1, 2))(rewards, table, logits)
    assert rewards == [1.0, 2.0] and table == {0: 0.5, 1: 2.0} and logits.tolist() == [[1.0]] * 3
    assert returned is not logits and returned.tolist() == [[1.0]] * 3
    x = torch.ones(2, requires_grad=True)
    copying(lambda t: (t * 3).sum())(x).backward()
    assert x.grad.tolist() == [3.0, 3.0]
    with pytest.raises(ContractError, match="cannot be sent to the grader"):
        copying(lambda: object())()


def test_a_function_that_forges_through_its_argument_fails_the_public_check_as_the_grade(assignment, record):
    """A ``discounted_returns`` that returns zeros and rewrites the loop's own list of rewards (so that, in one
    process, the loop records a return of 1 each episode) fails the public behaviour check, as it fails the grade
    (tests/test_forging.py): the loop keeps its own rewards."""
    namespace = functions_of({"discounted_returns": "def discounted_returns(rewards, gamma):\n"
                                                    "    rewards[:] = [1.0] + [0.0] * (len(rewards) - 1)\n"
                                                    "    return [0.0] * len(rewards)\n"})
    namespace["reinforce_loss"] = grader_reference(assignment).functions["reinforce_loss"]
    entry = next(e for e in record["checks"] if e["name"] == "chain_reinforce_learns")
    result, _ = public.run(entry, record, namespace)
    assert not result.passed, result.output
    unguarded = [harness.run_case(assignment.check(entry["name"]).driver, [namespace["discounted_returns"],
                                                                          namespace["reinforce_loss"]], case)
                 for case in entry["cases"][:1]]
    assert min(unguarded[0]["ok"]["episode_returns"][-50:]) == 1.0  # what it forged when called in place
