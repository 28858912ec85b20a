"""Grade one submission: define the student's functions in a fresh kernel, run every check there, judge here.

The kernel gets the instructor's ``setup`` cell (imports), then each graded cell of the submission on its own, so one
broken cell costs only the checks of its function. Each check then sends its cases to the kernel and judges the plain
data that comes back. A check that times out or kills the kernel fails alone: the kernel is restarted and the
definitions replayed for the next check.
"""

from __future__ import annotations

import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import nbformat
from tqdm import tqdm

from gradekit.checks import CheckResult, Reference
from gradekit.protocol import MIME, driver_name

from autograder.execute import KernelSession
from autograder.notebook import SubmissionError, cell_source, graded_cells, locked_cell_changes, read_submission
from autograder.reference import reference


@dataclass
class Report:
    assignment: str
    submission: str
    results: list[CheckResult]
    seconds: float
    notes: list[str] = field(default_factory=list)
    extra: dict = field(default_factory=dict)

    @property
    def score(self) -> float:
        return sum(r.score for r in self.results)

    @property
    def max_score(self) -> float:
        return sum(r.max_score for r in self.results)


def first_line(error: dict | None) -> str:
    if not error:
        return ""
    return f"{error.get('ename', 'Error')}: {error.get('evalue', '')}".strip()


class Definitions:
    """Runs the setup cell and the student's graded cells in a kernel, remembering what went wrong with each."""

    def __init__(self, assignment, submission):
        self.setup = cell_source(nbformat.read(assignment.source, as_version=4), assignment.setup_cell)
        self.cells = {name: graded_cells(submission).get(name, []) for name in assignment.graded_cells}
        self.problems: dict[str, str] = {}
        self.skip: set[str] = set()

    def run(self, kernel: KernelSession, deadline: float) -> None:
        setup = kernel.run(self.setup)
        if setup.status != "ok":
            raise RuntimeError(f"the instructor's setup cell failed in the grading kernel: {first_line(setup.error)}")
        for name, cells in self.cells.items():
            if not cells:
                self.problems[name] = (f"The graded cell `{name}` is missing from the notebook (no cell has nbgrader "
                                       f"grade_id '{name}'). Was it deleted? Copy it back from the release.")
                continue
            if name in self.skip or deadline - time.monotonic() < 1:
                continue
            run = kernel.run(cells[-1].source, timeout=min(kernel.limits.cell_seconds, deadline - time.monotonic()))
            if run.status == "error":
                self.problems[name] = f"Your `{name}` cell failed to run: {first_line(run.error)}"
            elif run.status in ("timeout", "died"):
                self.problems[name] = (f"Your `{name}` cell " + ("took longer than the time limit to run"
                                       if run.status == "timeout" else "stopped the Python process") +
                                       "; a graded cell should only define the function.")
                self.skip.add(name)
                kernel.restart()
                self.run(kernel, deadline)
                return


def probe_code(check, cases: list[dict], workers: int = 1) -> str:
    request = json.dumps({"driver": driver_name(check.driver), "functions": list(check.functions), "cases": cases,
                          "workers": workers})
    return f"import gradekit.protocol as _grading_protocol\n_grading_protocol.serve(globals(), {request!r})"


def answers_from(outputs: list, n: int) -> list[dict]:
    """The answers the kernel displayed, checked for shape; anything else counts as an error for every case."""
    for output in reversed(outputs):
        data = output.get("data", {}).get(MIME) if output.get("output_type") == "display_data" else None
        if isinstance(data, list) and len(data) == n and all(
                isinstance(a, dict) and (isinstance(a.get("ok"), dict) or isinstance(a.get("error"), dict))
                for a in data):
            return data
    message = "the grader received no readable answer from the notebook's process"
    return [{"error": {"type": "GraderError", "message": message, "where": ""}}] * n


