"""Fixtures: the course, and submissions built from the committed release the way a student would fill it in."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import nbformat
import pytest

from autograder import config
from autograder.notebook import graded_cells

CATALOGUE = Path(__file__).parent / "catalogue"
MARKER_LINE = re.compile(r"^\s*### (BEGIN|END) SOLUTION\s*$\n?", re.MULTILINE)

# `make test` runs the suite in parallel (pytest-xdist, --dist loadgroup), then the tests marked `serial` alone.
# A module fixture that costs a grade, a class, a zip or a notebook run is built once per worker that runs one of its
# tests: the tests that use one of these run on one worker (an xdist group per module), so it is built once.
SHARED_MODULE_FIXTURES = {"course_dir", "gradescope_source", "notebook", "pages", "record", "source", "toy",
                          "student_user"}


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which reads the groups into the tests' ids
def pytest_collection_modifyitems(config, items):
    """Group the tests of an expensive module fixture (above), then put the slow tests and groups first, so that the
    longest start at once on every worker instead of one of them finishing the run alone. A group's tests stay
    together and in their order: pytest tears a module fixture down when the next test is another module's."""
    groups: dict[str, list] = {}
    for item in items:
        if SHARED_MODULE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.xdist_group(item.module.__name__))
            groups.setdefault(item.module.__name__, []).append(item)
    slow = {name for name, members in groups.items() if any(i.get_closest_marker("slow") for i in members)}
    place = {id(item): index for index, item in enumerate(items)}
    first = {name: place[id(members[0])] for name, members in groups.items()}

    def key(item):
        group = item.get_closest_marker("xdist_group")
        if group:
            name = group.args[0]
            return name not in slow, first[name], place[id(item)]
        return item.get_closest_marker("slow") is None, place[id(item)], 0

    items.sort(key=key)


@pytest.fixture(scope="session")
def course():
    return config.load()


@pytest.fixture(scope="session")
def assignment(course):
    return course.assignment("week03_policy_gradients")


def reference_answers(assignment) -> dict[str, str]:
    """What a student who solved everything types into each graded cell: the source cell without markers."""
    source = nbformat.read(assignment.source, as_version=4)
    return {name: MARKER_LINE.sub("", cells[-1].source) for name, cells in graded_cells(source).items()
            if name in assignment.graded_cells}


def fill_release(assignment, path: Path, answers: dict[str, str] | None = None, blank: tuple = ()) -> Path:
    """Write the release with every graded cell answered by the reference, except ``answers`` and ``blank`` ones."""
    nb = nbformat.read(assignment.release, as_version=4)
    filled = reference_answers(assignment) | (answers or {})
    for name, cells in graded_cells(nb).items():
        if name in filled and name not in blank:
            cells[-1].source = filled[name]
    nbformat.write(nb, path)
    return path


def load_variant(path: Path) -> tuple[dict[str, str], list[str], str]:
    """A catalogue file: (function sources by name, checks it must fail, hint the feedback must contain)."""
    text = path.read_text()
    tree = ast.parse(text)
    functions = {node.name: ast.get_source_segment(text, node) for node in tree.body
                 if isinstance(node, ast.FunctionDef)}
    constants = {node.targets[0].id: ast.literal_eval(node.value) for node in tree.body
                 if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)}
    return functions, constants.get("FAILS", []), constants.get("HINT", "")


def variant_scores(path: Path) -> dict[str, float]:
    """A catalogue file's SCORES: the checks it loses only some clauses of, with the score they must get."""
    tree = ast.parse(path.read_text())
    return next((ast.literal_eval(node.value) for node in tree.body if isinstance(node, ast.Assign)
                 and isinstance(node.targets[0], ast.Name) and node.targets[0].id == "SCORES"), {})


def checks_touching(assignment, functions) -> set[str]:
    return {c.name for c in assignment.checks if set(c.functions) & set(functions)}


def results_by_name(report) -> dict:
    return {r.name: r for r in report.results}


def read_results(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def assert_outputs_valid(report, assignment, folder: Path) -> dict:
    """Every output of a graded report, written as the grader writes it: results.json (valid under Gradescope's
    schema, readable by the ``Results`` model with every check by id), Gradescope's html results, the feedback page,
    JUnit XML (valid under junit-10.xsd) and a grades CSV row. Returns the results.json written."""
    import csv
    import io
    from html.parser import HTMLParser

    import jsonschema
    import xmlschema

    from autograder import batch, feedback
    from autograder.results import Results, gradescope, junit, write_json

    files = Path(__file__).parent / "files"
    schema = json.loads((files / "gradescope-results.schema.json").read_text())
    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / "results.json", gradescope(report))
    written = json.loads((folder / "results.json").read_text())
    jsonschema.validate(written, schema)
    assert written["score"] >= 0
    assert set(Results(written).checks) == {r.name for r in report.results}
    jsonschema.validate(json.loads(json.dumps(feedback.gradescope_html(report, assignment, figures=False),
                                              allow_nan=False)), schema)
    page = feedback.render(report, assignment)
    HTMLParser().feed(page)
    assert page.count("<section") == len(report.results)
    (folder / "junit.xml").write_text(junit(written, assignment))
    xmlschema.XMLSchema(str(files / "junit-10.xsd")).validate(str(folder / "junit.xml"))
    (row,) = csv.DictReader(io.StringIO(batch.grades_csv([("student", written)], assignment)))
    assert all(row[r.name] != "" for r in report.results)
    return written
