"""Benchmark: our grader against `nbgrader autograde` on the same submissions, in one run on one machine.

nbgrader gets a source notebook whose hidden test cells perform the same checks as ours: every check's cases, the
same drivers and the same verdict code, run with nbgrader's usual design, inside the student's kernel. Two versions of
that notebook are timed:
  full     the whole Week 3 notebook (nbgrader always executes every cell, training demos included);
  minimal  only the setup cell, the four graded cells and the hidden tests (nbgrader's best case).
Reported: per-submission wall time and peak RSS (median of --repeats runs) for a reference, a blank and a buggy
submission (ours also with --workers 1: behaviour seeds one after another), and the wall time of a batch of --students submissions: ours with grade-all --jobs 2, nbgrader's autograde
(sequential). Also checks that both graders agree on which submissions get full marks.

    .venv/bin/python bench/nbgrader_vs_autograder.py --students 20 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from autograder import config  # noqa: E402
from autograder.notebook import graded_cells  # noqa: E402
from tests.conftest import CATALOGUE, fill_release, load_variant  # noqa: E402

HIDDEN_TEST = """### BEGIN HIDDEN TESTS
from autograder import config as _config
from gradekit.protocol import run_case as _run_case
from autograder.notebook import reference_functions as _reference_functions
_assignment = _config.load({config!r}).assignment()
_ref = _reference_functions(_assignment)
_check = _assignment.check({check!r})
_cases = _check.cases(_ref)
_answers = [_run_case(_check.driver, [globals()[f] for f in _check.functions], c) for c in _cases]
_result = _check.judge(_cases, _answers, _ref)
assert _result.passed, _result.output
### END HIDDEN TESTS"""


def measured(cmd: list[str], env=None) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of the largest process in the command's tree."""
    probe = ("import resource, subprocess, sys, time; t = time.monotonic(); subprocess.run(sys.argv[1:], "
             "stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); "
             "print(time.monotonic() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)")
    out = subprocess.run([sys.executable, "-c", probe, *cmd], capture_output=True, text=True, env=env, check=True)
    seconds, mb = out.stdout.split()
    return float(seconds), float(mb)


def nbgrader_source(assignment, minimal: bool) -> nbformat.NotebookNode:
    """The Week 3 source notebook with a hidden, graded test cell per check of ours."""
    nb = nbformat.read(assignment.source, as_version=4)
    if minimal:
        keep = {assignment.setup_cell, *assignment.graded_cells}
        nb.cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") in keep]
    for check in assignment.checks:
        cell = nbformat.v4.new_code_cell(HIDDEN_TEST.format(config=str(assignment.root / "course.toml"),
                                                            check=check.name))
        cell.metadata["nbgrader"] = {"grade": True, "solution": False, "locked": True, "task": False,
                                     "points": check.points, "grade_id": f"test_{check.name}", "schema_version": 3}
        nb.cells.append(cell)
    return nb


class NbgraderCourse:
    def __init__(self, root: Path, assignment, minimal: bool):
        self.root, self.assignment = root, assignment
        src = root / "source" / assignment.id
        src.mkdir(parents=True)
        nbformat.write(nbgrader_source(assignment, minimal), src / assignment.notebook)
        self.run("generate_assignment", assignment.id, "--force")
        self.release = root / "release" / assignment.id / assignment.notebook

    def args(self) -> list[str]:
        return [f"--CourseDirectory.root={self.root}", f"--CourseDirectory.db_url=sqlite:///{self.root}/gb.db",
                "--CourseDirectory.course_id=bench", "--log-level=ERROR"]

    def command(self, *args) -> list[str]:
        return [sys.executable, "-m", "nbgrader", *args, *self.args()]

    def run(self, *args) -> None:
        subprocess.run(self.command(*args), check=True, capture_output=True, env=env_with_venv())

    def submit(self, student: str, answers: dict | None, blank: bool = False) -> None:
        folder = self.root / "submitted" / student / self.assignment.id
        folder.mkdir(parents=True, exist_ok=True)
        nb = nbformat.read(self.release, as_version=4)
        if not blank:
            filled = nbformat.read(fill_release(self.assignment, folder / "tmp.ipynb", answers), as_version=4)
            answers_by_id = {k: v[-1].source for k, v in graded_cells(filled).items()}
            for name, cells in graded_cells(nb).items():
                if name in self.assignment.graded_cells:
                    cells[-1].source = answers_by_id[name]
            (folder / "tmp.ipynb").unlink()
        nbformat.write(nb, folder / self.assignment.notebook)

    def score(self, student: str) -> float:
        nb = nbformat.read(self.root / "autograded" / student / self.assignment.id / self.assignment.notebook, 4)
        total = 0.0
        for cell in nb.cells:
            meta = cell.metadata.get("nbgrader", {})
            if meta.get("grade"):
                failed = any(o.get("output_type") == "error" or o.get("name") == "stderr" for o in cell.outputs)
                total += 0 if failed else meta["points"]
        return total


