"""The public checks a student runs on their own work, in the release folder, before submitting.

    from gradekit import check; check()                   # in a cell of the release notebook: every part
    check("pg_loss")                                      # one part: the checks of one graded function
    python -m gradekit NOTEBOOK.ipynb --part pg_loss      # from a terminal, in the release folder

They apply the grader's own rules and messages (the assignment's ``checks.py``) with its own drivers and figures,
found through the assignment's ``REGISTRY``. What the grader gets from the reference solution comes here from
``public_checks.json``, recorded at release time: the reference's answers to the public cases, the answers of the
known mistakes (for the hints), and the reference's learning curves. The solution itself is not in the release.

Like the grader, both run the setup cell and then each graded cell's source on its own, in a fresh namespace: a helper
defined in another cell is missing here exactly as it is in the grade.

Public: the fixed cases of every exactness check, and every behaviour check on the grading seeds. Hidden: the random
cases of every exactness check, which only the grader runs, so passing here is necessary but not sufficient.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import io
import json
import linecache
import sys
from pathlib import Path

from gradekit import checks, plots, protocol
from gradekit.channel import copying

RECORD = "public_checks.json"


class Recorded:
    """Expected answers recorded at release time, looked up by case (the ``Reference`` of the grader's checks)."""

    def __init__(self, entry: dict):
        self.entry = entry
        self.index = {key(case): i for i, case in enumerate(entry["cases"])}

    def expected(self, check, case: dict) -> dict:
        return self.entry["expected"][self.index[key(case)]]

    def mistaken(self, check, case: dict) -> dict[str, dict]:
        return self.entry["mistakes"][self.index[key(case)]]


def key(case: dict) -> str:
    return json.dumps(case, sort_keys=True)


def build(entry: dict, record: dict) -> checks.Check:
    """The check of a recorded entry, from the assignment's registry (its content package beside the notebook)."""
    cls = importlib.import_module(record["content"]).REGISTRY.checks[entry["name"]]
    return cls(name=entry["name"], **{k: tuple(v) if isinstance(v, list) else v for k, v in entry["settings"].items()})


def load(folder: Path | None = None) -> dict:
    """The record beside the notebook (the current folder) or beside this package; its folder goes on the import
    path, so the assignment's content package beside it can be imported."""
    for place in (Path(folder or Path.cwd()), Path(__file__).resolve().parent.parent):
        if (place / RECORD).exists():
            if str(place) not in sys.path:
                sys.path.insert(0, str(place))
            return json.loads((place / RECORD).read_text())
    raise FileNotFoundError(f"{RECORD} not found: run the public checks in the release folder of the assignment, "
                            "next to the notebook and its gradekit/ folder.")


def run(entry: dict, record: dict, namespace: dict) -> tuple[checks.CheckResult, dict]:
    """One check on the functions defined in ``namespace``: its result, and the extra runs its figure shows."""
    check = build(entry, record)
    missing = [f for f in check.functions if not callable(namespace.get(f))]
    if missing:
        return check.result(False, f"`{missing[0]}` is not defined: run its cell first."), {}
    functions = stand_ins(check.driver, check.functions, namespace)
    answers: list[dict] = []
    for batch in check.batches(entry["cases"]):
        answers += [protocol.plain(protocol.run_case(check.driver, functions, case)) for case in batch]  # as sent
        if check.settled(answers):
            break
    result = check.judge(entry["cases"][:len(answers)], answers, Recorded(entry))
    extra = {}
    if isinstance(check, checks.ConvergenceCheck):
        driver, names, cases = check.feedback_runs()
        extra = {"runs": [check.keep(protocol.run_case(driver, stand_ins(driver, names, namespace), c)) for c in cases],
                 "reference": entry["reference"]["feedback_runs"]}
    return result, extra


def stand_ins(driver, names, namespace: dict) -> list:
    """The student's functions as the grader calls them (``gradekit.channel.copying``): values copied across, and
    back only what the contract lets a function update in place (the drivers' ``IN_PLACE``)."""
    in_place = getattr(sys.modules[protocol.driver_function(driver).__module__], "IN_PLACE", {})
    return [copying(namespace[f], in_place.get(f, ())) for f in names]


def selected(record: dict, part: str | None) -> list[dict]:
    names = [entry["name"] for entry in record["checks"]]
    chosen = [e for e in record["checks"] if part is None or part == e["name"] or part in build(e, record).functions]
    if not chosen:
        parts = sorted({f for e in record["checks"] for f in build(e, record).functions})
        raise ValueError(f"no public check for {part!r}; parts: {', '.join(parts)}; checks: {', '.join(names)}")
    return chosen


def counted(n: float, word: str) -> str:
    """``1 point``, ``2 points``, ``0.5 points``: a number and its noun, singular only for exactly one."""
    return f"{n:g} {word}" + ("" if n == 1 else "s")


def grader_only(record: dict, part: str | None = None) -> list[str]:
    """Titles of the grader-only checks of ``part`` (a graded function or check name; None: all of them)."""
    return [h["title"] for h in record["hidden"]
            if part is None or part == h["name"] or part in h["functions"]]


def header(record: dict, chosen: list[dict], part: str | None = None) -> str:
    """What the run covers: the public checks ``chosen`` (those of ``part``), and the grader-only checks of the same
    part, never another part's."""
    hidden = sum(e["settings"].get("random_cases", 0) for e in chosen)
    others = "".join(f"\n  - {title}" for title in grader_only(record, part))
    return (f"Public checks for {record['title']}: {counted(len(chosen), 'check')}. These are the grader's own rules "
            "and messages on the public cases: the fixed inputs of each function and the training runs on the grading "
            f"seeds.\nHidden checks exist: the grader also runs {counted(hidden, 'random case')} of these functions "
            "that are not here, so a pass here does not guarantee full marks."
            + (f" Grader-only checks:{others}" if others else ""))


def report(result: checks.CheckResult) -> str:
    mark = "✓ passed" if result.passed else "✗ failed"
    lines = [f"{mark}  {result.title}  ({counted(result.max_score, 'point')} when graded)",
             "   " + result.output.replace("\n", "\n   ")]
    for wrong in result.data.get("wrong", []):
        lines.append(f"   · input: {wrong['case']}\n     expected: {wrong['expected']}\n     yours:    {wrong['got']}")
    return "\n".join(lines)


def figure_png(entry: dict, record: dict, result: checks.CheckResult, extra: dict) -> bytes | None:
    if not result.data.get("runs") or not any(result.data["runs"]):
        return None
    check = build(entry, record)
    figure = plots.figure(check, result.data["runs"], entry["reference"]["runs"], extra)
    return plots.png(figure)


def run_all(record: dict, chosen: list[dict], namespace: dict, show, notes: list[str] = (),
            part: str | None = None) -> bool:
    """Print the header, each check's verdict and message, and ``show(name, png)`` its figure. True if all passed."""
    print(header(record, chosen, part) + "\n")
    for note in notes:
        print(f"note: {note}")
    passed = True
    for entry in chosen:
        result, extra = run(entry, record, namespace)
        passed &= result.passed
        print(report(result), flush=True)
        image = figure_png(entry, record, result, extra)
        if image:
            show(entry["name"], image)
        print()
    print("All public checks passed." if passed else "Some public checks failed: see the messages above.")
    return passed


def check(part: str | None = None, namespace: dict | None = None) -> bool:
    """Run the public checks of ``part`` (a graded function or check name; None: all) on the graded cells run in
    the calling notebook, each on its own as the grader runs it; print the grader's messages and show the learning
    curves. True if all passed."""
    if namespace is None:
        namespace = inspect.currentframe().f_back.f_globals
    try:
        record = load()
        chosen = selected(record, part)
    except (FileNotFoundError, ValueError) as exc:
        print(exc)
        return False
    fresh, notes = cells_on_their_own(record, namespace)

    def show(name: str, image: bytes) -> None:
        try:
            from IPython.display import Image, display
        except ImportError:  # not in Jupyter: save the figure instead
            Path(f"{name}.png").write_bytes(image)
            print(f"   figure: {name}.png")
            return
        display(Image(data=image))

    return run_all(record, chosen, fresh, show, notes, part)


def cell_source(function) -> str | None:
    """The whole source of the notebook cell that defined ``function`` (Jupyter keeps every cell it ran in
    ``linecache``), or None if it was not defined in a cell."""
    code = getattr(function, "__code__", None)
    lines = linecache.getlines(code.co_filename) if code else []
    return "".join(lines) or None


def cells_on_their_own(record: dict, namespace: dict) -> tuple[dict, list[str]]:
    """A fresh namespace holding what the grader would define: the setup cell, then each graded cell that was run
    in ``namespace``, each on its own. Returns it and a note per cell that could not be run that way."""
    sources = {"setup": record["setup_source"]}
    notes = []
    for name in record["graded_cells"]:
        source = cell_source(namespace.get(name)) if callable(namespace.get(name)) else None
        if source is not None:
            sources[name] = source
    fresh, problems = run_cells(sources)
    for name in record["graded_cells"]:
        if callable(namespace.get(name)) and name not in sources:
            fresh[name] = namespace[name]
            notes.append(f"`{name}` was not defined in a notebook cell: it is checked as it is, not on its own")
    return fresh, notes + problems


def run_cells(sources: dict[str, str]) -> tuple[dict, list[str]]:
    """Run cell sources in order in a fresh namespace, each on its own (as the grader does); a note per failure."""
    namespace: dict = {"__name__": "__main__"}
    problems = []
    for name, source in sources.items():
        filename = f"<cell {name}>"
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)  # for tracebacks
        try:
            exec(compile(source, filename, "exec"), namespace)  # noqa: S102 - the student's own code, on their machine
        except Exception as exc:  # noqa: BLE001 - reported like the grader does
            problems.append(f"your `{name}` cell failed to run on its own: {type(exc).__name__}: {exc}")
    return namespace, problems


