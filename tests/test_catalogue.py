"""Correct variants get full marks; realistic bugs lose marks on the check that names their mistake.

Each catalogue file replaces one or two graded cells of an otherwise reference-filled release; the submission is graded
end to end (kernel and all) on every check that touches the replaced functions.
"""

from pathlib import Path

import pytest

from autograder.grade import grade
from autograder.release import solution_lines
from tests.conftest import (CATALOGUE, assert_outputs_valid, checks_touching, fill_release, load_variant,
                            results_by_name, variant_scores)

CORRECT = sorted((CATALOGUE / "correct").glob("*.py"))
BUGS = sorted((CATALOGUE / "bugs").glob("*.py"))


def grade_variant(assignment, tmp_path: Path, variant: Path):
    """Grade a catalogue variant on the checks it touches, and write every output of its grade (each valid)."""
    functions, fails, hint = load_variant(variant)
    checks = checks_touching(assignment, functions)
    submission = fill_release(assignment, tmp_path / "submission.ipynb", functions)
    report = grade(submission, assignment, only=checks)
    assert_outputs_valid(report, assignment, tmp_path / "outputs")
    return results_by_name(report), set(fails), hint


@pytest.mark.parametrize("variant", CORRECT, ids=[p.stem for p in CORRECT])
def test_correct_variant_gets_full_marks(assignment, tmp_path, variant):
    results, _, _ = grade_variant(assignment, tmp_path, variant)
    assert results
    for name, result in results.items():
        assert result.passed, f"{name}: {result.output}"


@pytest.mark.parametrize("variant", BUGS, ids=[p.stem for p in BUGS])
def test_bug_loses_marks_on_the_right_check(assignment, tmp_path, variant):
    results, fails, hint = grade_variant(assignment, tmp_path, variant)
    scores = variant_scores(variant)
    assert fails or scores, f"{variant.name} must say which checks it fails (FAILS = [...], or SCORES = {{...}})"
    for name in fails:
        assert results[name].score == 0, f"{name} should fail for {variant.stem}: {results[name].output}"
        assert results[name].output.strip()
    for name, score in scores.items():  # a clause of the contract lost: its share, not the function's points
        assert results[name].score == score and not results[name].passed, (name, results[name].output)
        lost = [c for c in results[name].clauses if c["score"] < c["points"]]
        assert lost and all(f"−{c['points']:g} of" in results[name].output for c in lost)
    if hint:
        exact = next(r for name, r in results.items() if name.endswith("_exact"))
        assert hint in exact.output, exact.output
    feedback = "\n".join(r.output for r in results.values())
    leaked = [line for line in solution_lines(assignment.source) if len(line) > 12 and line in feedback]
    assert not leaked, "feedback quotes the reference solution"


def test_catalogue_covers_every_graded_function(assignment):
    for folder in (CORRECT, BUGS):
        covered = set().union(*(load_variant(p)[0] for p in folder))
        assert covered == set(assignment.graded_cells)
