"""release/ is what nbgrader makes of source/ today, and it holds no solution line, marker or output."""

import json

import nbformat
import pytest

from autograder import config
from autograder.release import generate, is_stale, leaks, same_file, solution_lines

OPTIONAL = [a for a in config.load().assignments if a != "week03_policy_gradients"]  # the lecture's: the tests below


def test_committed_release_is_in_sync(course, assignment):
    assert is_stale(course, assignment) == [], "run: .venv/bin/python -m autograder release"


@pytest.mark.parametrize("assignment_id", OPTIONAL)
def test_optional_part_release_is_in_sync_and_holds_no_solution(course, assignment_id):
    optional = course.assignment(assignment_id)
    assert is_stale(course, optional) == [], "run: .venv/bin/python -m autograder release"
    assert leaks(optional.source, optional.release) == [] and solution_lines(optional.source)


def test_release_has_no_solutions(assignment):
    assert leaks(assignment.source, assignment.release) == []
    assert len(solution_lines(assignment.source)) > 10


def test_leak_check_catches_a_pasted_solution_line(assignment, tmp_path):
    nb = nbformat.read(assignment.release, as_version=4)
    leaked = sorted(solution_lines(assignment.source))[0]
    nb.cells[-1].source += "\n" + leaked
    path = tmp_path / "leaky.ipynb"
    nbformat.write(nb, path)
    assert any(leaked in problem for problem in leaks(assignment.source, path))


def test_graded_cells_keep_signature_and_docstring(assignment):
    release = nbformat.read(assignment.release, as_version=4)
    for name in assignment.graded_cells:
        cell = next(c for c in release.cells if c.metadata["nbgrader"].get("grade_id") == name)
        assert cell.source.startswith(f"def {name}(") and '"""' in cell.source
        assert "raise NotImplementedError()" in cell.source
        assert cell.metadata["nbgrader"]["solution"] is True


def test_locked_cells_carry_nbgrader_checksums(assignment):
    release = nbformat.read(assignment.release, as_version=4)
    setup = next(c for c in release.cells if c.metadata["nbgrader"].get("grade_id") == assignment.setup_cell)
    assert setup.metadata["nbgrader"]["locked"] and setup.metadata["nbgrader"].get("checksum")


def test_generate_into_a_fresh_folder(course, assignment, tmp_path):
    path = generate(course, assignment, tmp_path)
    assert path.exists() and not list(path.parent.glob("*.py"))
    assert not list(path.parent.rglob("mistakes.py")) and not (path.parent / "autograder").exists()


def test_release_ships_the_public_checks(assignment):
    folder = assignment.release.parent
    assert (folder / "public_checks.json").exists() and (folder / "gradekit" / "public.py").exists()
    assert (folder / "week03_policy_gradients" / "checks.py").exists() and not (folder / "autograder").exists()
    assert not list(folder.rglob("mistakes.py"))


@pytest.mark.parametrize("extra", ["notes.txt", "answer_key.py"])
def test_nbgrader_ships_only_the_notebook_of_source(course, assignment, tmp_path, extra):
    """nbgrader copies every file of source/<id>/ into the release; ours gets the notebook alone, and the allow-list
    of the release folder refuses anything else."""
    import shutil
    from dataclasses import replace

    source = tmp_path / "course" / "source" / assignment.id
    shutil.copytree(assignment.source.parent, source)
    (source / extra).write_text("grader-only\n")
    moved = replace(assignment, root=tmp_path / "course")
    (tmp_path / "course" / "requirements.lock").write_text((assignment.root / "requirements.lock").read_text())
    path = generate(course, moved, tmp_path / "out")
    assert (source / "mistakes.py").exists() and not (path.parent / extra).exists()
    assert not list(path.parent.rglob("mistakes.py"))
    (path.parent / extra).write_text("planted\n")
    from autograder.release import allow_list_problems
    assert any(extra in p for p in allow_list_problems(moved, path.parent))


def test_recorded_numbers_may_differ_in_their_last_digits_only(tmp_path):
    """Another CPU may round the reference's floats differently; the release is still in sync, but not when a case
    or a value really changed."""
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps({"cases": [{"seed": 0}], "expected": [0.1234567, 2.0]}))
    b.write_text(json.dumps({"cases": [{"seed": 0}], "expected": [0.1234568, 2.0]}))
    assert same_file(a, b)
    b.write_text(json.dumps({"cases": [{"seed": 1}], "expected": [0.1234567, 2.0]}))
    assert not same_file(a, b)
    b.write_text(json.dumps({"cases": [{"seed": 0}], "expected": [0.1244567, 2.0]}))
    assert not same_file(a, b)


def test_first_cell_says_what_to_submit(course):
    """Each release opens with what to submit (the file, where), that only the graded cells count, run on their own,
    and how to check first: made from course.toml, locked by nbgrader."""
    for assignment in course.assignments.values():
        first = nbformat.read(assignment.release, as_version=4).cells[0]
        assert first.cell_type == "markdown" and first.metadata["nbgrader"]["locked"]
        assert f"`{assignment.notebook}`" in first.source and "Gradescope" in first.source
        assert all(f"`{name}`" in first.source for name in assignment.graded_cells)
        assert "on its own" in first.source and f"python -m gradekit {assignment.notebook}" in first.source


def test_reference_runs_come_from_the_release_record_while_their_inputs_are_the_same(course, monkeypatch, tmp_path):
    """A fresh clone has no cache of the reference's learning curves; `release` and the feedback page take them from
    the committed release's public_checks.json, which keeps them with the key of what they were made from, instead
    of training the reference again (a minute and more for the optional parts). Other inputs: trained again."""
    import tempfile

    from gradekit.checks import ConvergenceCheck

    from autograder import feedback

    def no_training(*args):
        raise AssertionError("the reference was trained again")

    assignment = course.assignment("week03_gymnasium")
    check = next(c for c in assignment.checks if isinstance(c, ConvergenceCheck) and c.public)
    record = json.loads((assignment.release.parent / "public_checks.json").read_text())
    recorded = next(e for e in record["checks"] if e["name"] == check.name)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # an empty cache
    monkeypatch.setattr(feedback, "run_case", no_training)
    feedback.reference_runs.cache_clear()
    try:
        assert feedback.reference_runs(assignment, check.name) == recorded["reference"]
        feedback.reference_runs.cache_clear()
        monkeypatch.setattr(feedback, "reference_runs_key", lambda *args: "other inputs")
        with pytest.raises(AssertionError, match="trained again"):
            feedback.reference_runs(assignment, check.name)
    finally:
        feedback.reference_runs.cache_clear()