def notebook_namespace(path: Path, record: dict) -> tuple[dict, list[str]]:
    """Run the notebook's setup cell and graded cells, as the grader does, in a fresh namespace (on the student's own
    machine: this is their code). Returns the namespace and a note per cell that failed."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    by_id = {}
    for cell in cells:
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if grade_id and cell.get("cell_type") == "code":
            by_id[grade_id] = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
    names = [record["setup_cell"], *record["graded_cells"]]
    missing = [f"the cell `{name}` is missing from {path.name}" for name in names if name not in by_id]
    namespace, problems = run_cells({name: by_id[name] for name in names if name in by_id})
    return namespace, missing + problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gradekit", description=__doc__.split("\n\n")[0])
    parser.add_argument("notebook", type=Path, help="your notebook, in the release folder")
    parser.add_argument("--part", help="one graded function (or check name); default: all")
    parser.add_argument("--plots", type=Path, default=Path("public-check-plots"),
                        help="folder for the learning-curve figures (default: public-check-plots/)")
    args = parser.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    try:
        record = load(args.notebook.resolve().parent)
        chosen = selected(record, args.part)
    except (FileNotFoundError, ValueError) as exc:
        print(exc, file=sys.stderr)
        return 2
    with io.StringIO() as quiet:  # the notebook's own prints are not the checks' output
        stdout, sys.stdout = sys.stdout, quiet
        try:
            namespace, problems = notebook_namespace(args.notebook, record)
        finally:
            sys.stdout = stdout

    def save(name: str, image: bytes) -> None:
        args.plots.mkdir(parents=True, exist_ok=True)
        (args.plots / f"{name}.png").write_bytes(image)
        print(f"   figure: {args.plots / (name + '.png')}")

    return 0 if run_all(record, chosen, namespace, save, problems, args.part) else 1


if __name__ == "__main__":
    sys.exit(main())
