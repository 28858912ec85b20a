"""Benchmark: how fast we grade, side by side with `nbgrader autograde`, in one run on one machine.

Every command runs with OMP/OPENBLAS/MKL_NUM_THREADS=1. Measured:

  per submission  a reference, a blank release and a buggy submission (tests/catalogue/bugs/loss_prob_not_log.py),
                  --repeats runs each, interleaved: ours, `python -m autograder grade NB --results R` (which also
                  writes feedback.html), against `nbgrader autograde` of the lecture notebook with one hidden, graded
                  test cell per check of ours (the same cases, drivers and verdict code, run inside the student's
                  kernel, nbgrader's usual design), in two versions:
                    full     the whole Week 3 notebook (nbgrader executes every cell, the training demos included);
                    minimal  only the setup cell, the graded cells and the hidden tests (nbgrader's best case).
  batch           --students submissions (a third each reference, blank, buggy): `python -m autograder grade-all
                  COURSE --jobs 2` against the same submissions graded by one `python -m autograder grade --workers 1`
                  process each, two at a time (both on 2 cores: grade-all --jobs 2 gives each student one worker).
                  --nbgrader-batch adds nbgrader's (sequential) autograde of the same class.
  --fresh-clone   instead of the above: `git clone` of this repository (its HEAD) into /tmp, then `make` timed phase
                  by phase (venv, install, sandbox, first grade, first release), its output lines timestamped; with an
                  empty TMPDIR, so without the cache of the reference's learning curves, as on a new machine
                  (--warm-cache keeps this machine's), and empty pip and uv caches. The clone is deleted afterwards.
                  --installers pip uv: one fresh clone each, `make INSTALLER=pip` then `make INSTALLER=uv`, side by side
                  (the same lock and sources); --until-first-grade stops each `make` at its first graded submission.

Reported for each: median wall seconds; CPU seconds = user+sys of the whole process tree, the Jupyter kernels
included; peak RSS. CPU is read from a cgroup v1 cpuacct group made for each measured command (the command moves
itself into it before exec). The sandbox moves a kernel into cgroups of its own for pids and memory only, so the
kernels stay in that cpuacct group; rusage would miss them, as they are killed, never waited for. Where cpuacct is not
writable, CPU falls back to rusage (what /usr/bin/time reports) and the output says the kernels' CPU is missing; the
JSON keeps both. Peak RSS is ru_maxrss of the command's wait4: the largest single process among the command and the
descendants it waited for (a killed kernel that nobody waited for is not in it). For the batch, the CPU per
submission is also the median of results.json's extra_data.cpu_seconds (grader + kernel) where grade-all writes it.

Scores must agree between the graders (and across the batch): if they do not, the measuring stops, the numbers so far
are printed and written, and the script exits 1 with SCORES DISAGREE.

    .venv/bin/python bench/grading_speed.py --students 20 --repeats 3 --json bench.json
    .venv/bin/python bench/grading_speed.py --students 2 --repeats 1 --skip-full     # a quick try
    .venv/bin/python bench/grading_speed.py --fresh-clone
    .venv/bin/python bench/grading_speed.py --fresh-clone --installers pip uv --until-first-grade
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

THREADS = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
TARGET_REFERENCE_RATIO = 0.35  # one reference grade against nbgrader's autograde of the full notebook (median wall)
TARGET_BLANK_SECONDS = 3.0  # one blank grade (median wall)
TARGET_BATCH_CPU = 5.0  # grade-all: CPU seconds per submission, median over the batch
TARGET_FIRST_GRADE = 60.0  # fresh clone: `make` started to first graded submission (issue 24; was 120)

HIDDEN_TEST = """### BEGIN HIDDEN TESTS
from autograder import config as _config
from gradekit.protocol import run_case as _run_case
from autograder.notebook import reference_functions as _reference_functions
_assignment = _config.load({config!r}).assignment({assignment!r})
_ref = _reference_functions(_assignment)
_check = _assignment.check({check!r})
_cases = _check.cases(_ref)
_answers = [_run_case(_check.driver, [globals()[f] for f in _check.functions], c) for c in _cases]
_result = _check.judge(_cases, _answers, _ref)
assert _result.passed, _result.output
### END HIDDEN TESTS"""


