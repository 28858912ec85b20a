"""Gradescope's setup.sh and run_autograder and the GitHub workflow, byte for byte as exports.py rendered them before
they moved to template files (tests/files/deploy-golden/: today's outputs, for both courses' assignments)."""

from pathlib import Path

import pytest

from autograder import config, exports

GOLDEN = Path(__file__).parent / "files" / "deploy-golden"
COURSES = [config.DEFAULT_CONFIG, Path(__file__).parent / "fixture_course" / "course.toml"]


def rendered(path: Path) -> dict[str, str]:
    course = config.load(path)
    out = {}
    for a in course.assignments.values():
        out[f"{course.id}-{a.id}-setup.sh"] = exports.setup_script(a)
        out[f"{course.id}-{a.id}-github-workflow.yml"] = exports.github_workflow(course, a)
        if a.source.exists() and a.release.exists():  # the zip needs both; the fixture course has no release here
            out[f"{course.id}-{a.id}-run_autograder"] = exports._zip_entries(path, course, a)["run_autograder"].decode()
    return out


@pytest.mark.parametrize("path", COURSES, ids=["course", "fixture_course"])
def test_artefacts_are_byte_identical_to_the_golden_files(path):
    for name, text in rendered(path).items():
        assert text == (GOLDEN / name).read_text(), name