def run_check(kernel: KernelSession, check, cases: list[dict], deadline: float,
              workers: int = 1) -> tuple[str, list[dict], float]:
    """Send a check's cases to the kernel, a batch at a time, until all are answered or the verdict is settled.

    Returns the status ("ok", "timeout" or "died"), the answers so far and the seconds taken. The check's time limit
    covers all its batches."""
    start = time.monotonic()
    limit = min(start + kernel.limits.cell_seconds, deadline)
    answers: list[dict] = []
    workers = check.workers(workers)
    for batch in check.batches(cases, workers):
        if limit - time.monotonic() < 1:
            return "timeout", answers, time.monotonic() - start
        run = kernel.run(probe_code(check, batch, workers), timeout=limit - time.monotonic())
        if run.status in ("timeout", "died"):
            return run.status, answers, time.monotonic() - start
        answers += answers_from(run.outputs, len(batch))
        try:
            if check.settled(answers):
                break
        except Exception:  # noqa: BLE001, S110 - malformed answers: run on, judge() will say what is wrong
            pass
    return "ok", answers, time.monotonic() - start


def judge_run(check, cases, status: str, answers: list[dict], seconds: float, reference) -> CheckResult:
    if status == "timeout":
        return check.result(False, f"Not finished within the time limit of this check ({seconds:.0f} s): is "
                                   "there an endless loop, or a very slow step, in "
                                   f"{' / '.join(f'`{f}`' for f in check.functions)}?")
    if status == "died":
        return check.result(False, "The notebook's Python process stopped while this check ran (os._exit, a crash "
                                   "or too much memory?); the other checks were graded in a fresh process.")
    try:
        return check.judge(cases[:len(answers)], answers, reference)
    except Exception as exc:  # noqa: BLE001 - malformed answers from the student's process
        print(f"autograder: could not judge {check.name}: {exc!r}", file=sys.stderr)
        return check.result(False, f"The results of this check could not be read ({type(exc).__name__}); "
                                   "make sure the function returns the documented types.")


def with_feedback_runs(kernel: KernelSession, check, result: CheckResult, deadline: float, workers: int = 1):
    """Add the check's feedback-only runs (e.g. training with a variant) to its data, if time allows. They never
    change the verdict: a failure only leaves them out of the figure. Returns the kernel's status and the result."""
    cases = check.feedback_cases()
    timeout = min(kernel.limits.cell_seconds, deadline - time.monotonic() - 1)
    if not cases or timeout < 1:
        return "ok", result
    run = kernel.run(probe_code(check, cases, check.workers(workers)), timeout=timeout)
    if run.status != "ok":
        return run.status, result
    runs = [check.keep(a) for a in answers_from(run.outputs, len(cases))]
    return "ok", replace(result, data=result.data | {"feedback_runs": runs})


def kernel_session(assignment) -> KernelSession:
    """The sandboxed kernel session of a grade; refuses (IsolationError) below course.toml's ``min_isolation``, and
    warns on stderr below level full."""
    kernel = KernelSession(assignment.limits, assignment.kernel_packages, assignment.min_isolation)
    isolation = kernel.isolation
    if isolation["level"] != "full":
        print(f"autograder: warning: student code runs at isolation level {isolation['level']!r}, not 'full' "
              f"({isolation.get('reason', '')}); not contained: {', '.join(isolation['missing'])}", file=sys.stderr)
    return kernel


def run_cases(path: Path, assignment, check, cases: list[dict]) -> list[dict]:
    """One check's driver on given cases, with the functions of the submission at ``path``, in a fresh jailed
    kernel as for a grade (e.g. the run behind a content package's export). Raises SubmissionError."""
    definitions = Definitions(assignment, read_submission(path, assignment))
    with kernel_session(assignment) as kernel:
        definitions.run(kernel, time.monotonic() + assignment.limits.submission_seconds)
        status, answers, _ = run_check(kernel, check, cases, time.monotonic() + assignment.limits.cell_seconds)
    if status != "ok":
        raise RuntimeError(f"the submission's run did not finish ({status})")
    return answers


def prepare(assignment, submission, checks, compare_locked: bool = True) -> tuple[Reference, list[str],
                                                                                  dict[str, list[dict]]]:
    """The grader's side of a grade, done in a thread while the kernel starts: the reference, the locked-cell
    comparison and every check's cases. What it imports must be imported before (``preload``): two threads importing
    the same modules can deadlock on Python's import locks."""
    expected = reference(assignment)
    # the reference notebook itself is no copy of the release (it lacks the cells release adds): nothing to compare
    locked = locked_cell_changes(submission, nbformat.read(assignment.release, as_version=4)) if compare_locked else []
    return expected, locked, {check.name: check.cases(expected) for check in checks}