class Disagreement(RuntimeError):
    """Two graders (or two runs) gave a submission different scores: the timings compare different work."""


# --- measuring one command ------------------------------------------------------------------------------------------

def env_with_venv() -> dict:
    env = dict(os.environ, **THREADS)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))  # for the hidden tests
    return env


def own_cpuacct() -> Path | None:
    """This process's cgroup v1 cpuacct folder, if we may make groups in it."""
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, names, path = line.split(":", 2)
            if "cpuacct" in names.split(","):
                base = Path("/sys/fs/cgroup/cpuacct") / path.lstrip("/")
                if not base.is_dir():
                    base = Path("/sys/fs/cgroup/cpu,cpuacct") / path.lstrip("/")
                probe = base / f"grading-speed-probe-{os.getpid()}"
                probe.mkdir()
                probe.rmdir()
                return base
    except OSError:
        pass
    return None


CPUACCT = own_cpuacct()
_group_numbers = itertools.count()


class CpuGroup:
    """A cgroup v1 cpuacct group for one command: everything the command starts is counted in it, kernels included."""

    def __init__(self, base: Path):
        self.path = base / f"grading-speed-{os.getpid()}-{next(_group_numbers)}"
        self.path.mkdir()

    def wrap(self, cmd: list[str]) -> list[str]:
        """The command, moving itself into the group before exec (sh writes its own pid, then execs in place)."""
        return ["/bin/sh", "-c", 'echo $$ > "$0" && exec "$@"', str(self.path / "cgroup.procs"), *cmd]

    def seconds(self) -> float:
        return int((self.path / "cpuacct.usage").read_text()) / 1e9

    def procs(self) -> list[int]:
        return [int(p) for p in (self.path / "cgroup.procs").read_text().split()]

    def close(self) -> tuple[float, list[int]]:
        """Wait (30 s at most) for the group to empty, read its CPU seconds, remove it. Also returns the pids that
        were still in it: processes the command left behind, which we started, so they are killed first."""
        deadline = time.monotonic() + 30
        while (left := self.procs()) and time.monotonic() < deadline:
            time.sleep(0.1)
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        while self.procs() and time.monotonic() < deadline + 10:
            time.sleep(0.1)
        seconds = self.seconds()
        for _ in range(100):
            try:
                self.path.rmdir()
                break
            except OSError:
                time.sleep(0.05)
        else:
            print(f"  warning: cgroup {self.path} could not be removed", flush=True)
        return seconds, left


