"""Grade one submission: define the student's functions in a fresh kernel, run every check here, judge here.

The kernel gets the instructor's ``setup`` cell (imports) as part of its start, then each graded cell of the submission
on its own, so one broken cell costs only the checks of its function; then it serves calls to those functions
(``serve``) and nothing else. Each check's driver runs on the grader's side (``autograder.trusted``: the loop, its
environment and records are the grader's), calling the student's functions across the channel, and the records are
judged here. A check that times out or kills the kernel fails alone: the kernel is restarted, the definitions
replayed and the serving started again for the next check.

A ``Grader`` holds what does not depend on the submission (the reference, every check's cases and expected answers)
and computes it once per process: a batch worker (``worker.py``) grades many submissions with one Grader, each in a
fresh kernel of its own that it starts while the previous submission is graded.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import nbformat

from gradekit.checks import CheckResult, ExactCheck, Reference
from gradekit.protocol import driver_name

from autograder import trusted
from autograder.channel import SERVE_CELL, socket_paths
from autograder.execute import KernelThread
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
    """Runs the student's graded cells in a kernel (whose start ran the setup cell), remembering what went wrong with
    each."""

    def __init__(self, assignment, submission):
        self.cells = {name: graded_cells(submission).get(name, []) for name in assignment.graded_cells}
        self.problems: dict[str, str] = {}
        self.skip: set[str] = set()
        self.socket: str | None = None  # where the kernel serves calls to the functions, once it does

    def run(self, kernel: KernelThread, deadline: float) -> None:
        """The kernel starts serving (before any student code: a cell that uses up the processes or threads the
        kernel may have cannot stop it), then the graded cells define the functions it serves (looked up by name at
        each call)."""
        setup = kernel.setup_run
        if setup is None or setup.status != "ok":
            raise RuntimeError("the kernel's setup (the instructor's setup cell, the grader's imports) failed: "
                               f"{first_line(setup.error) if setup else 'not run'}")
        self.socket = serve(kernel)
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


def serve(kernel: KernelThread) -> str | None:
    """The kernel starts answering calls to the functions its notebook defines (each connection from a copy of
    itself, so seeds never share the student's state). The path the grader connects to, or None if it could not."""
    inside, outside = socket_paths(kernel.box)
    run = kernel.run(SERVE_CELL.format(path=inside, fork=True), timeout=kernel.limits.cell_seconds)
    return outside if run.status == "ok" else None


NOT_SERVING = {"type": "GraderError", "where": "", "message": (
    "the notebook's Python process did not answer the grader's calls after your graded cells ran (did a cell change "
    "`gradekit`, `__import__` or the process itself?)")}


def run_check(kernel: KernelThread, path: str | None, check, cases: list[dict], deadline: float,
              workers: int = 1) -> tuple[str, list[dict], float]:
    """Run a check's driver on its cases on the grader's side (``autograder.trusted``), the student's functions
    answering from the kernel serving at ``path``, a batch at a time, until all are answered or the verdict is
    settled.

    Returns the status ("ok", "timeout" or "died"), the answers so far and the seconds taken. The check's time limit
    covers all its batches."""
    start = time.monotonic()
    limit = min(start + kernel.limits.cell_seconds, deadline)
    if path is None:
        return "ok", [{"error": NOT_SERVING}] * len(cases), 0.0
    answers: list[dict] = []
    workers = check.workers(workers)
    for batch in check.batches(cases, workers):
        if limit - time.monotonic() < 1:
            return "timeout", answers, time.monotonic() - start
        status, got = trusted.run(path, check.driver, check.functions, batch, workers, limit)
        answers += got
        if status != "ok":
            return status, answers, time.monotonic() - start
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


def blame(check, result: CheckResult, earlier: list[CheckResult], assignment) -> CheckResult:
    """A failed check that trains with several functions, one of which already failed its own exactness check: its
    hint names the first such function (in the check's order), not the check's guess about the last one (or the
    error of a run, e.g. a loss that diverged). Data only: ``result.hint``, the last line of its output, is replaced
    or added."""
    if result.passed or len(check.functions) < 2:
        return result
    owners = {}
    for other in earlier:
        own = assignment.check(other.name)
        if not other.passed and isinstance(own, ExactCheck) and len(own.functions) == 1:
            owners.setdefault(own.functions[0], other.name)
    function = next((f for f in check.functions if f in owners), None)
    if function is None:
        return result
    hint = (f"`{function}` failed its own check ({owners[function]}) first: fix it there. This check trains with it, "
            "so it fails with it whatever the other functions do.")
    output = result.output.removesuffix(result.hint) if result.hint else result.output + "\n"  # (an error: no hint)
    return replace(result, output=output + hint, hint=hint)


def run_key(driver, functions, case: dict) -> str:
    """What makes a run: its driver, the student's functions it runs on and its case (the submission is given)."""
    return json.dumps([driver_name(driver), list(functions), case], sort_keys=True)


def with_feedback_runs(kernel: KernelThread, path: str | None, check, result: CheckResult, deadline: float,
                       workers: int = 1, done: dict[str, dict] | None = None):
    """Add the check's feedback-only runs (e.g. training with a variant) to its data, if time allows. They never
    change the verdict: a failure only leaves them out of the figure. Runs in ``done`` (answers of this submission's
    earlier checks, by ``run_key``) are reused, not run again. Returns the kernel's status and the result."""
    driver, functions, cases = check.feedback_runs()
    done = {} if done is None else done
    keys = [run_key(driver, functions, case) for case in cases]
    missing = [case for case, key in zip(cases, keys) if key not in done]
    timeout = min(kernel.limits.cell_seconds, deadline - time.monotonic() - 1)
    if not cases or (missing and (timeout < 1 or path is None)):
        return "ok", result
    if missing:
        status, answers = trusted.run(path, driver, functions, missing, check.workers(workers),
                                      time.monotonic() + timeout)
        if status != "ok":
            return status, result
        done |= {run_key(driver, functions, case): answer for case, answer in zip(missing, answers)}
    runs = [check.keep(done[key]) for key in keys]
    return "ok", replace(result, data=result.data | {"feedback_runs": runs})


def setup_code(assignment) -> str:
    """The instructor's setup cell (imports), from the source notebook: every grading kernel runs it first. Read before
    the kernel can start, so without nbformat's validation, whose first use takes ~50 ms (and which would only log: the
    notebook is the instructor's, and validated when the reference is read)."""
    source = nbformat.reader.reads(assignment.source.read_text(encoding="utf-8"))
    return cell_source(nbformat.convert(source, 4), assignment.setup_cell)


def preload_code(output_chars: int | None = None) -> str:
    """The kernel's last start cell: the channel's server (``gradekit.channel``), imported while the kernel would wait
    for the grader to prepare, or for its student (a batch's next kernel), not while a check runs; with
    ``output_chars``, what a cell may print (``gradekit.protocol.limit_output``). The drivers are not imported: they
    run on the grader's side."""
    return "import gradekit.channel, gradekit.protocol as _grading_protocol\n" + (
        f"_grading_protocol.limit_output({output_chars})\n" if output_chars else "")


def output_chars(assignment) -> int:
    """What a cell of the student's kernel may print: course.toml's ``output_kb`` (the gate keeps no more)."""
    return int(assignment.limits.output_kb * 1024)


def kernel_session(assignment, setup: list[str] | None = None, slot: int = 0, cpus: int = 1) -> KernelThread:
    """A sandboxed kernel for one submission, starting now in a thread of its own (``setup`` included: by default
    the instructor's setup cell, then ``preload_code``); refuses (IsolationError) below course.toml's
    ``min_isolation``, and warns on stderr below level full."""
    if setup is None:
        setup = [setup_code(assignment), preload_code(output_chars(assignment))]
    kernel = KernelThread(assignment.limits, assignment.kernel_packages, assignment.min_isolation, setup, slot, cpus)
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
        status, answers, _ = run_check(kernel, definitions.socket, check, cases,
                                       time.monotonic() + assignment.limits.cell_seconds)
    if status != "ok":
        raise RuntimeError(f"the submission's run did not finish ({status})")
    return answers


def not_graded(path: Path, assignment, message: str, only: set[str] | None = None, seconds: float = 0.0) -> Report:
    """The report of a submission that cannot be graded (unreadable, or no notebook in the folder): 0 on every
    check, with the message that says what to submit."""
    checks = [c for c in assignment.checks if only is None or c.name in only]
    return Report(assignment.id, str(path), [check.result(False, message) for check in checks], seconds, [message])


class Grader:
    """Grades submissions of one assignment in this process: ``only`` restricts grading to the named checks;
    ``workers`` is how many seeds of a behaviour check run at once (a worker of the grader and a copy of the kernel per
    seed); ``figures`` adds the feedback-only runs the feedback page draws.

    What does not depend on the submission is computed once, on first use: the setup cell, the reference (whose
    expected answers are remembered per case), every check's cases. Student code runs only in the kernels."""

    def __init__(self, assignment, only: set[str] | None = None, workers: int = 1, figures: bool = True):
        self.assignment, self.only, self.workers, self.figures = assignment, only, workers, figures
        self.checks = [c for c in assignment.checks if only is None or c.name in only]
        self.setup = [setup_code(assignment), preload_code(output_chars(assignment))]
        self._expected: Reference | None = None
        self._cases: dict[str, list[dict]] = {}

    def kernel(self, slot: int = 0) -> KernelThread:
        """A fresh kernel for one submission, starting now (see ``kernel_session``)."""
        return kernel_session(self.assignment, self.setup, slot, self.workers)

    def prepare(self) -> tuple[Reference, dict[str, list[dict]]]:
        if self._expected is None:
            self._expected = reference(self.assignment)
            self._cases = {check.name: check.cases(self._expected) for check in self.checks}
        return self._expected, self._cases

    def grade(self, path: Path, kernel: KernelThread | None = None, progress: bool = False) -> Report:
        """Grade the notebook at ``path`` in ``kernel`` (made by ``self.kernel()``, maybe started a while ago), or
        in a kernel started now; the kernel is stopped at the end either way. ``progress`` shows a bar over the checks
        on stderr."""
        start, cpu, trusted_cpu = time.monotonic(), time.process_time(), trusted.cpu_seconds
        assignment, checks = self.assignment, self.checks
        deadline = start + assignment.limits.submission_seconds
        try:
            submission = read_submission(path, assignment)
        except SubmissionError as exc:
            if kernel is not None:
                kernel.close()
            return not_graded(path, assignment, str(exc), self.only, time.monotonic() - start)
        definitions = Definitions(assignment, submission)
        kernel = kernel or self.kernel()  # before any student code: below the course's minimum isolation, refuse
        results = []
        done: dict[str, dict] = {}  # this submission's answers by run_key: a feedback-only run may be a graded one
        check_seconds: dict[str, float] = {}  # each check's wall time, kernel restart included (JUnit's testcase time)
        try:  # while the kernel starts in its thread: the grader's preparation (the reference: once per process)
            kernel.wait_launched()  # first, as importing torch would hold up the launch (the GIL)
            is_reference = Path(path).resolve() == assignment.source.resolve()
            # the reference notebook itself is no copy of the release (it lacks the cells release adds): nothing to
            # compare
            locked = (locked_cell_changes(submission, nbformat.read(assignment.release, as_version=4))
                      if not is_reference else [])
            expected, all_cases = self.prepare()
        except BaseException:
            kernel.close()
            raise
        with kernel:
            from tqdm import tqdm  # lazy, not above: `grade` starts the kernel before what it does not need (20 ms)

            definitions.run(kernel, deadline)
            for check in tqdm(checks, desc=f"grading {Path(path).name}", unit="check", disable=not progress,
                              file=sys.stderr, leave=False):
                remaining = deadline - time.monotonic()
                if remaining < 1:
                    results.append(check.result(False, "Not run: grading this submission used up its time limit "
                                                       f"({assignment.limits.submission_seconds:.0f} s)."))
                    continue
                check_start = time.monotonic()
                cases = all_cases[check.name]
                status, answers, seconds = run_check(kernel, definitions.socket, check, cases, deadline, self.workers)
                done |= {run_key(check.driver, check.functions, case): answer for case, answer in zip(cases, answers)}
                result = judge_run(check, cases, status, answers, seconds, expected)
                if status == "ok" and self.figures and any(result.data.get("runs") or []):  # nothing to compare with
                    status, result = with_feedback_runs(kernel, definitions.socket, check, result, deadline,
                                                        self.workers, done)
                if status in ("timeout", "died") and deadline - time.monotonic() > 1:
                    kernel.restart()  # (a copy of the kernel stuck in an endless loop stops with it)
                    definitions.run(kernel, deadline)
                result = blame(check, result, results, assignment)
                problems = [definitions.problems[f] for f in check.functions if f in definitions.problems]
                if problems and not result.passed:
                    result = replace(result, output="\n".join(problems + [result.output]))
                results.append(result)
                check_seconds[check.name] = round(time.monotonic() - check_start, 3)
            restarts, isolation = kernel.restarts, kernel.isolation
        notes = sorted(set(definitions.problems.values()))
        if locked:
            notes.append("Read-only cells were changed (" + "; ".join(locked) + "). The grader ran the original "
                         "read-only code, not your copy, so this does not change your score; a teacher may look at "
                         "it.")
        if restarts:
            notes.append(f"The grading kernel was restarted {restarts} time(s).")
        return Report(assignment.id, str(path), results, time.monotonic() - start, notes,
                      {"locked_cells_changed": locked, "kernel_restarts": restarts, "isolation": isolation,
                       "check_seconds": check_seconds, "settings": {c.name: asdict(c) for c in checks},
                       "cpu_seconds": {"grader": round(time.process_time() - cpu + trusted.cpu_seconds - trusted_cpu,
                                                       3),
                                       "kernel": None if kernel.cpu_seconds is None else round(kernel.cpu_seconds, 3)}})


def grade(path: Path, assignment, only: set[str] | None = None, workers: int = 1, figures: bool = True,
          progress: bool = False) -> Report:
    """Grade the notebook at ``path`` on its own (a ``Grader`` for one submission; see there for the arguments)."""
    return Grader(assignment, only, workers, figures).grade(path, progress=progress)