def env_with_venv() -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))  # for the hidden tests
    return env


SUBMISSIONS = {
    "reference": None,
    "blank": "blank",
    "buggy": CATALOGUE / "bugs" / "loss_prob_not_log.py",
}


def answers_of(kind) -> tuple[dict | None, bool]:
    if kind == "blank":
        return None, True
    return (load_variant(kind)[0] if kind else None), False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--students", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-full", action="store_true", help="time nbgrader on the minimal notebook only")
    args = parser.parse_args()
    assignment = config.load().assignment()
    env = env_with_venv()
    tmp = Path(tempfile.mkdtemp(prefix="bench-"))
    variants = ["minimal"] + ([] if args.skip_full else ["full"])
    courses = {v: NbgraderCourse(tmp / v, assignment, v == "minimal") for v in variants}
    ours_dir = tmp / "ours"
    rows = []
    for label, kind in SUBMISSIONS.items():
        answers, blank = answers_of(kind)
        for course in courses.values():
            course.submit(label, answers, blank)
        # our grader grades our own release; give it the same answers
        path = ours_dir / f"{label}.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        if blank:
            shutil.copy(assignment.release, path)
        else:
            fill_release(assignment, path, answers)
        ours = [sys.executable, "-m", "autograder", "grade", str(path), "--results", str(ours_dir / f"{label}.json"),
                "--no-html"]
        runs = {"ours": [measured(ours, env) for _ in range(args.repeats)],  # seeds on every core
                "ours 1 worker": [measured(ours + ["--workers", "1"], env) for _ in range(args.repeats)]}
        for name, course in courses.items():
            runs[f"nbgrader {name}"] = [measured(course.command("autograde", assignment.id, "--force",
                                                                f"--student={label}"), env)
                                        for _ in range(args.repeats)]
        ours_score = json.loads((ours_dir / f"{label}.json").read_text())["score"]
        scores = {"ours": ours_score, "ours 1 worker": ours_score,
                  **{f"nbgrader {n}": c.score(label) for n, c in courses.items()}}
        rows.append((label, runs, scores))

    print(f"\nper submission (median of {args.repeats} runs; wall s / peak RSS MB; score of 16):")
    for label, runs, scores in rows:
        ours = statistics.median(s for s, _ in runs["ours"])
        line = f"  {label:<10} ours {ours:6.1f} s {max(m for _, m in runs['ours']):5.0f} MB  {scores['ours']:4g}"
        for name in runs:
            if name == "ours":
                continue
            theirs = statistics.median(s for s, _ in runs[name])
            line += (f" | {name} {theirs:6.1f} s {max(m for _, m in runs[name]):5.0f} MB {scores[name]:4g}"
                     f"  ratio {ours / theirs:.2f}")
        print(line)

    # batch: N students, a mix of the three kinds
    kinds = list(SUBMISSIONS.items())
    batch_courses = {v: NbgraderCourse(tmp / f"batch-{v}", assignment, v == "minimal") for v in variants}
    batch_root = tmp / "batch-ours"
    for i in range(args.students):
        label, kind = kinds[i % len(kinds)]
        answers, blank = answers_of(kind)
        folder = batch_root / "submitted" / f"s{i:02d}" / assignment.id
        folder.mkdir(parents=True)
        if blank:
            shutil.copy(assignment.release, folder / assignment.notebook)
        else:
            fill_release(assignment, folder / assignment.notebook, answers)
        for course in batch_courses.values():
            course.submit(f"s{i:02d}", answers, blank)
    start = time.monotonic()
    subprocess.run([sys.executable, "-m", "autograder", "grade-all", str(batch_root), "--jobs", "2"], env=env,
                   check=True, capture_output=True)
    ours = time.monotonic() - start
    print(f"\nbatch of {args.students}: ours grade-all --jobs 2 {ours:.0f} s ({args.students / ours * 60:.1f}/min)")
    for name, course in batch_courses.items():
        start = time.monotonic()
        subprocess.run(course.command("autograde", assignment.id, "--force"), env=env, check=True,
                       capture_output=True)
        theirs = time.monotonic() - start
        print(f"  nbgrader {name} autograde (sequential) {theirs:.0f} s ({args.students / theirs * 60:.1f}/min); "
              f"throughput ratio ours/theirs {theirs / ours:.2f}")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
