"""The instructor's notebook runs top to bottom with the reference solutions, with no error and nothing on stderr
(nbgrader scores a cell that writes to stderr as 0), and commits no outputs."""

import nbformat
import pytest
from nbclient import NotebookClient

from autograder.config import ROOT
from autograder.execute import kernel_env


def test_source_has_no_outputs(assignment):
    nb = nbformat.read(assignment.source, as_version=4)
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in nb.cells if c.cell_type == "code")


@pytest.mark.slow
def test_source_runs_top_to_bottom_without_stderr(assignment, tmp_path):
    nb = nbformat.read(assignment.source, as_version=4)
    env = {k: v for k, v in kernel_env(str(ROOT)).items() if k != "MPLBACKEND"}  # inline plots, as a student sees them
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute(
        env=env)
    outputs = [(c.get("id"), o) for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [cid for cid, o in outputs if o.output_type == "error"]
    assert not [(cid, o.text[:200]) for cid, o in outputs if o.output_type == "stream" and o.name == "stderr"]
    assert any(o.output_type == "display_data" and "image/png" in o.data for _, o in outputs), "plots are drawn"
    assert any(cid == "bandit-animation" and "image/gif" in o.get("data", {}) for cid, o in outputs), "the GIF is shown"