def measure(cmd: list[str], env: dict, cwd: Path | None = None) -> dict:
    """Run ``cmd`` to its end: wall seconds, CPU seconds of its whole tree, rusage CPU, peak RSS (MB)."""
    group = CpuGroup(CPUACCT) if CPUACCT else None
    with tempfile.TemporaryFile() as err:
        start = time.monotonic()
        proc = subprocess.Popen(group.wrap(cmd) if group else cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL,
                                stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.monotonic() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        rusage_cpu = usage.ru_utime + usage.ru_stime
        cpu, left = group.close() if group else (rusage_cpu, [])
        if proc.returncode != 0:
            err.seek(0)
            tail = err.read().decode(errors="replace")[-3000:]
            raise RuntimeError(f"exit code {proc.returncode}: {' '.join(map(str, cmd))}\n{tail}")
    if left:
        print(f"  warning: {len(left)} process(es) outlived {' '.join(map(str, cmd[:4]))} ...; killed", flush=True)
    return {"wall": wall, "cpu": cpu, "cpu_rusage": rusage_cpu,
            "rss_mb": usage.ru_maxrss / 1024, "cpu_source": "cpuacct" if group else "rusage"}


# --- nbgrader's course ----------------------------------------------------------------------------------------------

def nbgrader_source(assignment, minimal: bool):
    """The Week 3 source notebook with a hidden, graded test cell per check of ours."""
    import nbformat

    nb = nbformat.read(assignment.source, as_version=4)
    if minimal:
        keep = {assignment.setup_cell, *assignment.graded_cells}
        nb.cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") in keep]
    for check in assignment.checks:
        cell = nbformat.v4.new_code_cell(HIDDEN_TEST.format(config=str(assignment.root / "course.toml"),
                                                            assignment=assignment.id, check=check.name))
        cell.metadata["nbgrader"] = {"grade": True, "solution": False, "locked": True, "task": False,
                                     "points": check.points, "grade_id": f"test_{check.name}", "schema_version": 3}
        nb.cells.append(cell)
    return nb


class NbgraderCourse:
    def __init__(self, root: Path, assignment, minimal: bool):
        import nbformat

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

    def autograde(self, student: str | None = None) -> list[str]:
        return self.command("autograde", self.assignment.id, "--force", *([f"--student={student}"] if student else []))

    def run(self, *args) -> None:
        subprocess.run(self.command(*args), check=True, capture_output=True, env=env_with_venv())

    def submit(self, student: str, answers: dict | None, blank: bool = False) -> None:
        import nbformat

        from autograder.notebook import graded_cells
        from tests.conftest import fill_release

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
        import nbformat

        nb = nbformat.read(self.root / "autograded" / student / self.assignment.id / self.assignment.notebook, 4)
        total = 0.0
        for cell in nb.cells:
            meta = cell.metadata.get("nbgrader", {})
            if meta.get("grade") and cell.cell_type == "code":  # the hidden tests (not the manually graded answers)
                failed = any(o.get("output_type") == "error" or o.get("name") == "stderr" for o in cell.outputs)
                total += 0 if failed else meta["points"]
        return total


# --- submissions ----------------------------------------------------------------------------------------------------

def submissions() -> dict:
    from tests.conftest import CATALOGUE

    return {"reference": None, "blank": "blank", "buggy": CATALOGUE / "bugs" / "loss_prob_not_log.py"}


def answers_of(kind) -> tuple[dict | None, bool]:
    from tests.conftest import load_variant

    if kind == "blank":
        return None, True
    return (load_variant(kind)[0] if kind else None), False


def write_ours(assignment, path: Path, answers: dict | None, blank: bool) -> Path:
    """Our release with the answers (nbgrader's course gets the same answers in its own release)."""
    from tests.conftest import fill_release

    path.parent.mkdir(parents=True, exist_ok=True)
    if blank:
        shutil.copy(assignment.release, path)
    else:
        fill_release(assignment, path, answers)
    return path


def ours_grade(notebook: Path, results: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "autograder", "grade", str(notebook), "--results", str(results), *extra]


def read_results(path: Path) -> dict:
    return json.loads(path.read_text())


def cpu_field(results: dict) -> dict | None:
    """results.json's extra_data.cpu_seconds: {"grader": float, "kernel": float or None}, where written."""
    value = results.get("extra_data", {}).get("cpu_seconds")
    return value if isinstance(value, dict) and isinstance(value.get("grader"), (int, float)) else None


def field_total(value: dict) -> float:
    return value["grader"] + (value.get("kernel") or 0.0)


def agree(what: str, scores: dict) -> None:
    if len(set(scores.values())) > 1:
        raise Disagreement(f"SCORES DISAGREE for {what}: " + ", ".join(f"{k} {v:g}" for k, v in scores.items()))


# --- the two parts --------------------------------------------------------------------------------------------------

def per_submission(assignment, tmp: Path, variants: list[str], repeats: int, env: dict, out: dict) -> None:
    courses = {v: NbgraderCourse(tmp / f"nbgrader-{v}", assignment, v == "minimal") for v in variants}
    for label, kind in submissions().items():
        answers, blank = answers_of(kind)
        for course in courses.values():
            course.submit(label, answers, blank)
        notebook = write_ours(assignment, tmp / "ours" / label / assignment.notebook, answers, blank)
        results = tmp / "ours" / label / "results.json"
        commands = {"ours": ours_grade(notebook, results),
                    **{f"nbgrader {v}": c.autograde(label) for v, c in courses.items()}}
        runs = {name: [] for name in commands}
        for i in range(repeats):  # interleaved, so that a change of load touches every grader alike
            for name, cmd in commands.items():
                runs[name].append(measure(cmd, env))
                r = runs[name][-1]
                print(f"  {label:<9} {name:<17} run {i + 1}/{repeats}: {r['wall']:6.1f} s wall, "
                      f"{r['cpu']:6.1f} CPU-s, {r['rss_mb']:4.0f} MB", flush=True)
        scores = {"ours": read_results(results)["score"],
                  **{f"nbgrader {v}": c.score(label) for v, c in courses.items()}}
        out["per_submission"][label] = {name: {"runs": runs[name], "score": scores[name]} for name in commands}
        agree(f"the {label} submission", scores)


def batch(assignment, tmp: Path, variants: list[str], students: int, repeats: int, nbgrader_too: bool, env: dict,
          out: dict) -> None:
    kinds = list(submissions().items())
    root = tmp / "batch"
    nb_courses = {v: NbgraderCourse(tmp / f"batch-nbgrader-{v}", assignment, v == "minimal")
                  for v in (variants if nbgrader_too else [])}
    kind_of = {}
    for i in range(students):
        label, kind = kinds[i % len(kinds)]
        student = f"s{i:02d}"
        kind_of[student] = label
        answers, blank = answers_of(kind)
        write_ours(assignment, root / "submitted" / student / assignment.id / assignment.notebook, answers, blank)
        for course in nb_courses.values():
            course.submit(student, answers, blank)
    notebooks = {s: root / "submitted" / s / assignment.id / assignment.notebook for s in kind_of}
    result = out["batch"] = {"students": kind_of, "grade-all": [], "one process each": [],
                             **{f"nbgrader {v}": [] for v in nb_courses}}
    for rep in range(repeats):
        results_dir = tmp / f"grade-all-{rep}"
        run = measure([sys.executable, "-m", "autograder", "grade-all", str(root), "--jobs", "2",
                       "--out", str(results_dir)], env)
        each = {s: read_results(results_dir / s / assignment.id / "results.json") for s in kind_of}
        run["scores"] = {s: r["score"] for s, r in each.items()}
        run["cpu_seconds_field"] = {s: cpu_field(r) for s, r in each.items()}
        result["grade-all"].append(run)
        print(f"  batch run {rep + 1}/{repeats} grade-all --jobs 2: {run['wall']:6.1f} s wall, "
              f"{run['cpu']:6.1f} CPU-s", flush=True)

        one_dir = tmp / f"one-each-{rep}"

        def grade_one(student: str) -> dict:
            path = one_dir / student / assignment.id / "results.json"
            r = measure(ours_grade(notebooks[student], path, "--assignment", assignment.id, "--workers", "1"), env)
            r["student"], r["score"] = student, read_results(path)["score"]
            r["cpu_seconds_field"] = cpu_field(read_results(path))
            return r

        start = time.monotonic()
        with ThreadPoolExecutor(max_workers=2) as pool:
            processes = list(pool.map(grade_one, kind_of))
        run = {"wall": time.monotonic() - start, "processes": processes, "cpu": sum(p["cpu"] for p in processes),
               "cpu_rusage": sum(p["cpu_rusage"] for p in processes), "rss_mb": max(p["rss_mb"] for p in processes),
               "scores": {p["student"]: p["score"] for p in processes}}
        result["one process each"].append(run)
        print(f"  batch run {rep + 1}/{repeats} one grade process each, 2 at a time: {run['wall']:6.1f} s wall, "
              f"{run['cpu']:6.1f} CPU-s", flush=True)

        for v, course in nb_courses.items():
            run = measure(course.autograde(), env)
            run["scores"] = {s: course.score(s) for s in kind_of}
            result[f"nbgrader {v}"].append(run)
            print(f"  batch run {rep + 1}/{repeats} nbgrader {v} autograde (sequential): {run['wall']:6.1f} s wall, "
                  f"{run['cpu']:6.1f} CPU-s", flush=True)

    single = {label: runs["ours"]["score"] for label, runs in out["per_submission"].items()}
    for student, label in kind_of.items():
        scores = {f"{name} (run {i + 1})": run["scores"][student]
                  for name in result if name != "students" for i, run in enumerate(result[name])}
        if label in single:
            scores[f"single {label} grade"] = single[label]
        agree(f"batch student {student} ({label})", scores)


# --- the report -----------------------------------------------------------------------------------------------------

def med(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def batch_cpu_per_submission(run: dict, n: int) -> tuple[float, str]:
    """The median over the students of their CPU seconds, and where it comes from."""
    if "processes" in run:
        return statistics.median(p["cpu"] for p in run["processes"]), "median of each process's cgroup"
    fields = run.get("cpu_seconds_field") or {}
    if fields and all(fields.values()):
        missing = sum(1 for f in fields.values() if f.get("kernel") is None)
        note = "median of results.json cpu_seconds (grader + kernel)"
        if missing:
            note += f"; {missing} without the kernel's"
        return statistics.median(field_total(f) for f in fields.values()), note
    return run["cpu"] / n, "total / n (results.json has no cpu_seconds)"


def report(out: dict) -> list[dict]:
    """Print the tables; return the targets with whether each holds."""
    targets = []
    cpu_note = ("CPU = user+sys of the whole process tree, kernels included (cgroup v1 cpuacct)" if CPUACCT else
                "CPU = rusage of the waited-for processes: THE KERNELS' CPU IS MISSING (no writable cpuacct cgroup)")
    print(f"\n{cpu_note}; in brackets: rusage, which misses the killed kernels (= /usr/bin/time)")
    print("RSS = peak resident memory of the largest single process the command waited for (ru_maxrss)")
    rows = out["per_submission"]
    if rows:
        repeats = len(next(iter(next(iter(rows.values())).values()))["runs"])
        points = sum(c.points for c in out["_assignment"].checks)
        print(f"\nper submission, median of {repeats} run(s); score of {points:g}; ratio = ours / this (wall)")
        print(f"  {'submission':<10} {'grader':<17} {'wall s':>7} {'CPU-s':>7} {'(rusage)':>9} {'RSS MB':>7} "
              f"{'score':>6} {'ratio':>6}")
        for label, graders in rows.items():
            ours = med(graders["ours"]["runs"], "wall")
            for name, g in graders.items():
                wall = med(g["runs"], "wall")
                ratio = "" if name == "ours" else f"{ours / wall:.2f}"
                print(f"  {label:<10} {name:<17} {wall:7.1f} {med(g['runs'], 'cpu'):7.1f} "
                      f"{'(' + format(med(g['runs'], 'cpu_rusage'), '.1f') + ')':>9} "
                      f"{max(r['rss_mb'] for r in g['runs']):7.0f} {g['score']:6g} {ratio:>6}")
        if "reference" in rows and "nbgrader full" in rows["reference"]:
            ours = med(rows["reference"]["ours"]["runs"], "wall")
            full = med(rows["reference"]["nbgrader full"]["runs"], "wall")
            targets.append({"target": f"reference grade <= {TARGET_REFERENCE_RATIO} x nbgrader full (median wall)",
                            "value": ours / full, "limit": TARGET_REFERENCE_RATIO,
                            "detail": f"{ours:.1f} s / {full:.1f} s = {ours / full:.2f}",
                            "holds": ours / full <= TARGET_REFERENCE_RATIO})
        else:
            targets.append({"target": f"reference grade <= {TARGET_REFERENCE_RATIO} x nbgrader full (median wall)",
                            "holds": None, "detail": "nbgrader full not measured (--skip-full)"})
        if "blank" in rows:
            blank = med(rows["blank"]["ours"]["runs"], "wall")
            targets.append({"target": f"blank grade <= {TARGET_BLANK_SECONDS:g} s wall (median)", "value": blank,
                            "limit": TARGET_BLANK_SECONDS, "detail": f"{blank:.1f} s",
                            "holds": blank <= TARGET_BLANK_SECONDS})
    b = out.get("batch")
    if b:
        n = len(b["students"])
        mix = ", ".join(f"{list(b['students'].values()).count(k)} {k}" for k in dict.fromkeys(b["students"].values()))
        reps = len(b["grade-all"])
        print(f"\nbatch of {n} ({mix}), median of {reps} run(s); CPU/sub = per-submission CPU, median over the batch")
        print(f"  {'variant':<46} {'wall s':>7} {'per min':>7} {'CPU-s':>7} {'(rusage)':>9} {'CPU/sub':>8} "
              f"{'total/n':>8} {'RSS MB':>7}  CPU/sub from")
        labels = {"grade-all": "grade-all --jobs 2",
                  "one process each": "grade --workers 1: a process each, 2 at a time"}
        for name, runs in b.items():
            if name == "students" or not runs:
                continue
            wall, cpu = med(runs, "wall"), med(runs, "cpu")
            per_sub = [batch_cpu_per_submission(r, n) for r in runs]
            if name.startswith("nbgrader"):
                per_sub = [(r["cpu"] / n, "total / n") for r in runs]
            median_sub = statistics.median(p for p, _ in per_sub)
            print(f"  {labels.get(name, name + ' autograde (sequential)'):<46} {wall:7.1f} {n / wall * 60:7.1f} "
                  f"{cpu:7.1f} {'(' + format(med(runs, 'cpu_rusage'), '.1f') + ')':>9} {median_sub:8.2f} "
                  f"{cpu / n:8.2f} {max(r['rss_mb'] for r in runs):7.0f}  {per_sub[0][1]}")
            if name == "grade-all":
                targets.append({"target": f"grade-all <= {TARGET_BATCH_CPU:g} CPU-s per submission (median over the "
                                          "batch)", "value": median_sub, "limit": TARGET_BATCH_CPU,
                                "detail": f"{median_sub:.2f} CPU-s ({per_sub[0][1]})",
                                "holds": median_sub <= TARGET_BATCH_CPU})
        fields = [f for r in b["one process each"] for p in r["processes"] if (f := p.get("cpu_seconds_field"))]
        if fields:
            cg = statistics.median(p["cpu"] for r in b["one process each"] for p in r["processes"])
            print(f"  check of results.json cpu_seconds (one process each): median grader+kernel "
                  f"{statistics.median(field_total(f) for f in fields):.2f} CPU-s, the processes' cgroups {cg:.2f}")
    print("\ntargets:")
    for t in targets:
        mark = {True: "HOLDS", False: "MISSED", None: "not measured"}[t["holds"]]
        print(f"  [{mark:^12}] {t['target']}: {t['detail']}")
    return targets


# --- fresh clone ----------------------------------------------------------------------------------------------------

PHASES = [  # (name, pattern of the line that ends it), in make's order
    ("venv creation", re.compile(r"-m pip install")),
    ("install (requirements.lock)", re.compile(r"touch \.venv/installed")),
    ("sandbox check", re.compile(r"-m autograder demo")),
    ("first grade (reference)", re.compile(r"^regenerating release")),  # the demo grades the reference first
    ("first release generation", re.compile(r"^grading blank: ")),
]
FIRST_GRADE = PHASES[3]  # what --until-first-grade waits for
NOISE = re.compile(r"^WARNING: Location 'file://.*' is ignored")  # pip on this machine: a missing local index dir


def fresh_clone(args, installer: str | None = None) -> dict:
    """git clone this repository, run `make` (``make INSTALLER=installer``) in it with its output timestamped, and time
    its phases. Empty pip and uv caches of its own: nothing installed or downloaded before counts."""
    head = subprocess.run(["git", "-C", str(ROOT), "log", "-1", "--format=%h %s"], capture_output=True, text=True)
    dest = Path(tempfile.mkdtemp(prefix="fresh-", dir="/tmp"))
    # a TMPDIR of its own: no autograder-cache-<uid> of earlier runs (the reference's curves), as on a new machine
    tmp = None if args.warm_cache else Path(tempfile.mkdtemp(prefix="fresh-tmp-", dir="/tmp"))
    print(f"fresh clone of {ROOT} (HEAD {head.stdout.strip()}; uncommitted changes are not in it) into {dest}; "
          + (f"cache of the reference's curves: {tempfile.gettempdir()}/autograder-cache-<uid> as it is on this machine"
             if tmp is None else f"TMPDIR {tmp}, so no cache of the reference's curves (as on a new machine)"))
    dest.chmod(0o755)  # mkdtemp's 0700 would keep the kernel's own uid out of the venv, unlike a clone in /work
    if tmp:
        tmp.chmod(0o1777)  # as /tmp: the sandbox stages a kernel's folder there, reached by the kernel's uid
    caches = Path(tempfile.mkdtemp(prefix="fresh-caches-", dir="/tmp"))
    env = dict(os.environ, **THREADS, PYTHONUNBUFFERED="1", **({"TMPDIR": str(tmp)} if tmp else {}),
               PIP_CACHE_DIR=str(caches / "pip"), UV_CACHE_DIR=str(caches / "uv"))
    for var in ("PYTHONPATH", "VIRTUAL_ENV"):
        env.pop(var, None)
    lines, noise = [], 0
    try:
        subprocess.run(["git", "clone", "-q", str(ROOT), str(dest)], check=True)
        start = time.monotonic()
        command = ["make"] + ([f"INSTALLER={installer}"] if installer else [])
        print(f"$ {' '.join(command)}", flush=True)
        proc = subprocess.Popen(command, cwd=dest, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True)
        stop = FIRST_GRADE[1]
        buffer = b""
        while chunk := proc.stdout.read1(65536):
            now = time.monotonic() - start
            buffer += chunk
            *parts, buffer = re.split(rb"[\r\n]", buffer)
            for part in parts:
                text = part.decode(errors="replace").rstrip()
                if not text.strip():
                    continue
                lines.append((now, text))
                if NOISE.match(text):
                    noise += 1
                elif "it/s]" not in text and "s/it]" not in text and "%|" not in text:  # tqdm's redrawn bars
                    print(f"[{now:7.1f} s] {text}", flush=True)
                if args.until_first_grade and stop.search(text) and proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGTERM)  # the first grade is done: the rest of the demo is not timed
        if buffer.strip():
            lines.append((time.monotonic() - start, buffer.decode(errors="replace")))
        code = proc.wait()
        total = time.monotonic() - start
        if args.until_first_grade and any(stop.search(text) for _, text in lines):
            code = 0  # stopped on purpose
    finally:
        shutil.rmtree(dest, ignore_errors=True)
        shutil.rmtree(caches, ignore_errors=True)
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    if noise:
        print(f"({noise} pip warnings 'Location file://... is ignored' not shown: a local index of this machine)")
    phases, previous = [], 0.0
    for name, pattern in PHASES:
        at = next((t for t, text in lines if pattern.search(text)), None)
        if at is None:
            phases.append({"phase": name, "seconds": None, "ends_at": None})
            continue
        phases.append({"phase": name, "seconds": at - previous, "ends_at": at})
        previous = at
    first = phases[PHASES.index(FIRST_GRADE)]["ends_at"]
    last = max((p["ends_at"] for p in phases if p["ends_at"] is not None), default=None)
    print(f"\nmake exited {code} after {total:.1f} s (fresh clone deleted)\n\nphases (seconds; ends at):")
    for p in phases:
        print(f"  {p['phase']:<26} " + ("not seen" if p["seconds"] is None else
                                        f"{p['seconds']:7.1f}   {p['ends_at']:7.1f}"))
    print(f"  {'rest of the demo':<26} {total - (last or total):7.1f}   {total:7.1f}")
    holds = first is not None and first <= TARGET_FIRST_GRADE
    print(f"\ntarget: first graded submission <= {TARGET_FIRST_GRADE:g} s after `make` starts: "
          + ("not reached" if first is None else f"{first:.1f} s, {'HOLDS' if holds else 'MISSED'}"))
    if code != 0:
        print("make FAILED; its last lines:\n" + "\n".join(text for _, text in lines[-20:]), file=sys.stderr)
    return {"commit": head.stdout.strip(), "installer": installer or "make's default", "cold_cache": tmp is not None,
            "exit_code": code, "total_seconds": total, "until_first_grade": args.until_first_grade,
            "phases": phases,
            "first_graded_seconds": first, "target_seconds": TARGET_FIRST_GRADE, "holds": holds,
            "lines": [{"t": t, "line": text} for t, text in lines if not NOISE.match(text)]}


# --- main -----------------------------------------------------------------------------------------------------------

def machine() -> dict:
    return {"cores": os.cpu_count(), "load_average": os.getloadavg(), "python": sys.version.split()[0],
            "cpu_measured_with": "cgroup v1 cpuacct" if CPUACCT else "rusage (kernels missing)", **THREADS}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--students", type=int, default=20, help="submissions in the batch (default 20; 0: no batch)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each single grade (default 3)")
    parser.add_argument("--batch-repeats", type=int, default=1, help="runs of each batch variant (default 1)")
    parser.add_argument("--skip-full", action="store_true", help="time nbgrader on the minimal notebook only")
    parser.add_argument("--nbgrader-batch", action="store_true", help="also time nbgrader's autograde of the batch")
    parser.add_argument("--fresh-clone", action="store_true",
                        help="only this: time `make` in a fresh clone up to its first graded submission")
    parser.add_argument("--warm-cache", action="store_true",
                        help="with --fresh-clone: keep this machine's TMPDIR and so its cache of the reference's "
                             "learning curves (default: an empty TMPDIR, as on a new machine)")
    parser.add_argument("--installers", nargs="+", choices=["pip", "uv"],
                        help="with --fresh-clone: one fresh clone per installer (make INSTALLER=...), side by side")
    parser.add_argument("--until-first-grade", action="store_true",
                        help="with --fresh-clone: stop `make` once its first submission is graded")
    parser.add_argument("--json", help="write all raw numbers to this file")
    args = parser.parse_args()
    out = {"machine": machine(), "settings": vars(args)}
    print(f"{os.cpu_count()} cores, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; threads pinned "
          f"(OMP/OPENBLAS/MKL=1); CPU from {out['machine']['cpu_measured_with']}", flush=True)
    if not CPUACCT:
        print("WARNING: no writable cgroup v1 cpuacct hierarchy: CPU falls back to RUSAGE_CHILDREN, which misses the "
              "Jupyter kernels' CPU (they are killed, not waited for)", flush=True)
    if args.fresh_clone:
        runs = [fresh_clone(args, installer) for installer in (args.installers or [None])]
        out["fresh_clone"] = runs[0] if len(runs) == 1 else runs
        if len(runs) > 1:
            print("\nside by side (seconds; the same lock, sources and machine, one run):")
            def row(name, cells):
                print(f"  {name:<30}" + "".join(f"{'-' if c is None else f'{c:.1f}':>10}" for c in cells))

            print(f"  {'phase':<30}" + "".join(f"{r['installer']:>10}" for r in runs))
            for i, (name, _) in enumerate(PHASES):
                row(name, [r["phases"][i]["seconds"] for r in runs])
            row("first graded submission at", [r["first_graded_seconds"] for r in runs])
        if args.json:
            Path(args.json).write_text(json.dumps(out, indent=1))
        return 0 if all(r["exit_code"] == 0 for r in runs) else 1

    from autograder import config

    assignment = config.load().assignment("week03_policy_gradients")
    env = env_with_venv()
    variants = ["minimal"] + ([] if args.skip_full else ["full"])
    tmp = Path(tempfile.mkdtemp(prefix="bench-"))
    out |= {"per_submission": {}, "_assignment": assignment}
    failure = None
    try:
        if args.repeats > 0:
            print(f"\nper submission, {args.repeats} run(s) each:", flush=True)
            per_submission(assignment, tmp, variants, args.repeats, env, out)
        if args.students > 0:
            print(f"\nbatch of {args.students}:", flush=True)
            batch(assignment, tmp, variants, args.students, args.batch_repeats, args.nbgrader_batch, env, out)
    except Disagreement as exc:
        failure = exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    out["targets"] = report(out)
    out.pop("_assignment")
    out["scores_agree"] = failure is None
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
        print(f"\nraw numbers: {args.json}")
    if failure:
        print(f"\nFAILED: {failure}", file=sys.stderr)
        return 1
    print("\nscores agree between the graders" + (" and across the batch" if args.students > 0 else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
