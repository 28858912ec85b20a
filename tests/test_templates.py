"""The deployment artefacts rendered from autograder/templates/ (Gradescope's setup.sh and run_autograder, the
public-checks workflow) for every assignment of the course and a stand-in with awkward names: every placeholder
filled, the scripts pass `bash -n` and shellcheck, the workflow is YAML with the expected job and steps; and render()
is strict."""

import re
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from autograder import config, exports

# A course.toml table name may hold spaces (a quoted TOML key), a title quotes: the scripts quote the id and the
# notebook's name, the workflow keeps the title in a comment. (Not the fixture course: loading it here would take the
# package name that tests/test_layout.py's copy of it needs.)
AWKWARD = SimpleNamespace(id="toy descent", title='Toy: one "descent" step', notebook="my toy.ipynb",
                          source=Path("source/toy descent/my toy.ipynb"),
                          limits=SimpleNamespace(submission_seconds=120.0))
SCRIPTS = ("setup.sh", "run_autograder")
SHELLCHECK = shutil.which("shellcheck")
NO_SHELLCHECK = ("shellcheck is not installed (Debian/Ubuntu: apt-get install shellcheck; `make` as root and .ci/run "
                 "install it, so CI runs this test)")


@pytest.fixture(scope="module")
def rendered() -> dict[tuple[str, str], tuple[object, object, dict[str, str]]]:
    """(course id, assignment id) -> (course, assignment, {template name: rendered text})."""
    course = config.load()
    pairs = [(course, a) for a in course.assignments.values()] + [(SimpleNamespace(id="TOY 101"), AWKWARD)]
    return {(c.id, a.id): (c, a, {"setup.sh": exports.setup_script(a),
                                  "run_autograder": exports.run_autograder_script(a),
                                  "github-workflow.yml": exports.github_workflow(c, a)}) for c, a in pairs}


def test_every_template_is_rendered_with_every_placeholder_filled(rendered):
    assert sorted(p.name for p in exports.TEMPLATES.iterdir()) == sorted([*SCRIPTS, "github-workflow.yml"])
    for template in exports.TEMPLATES.iterdir():
        assert exports.PLACEHOLDER.search(template.read_text()), f"{template.name} has no placeholder"
    for (course_id, assignment_id), (_, _, texts) in rendered.items():
        for name, text in texts.items():
            # nor half of one (a typo such as `@NOTEBOK`): an @ before a capital is no shell, YAML or action syntax
            assert not re.search("@[A-Z]", text) and assignment_id in text, (course_id, assignment_id, name)


def test_the_scripts_pass_bash_n(rendered, tmp_path):
    for (course_id, assignment_id), (_, _, texts) in rendered.items():
        for name in SCRIPTS:
            path = tmp_path / f"{course_id}-{assignment_id}-{name}"
            path.write_text(texts[name])
            proc = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
            assert proc.returncode == 0, proc.stderr


def workflow_scripts(text: str) -> list[str]:
    """The workflow's `run` steps, as the bash scripts GitHub runs them as."""
    (job,) = yaml.safe_load(text)["jobs"].values()
    return ["#!/usr/bin/env bash\n" + step["run"] for step in job["steps"] if "run" in step]


@pytest.mark.skipif(SHELLCHECK is None, reason=NO_SHELLCHECK)
def test_the_scripts_and_the_workflows_steps_pass_shellcheck(rendered, tmp_path):
    """Every finding, down to style, is a failure: Gradescope's scripts run as root on every image build and every
    submission, where a word split or a failed `cd` goes unseen until a student's grade is wrong."""
    paths = []
    for (course_id, assignment_id), (_, _, texts) in rendered.items():
        for i, script in enumerate([texts["setup.sh"], texts["run_autograder"],
                                    *workflow_scripts(texts["github-workflow.yml"])]):
            paths.append(tmp_path / f"{course_id}-{assignment_id}-{i}.sh")
            paths[-1].write_text(script)
    proc = subprocess.run([SHELLCHECK, "--shell=bash", "--severity=style", "--format=gcc", *map(str, paths)],
                          capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout == "", proc.stdout + proc.stderr


def test_the_workflow_is_yaml_with_the_expected_job_and_steps(rendered):
    for (course_id, assignment_id), (course, a, texts) in rendered.items():
        workflow = yaml.safe_load(texts["github-workflow.yml"])
        assert workflow["name"] == f"Public checks {assignment_id}"
        assert set(workflow[True]) == {"push", "workflow_dispatch"}  # PyYAML reads the key `on` as True (YAML 1.1)
        assert workflow["permissions"] == {"contents": "read"}
        assert list(workflow["jobs"]) == ["public-checks"]
        job = workflow["jobs"]["public-checks"]
        assert job["runs-on"] == "ubuntu-latest"
        assert job["timeout-minutes"] == round(a.limits.submission_seconds / 60) + 15
        assert [s.get("name") or s["uses"] for s in job["steps"]] == [
            "actions/checkout@v4", "actions/setup-python@v5", "Install the release's requirements", "Public checks",
            "Summary", "Upload the output and figures"]
        assert job["steps"][1]["with"]["python-version"] == exports.python_minor()
        assert job["steps"][3]["run"] == f'python -m gradekit "{a.notebook}" 2>&1 | tee public-checks.txt'
        assert job["steps"][5]["with"]["name"] == f"public-checks-{assignment_id}"


def test_render_fills_each_placeholder_once_and_refuses_what_does_not_fit(tmp_path, monkeypatch):
    monkeypatch.setattr(exports, "TEMPLATES", tmp_path)
    (tmp_path / "t").write_text('echo "@A@" "$HOME" "${x[@]}" user@example.org @B_C@\n')
    assert exports.render("t", {"A": "1", "B_C": "@A@"}) == 'echo "1" "$HOME" "${x[@]}" user@example.org @A@\n'
    with pytest.raises(ValueError, match=r"no value for \['B_C'\]"):
        exports.render("t", {"A": "1"})
    with pytest.raises(ValueError, match=r"no placeholder for \['D'\]"):
        exports.render("t", {"A": "1", "B_C": "2", "D": "3"})
    for unsafe in ('x"y', "$(id)", "`id`", "a\\b", "it's"):
        with pytest.raises(ValueError, match="may not hold"):
            exports.render("t", {"A": unsafe, "B_C": "2"}, shell=("A",))
        assert unsafe in exports.render("t", {"A": "1", "B_C": unsafe}, shell=("A",))  # B_C: no shell (a YAML title)
    with pytest.raises(ValueError, match="may not hold"):
        exports.render("t", {"A": "two\nlines", "B_C": "2"})