def preload() -> None:
    """The modules ``prepare`` needs that starting a kernel imports too: the source's setup cell's and nbgrader's."""
    import IPython.display  # noqa: F401
    import matplotlib.animation  # noqa: F401
    import matplotlib.pyplot  # noqa: F401
    import nbgrader.utils  # noqa: F401


def not_graded(path: Path, assignment, message: str, only: set[str] | None = None, seconds: float = 0.0) -> Report:
    """The report of a submission that cannot be graded (unreadable, or no notebook in the folder): 0 on every
    check, with the message that says what to submit."""
    checks = [c for c in assignment.checks if only is None or c.name in only]
    return Report(assignment.id, str(path), [check.result(False, message) for check in checks], seconds, [message])


def grade(path: Path, assignment, only: set[str] | None = None, workers: int = 1, figures: bool = True,
          progress: bool = False) -> Report:
    """Grade the notebook at ``path``; ``only`` restricts grading to the named checks; ``workers`` is how many seeds
    of a behaviour check run at once (the kernel forks one single-threaded copy per seed); ``figures`` adds the
    feedback-only runs the feedback page draws; ``progress`` shows a bar over the checks on stderr."""
    start = time.monotonic()
    checks = [c for c in assignment.checks if only is None or c.name in only]
    deadline = start + assignment.limits.submission_seconds
    try:
        submission = read_submission(path, assignment)
    except SubmissionError as exc:
        return not_graded(path, assignment, str(exc), only, time.monotonic() - start)
    definitions = Definitions(assignment, submission)
    kernel = kernel_session(assignment)  # before any student code: below the course's minimum isolation, refuse
    results = []
    check_seconds: dict[str, float] = {}  # each check's wall time, kernel restart included (JUnit's testcase time)
    preload()
    pool = ThreadPoolExecutor(1)
    is_reference = Path(path).resolve() == assignment.source.resolve()
    prepared = pool.submit(prepare, assignment, submission, checks, not is_reference)  # while the kernel starts
    pool.shutdown(wait=False)
    with kernel:
        definitions.run(kernel, deadline)
        expected, locked, all_cases = prepared.result()
        for check in tqdm(checks, desc=f"grading {Path(path).name}", unit="check", disable=not progress,
                          file=sys.stderr, leave=False):
            remaining = deadline - time.monotonic()
            if remaining < 1:
                results.append(check.result(False, "Not run: grading this submission used up its time limit "
                                                   f"({assignment.limits.submission_seconds:.0f} s)."))
                continue
            check_start = time.monotonic()
            cases = all_cases[check.name]
            status, answers, seconds = run_check(kernel, check, cases, deadline, workers)
            result = judge_run(check, cases, status, answers, seconds, expected)
            if status == "ok" and figures:
                status, result = with_feedback_runs(kernel, check, result, deadline, workers)
            if status in ("timeout", "died") and deadline - time.monotonic() > 1:
                kernel.restart()
                definitions.run(kernel, deadline)
            problems = [definitions.problems[f] for f in check.functions if f in definitions.problems]
            if problems and not result.passed:
                result = replace(result, output="\n".join(problems + [result.output]))
            results.append(result)
            check_seconds[check.name] = round(time.monotonic() - check_start, 3)
        restarts, isolation = kernel.restarts, kernel.isolation
    notes = sorted(set(definitions.problems.values()))
    if locked:
        notes.append("Read-only cells were changed (" + "; ".join(locked) + "). The grader ran the original "
                     "read-only code, not your copy, so this does not change your score; a teacher may look at it.")
    if restarts:
        notes.append(f"The grading kernel was restarted {restarts} time(s).")
    return Report(assignment.id, str(path), results, time.monotonic() - start, notes,
                  {"locked_cells_changed": locked, "kernel_restarts": restarts, "isolation": isolation,
                   "check_seconds": check_seconds, "settings": {c.name: asdict(c) for c in checks}})
