"""course.toml: the repo's file loads, and every kind of mistake in it is reported with its dotted key."""

import pytest

from autograder import config
from autograder.__main__ import main

TEXT = config.DEFAULT_CONFIG.read_text()


def load_with(tmp_path, old, new):
    assert old in TEXT
    path = tmp_path / "course.toml"
    path.write_text(absolute(TEXT.replace(old, new, 1)))
    return config.load(path)


def absolute(text: str) -> str:
    """The repo's course.toml, moved elsewhere: its content packages named by absolute path."""
    return text.replace('content = "assignments/', f'content = "{config.ROOT}/assignments/')


def test_repo_config_loads(course, assignment):
    assert course.id == "ENN585"
    assert assignment.source.exists() and assignment.release.exists()
    assert sum(c.points for c in assignment.checks) > 0


@pytest.mark.parametrize("old, new, key", [
    ("min_passing = 4", "min_passing = 9", "checks.bandit_table_learns: min_passing"),
    ("random_cases = 30", "random_casez = 30", "checks.policy_gradient_update_exact.random_casez"),
    ("[assignments.week03_policy_gradients.checks.pg_loss_exact]",
     "[assignments.week03_policy_gradients.checks.pg_loss_exakt]", "checks.pg_loss_exakt"),
    ("cell_seconds = 60", "cell_seconds = -1", "week03_policy_gradients.limits.cell_seconds"),
    ("memory_mb = 2048", "", "limits.memory_mb is missing"),
    ('setup_cell = "setup"', "", "week03_policy_gradients.setup_cell is missing"),
    ("points = 3", "points = -3", "policy_gradient_update_exact: points"),
    ('"pg_loss", ', "", "needs `pg_loss`"),
    ('content = "assignments/week03_policy_gradients"', 'content = "assignments/nowhere"',
     "week03_policy_gradients.content must name a content package"),
    ('content = "assignments/week03_policy_gradients"', "", "week03_policy_gradients.content is missing"),
    ("[assignments.week03_gymnasium.checks.cartpole_reinforce_learns]",
     "[assignments.week03_gymnasium.checks.bandit_table_learns]", "not a check of week03_gymnasium's REGISTRY"),
])
def test_errors_name_the_key(tmp_path, old, new, key):
    with pytest.raises(config.ConfigError, match=key.replace(".", r"\.")):
        load_with(tmp_path, old, new)


def test_cli_reports_config_errors_with_exit_2(tmp_path, capsys):
    path = tmp_path / "course.toml"
    path.write_text(absolute(TEXT.replace("min_passing = 4", "min_passing = 0", 1)))
    assert main(["--config", str(path), "grade", "x.ipynb"]) == 2
    assert "min_passing" in capsys.readouterr().err
