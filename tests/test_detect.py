"""Which assignment a submitted notebook is for: found from its nbgrader cells and its name, never guessed."""

import json
import subprocess
import sys

import nbformat
import pytest

from autograder.__main__ import main
from autograder.notebook import AssignmentUnknown, detect_assignment
from tests.conftest import CATALOGUE, fill_release, load_variant, read_results


@pytest.fixture(scope="module")
def releases(course):
    return {a.id: nbformat.read(a.release, as_version=4) for a in course.assignments.values()}


def write(nb, path):
    nbformat.write(nb, path)
    return path


@pytest.mark.parametrize("name", ["renamed.ipynb", "policy_gradients.ipynb"])
def test_each_release_is_its_own_assignment_whatever_its_name(course, releases, tmp_path, name):
    """The cells decide, not the name: the Gymnasium notebook saved as policy_gradients.ipynb is still Gymnasium's."""
    for assignment_id, nb in releases.items():
        assert detect_assignment(course, write(nb, tmp_path / name)).id == assignment_id


def test_a_deleted_graded_cell_keeps_the_assignment(course, releases, tmp_path):
    """Without its `pg_loss` cell the Week 3 notebook still has far more Week 3 cells than any other."""
    nb = releases["week03_policy_gradients"]
    nb = nb | {"cells": [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") != "pg_loss"]}
    path = write(nbformat.from_dict(nb), tmp_path / "x.ipynb")
    assert detect_assignment(course, path).id == "week03_policy_gradients"


@pytest.mark.filterwarnings("ignore:Non-unique cell id")
def test_a_notebook_with_the_graded_cells_of_two_assignments_is_refused(course, releases, tmp_path):
    merged = releases["week03_policy_gradients"].copy()
    merged.cells = releases["week03_policy_gradients"].cells + releases["week03_gymnasium"].cells
    with pytest.raises(AssignmentUnknown, match="has all the graded cells of several assignments: Week 3: Policy "
                                                r"Gradients \(policy_gradients.ipynb\); Week 3 \(optional\)"):
        detect_assignment(course, write(merged, tmp_path / "both.ipynb"))
    # ... unless its name is one of theirs
    assert detect_assignment(course, write(merged, tmp_path / "reinforce_gymnasium.ipynb")).id == "week03_gymnasium"


@pytest.mark.parametrize("content, name, found", [
    ("", "policy_gradients.ipynb", "week03_policy_gradients"),  # unreadable: the name decides, grade says why
    ("not json", "fetch_slide.ipynb", "week03_fetch_slide"),
    ("", "mine.ipynb", "Could not tell which assignment mine.ipynb is for"),
    (json.dumps(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])), "a.ipynb", "Could not tell"),
], ids=["empty-named", "not json-named", "empty-unnamed", "foreign"])  # not the random cell id: xdist's workers must agree
def test_unreadable_or_foreign_notebooks(course, tmp_path, content, name, found):
    (tmp_path / name).write_text(content)
    try:
        assert detect_assignment(course, tmp_path / name).id == found
    except AssignmentUnknown as exc:
        assert found in str(exc)


def test_another_assignments_notebook_is_refused_even_with_assignment_given(course, tmp_path):
    """Gradescope's zip names its assignment: the Gymnasium notebook uploaded there gets 0 and says where it belongs,
    not 2/16 for its `discounted_returns`."""
    path = fill_release(course.assignment("week03_gymnasium"), tmp_path / "policy_gradients.ipynb")
    assert main(["grade", str(path), "--assignment", "week03_policy_gradients", "--results", str(tmp_path / "r.json"),
                 "--no-html"]) == 0
    results = read_results(tmp_path / "r.json")
    assert results["score"] == 0 and results["extra_data"]["assignment"] == "week03_policy_gradients"
    message = ("policy_gradients.ipynb is the notebook of Week 3 (optional): REINFORCE on Gymnasium "
               "(reinforce_gymnasium.ipynb), not of Week 3: Policy Gradients.")
    assert all(message in t["output"] for t in results["tests"])


def test_a_folder_with_notebooks_of_two_assignments_is_refused(course, tmp_path):
    folder = tmp_path / "submission"
    folder.mkdir()
    fill_release(course.assignment("week03_policy_gradients"), folder / "policy_gradients.ipynb")
    fill_release(course.assignment("week03_gymnasium"), folder / "reinforce_gymnasium.ipynb")
    assert main(["grade", str(folder), "--results", str(tmp_path / "r.json"), "--no-html"]) == 0
    results = read_results(tmp_path / "r.json")
    assert results["score"] == 0 and results["tests"] == []
    assert "Notebooks of 2 assignments were submitted" in results["output"]


@pytest.mark.slow
def test_a_correct_optional_notebook_graded_without_assignment_gets_full_marks(course, tmp_path):
    """The issue's case: `grade reinforce_gymnasium.ipynb` used to grade it as Week 3 (2/16). About 30 s."""
    gym = course.assignment("week03_gymnasium")
    functions = load_variant(CATALOGUE / "week03_gymnasium" / "correct" / "categorical_distribution.py")[0]
    path = fill_release(gym, tmp_path / "my answers.ipynb", functions)
    proc = subprocess.run([sys.executable, "-m", "autograder", "grade", str(path), "--results",
                           str(tmp_path / "r.json"), "--no-html"], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    results = read_results(tmp_path / "r.json")
    assert results["extra_data"]["assignment"] == "week03_gymnasium"
    assert results["score"] == sum(c.points for c in gym.checks) == sum(t["max_score"] for t in results["tests"])
