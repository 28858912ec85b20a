"""One submission, one way, for ``grade``, ``grade-all``'s workers and Gradescope (``run_autograder`` calls ``grade``):
intake (which assignment, which notebook) → grade → annotate (late flag, reflection answers) → write (results.json,
feedback.html or Gradescope's html results, JUnit), with the same last line of defence (``feedback.write_failure``)
and the same exit codes (``ExitCode``) whichever way in. Nothing here prints to stdout: a worker's stdout is its
protocol, so the caller prints the outcome.

A grade's critical path is the kernel's start and then its setup cell, while the grader prepares the reference: what
looks at the submission and writes the results (results, feedback, gradebook) is imported once the kernel is
starting, not at this module's top (``tests/test_startup.py``); and ``--help`` imports this module for ``ExitCode``,
so the grader's modules (the sandbox's too: 50 ms) are imported by the functions that use them.
"""

from __future__ import annotations

import enum
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path


class ExitCode(enum.IntEnum):
    """What every command of ``python -m autograder`` returns: the one list, printed by ``--help`` (``table``) and
    stated in the README's table (``tests/test_exit_codes.py`` holds all three together)."""

    OK = 0
    FAILED = 1
    USAGE = 2
    ISOLATION = 3

    @property
    def meaning(self) -> str:
        return {ExitCode.OK: "done; grade: graded (whatever the score), results.json written",
                ExitCode.FAILED: "failed; grade: the grader failed on this submission (results.json still written)",
                ExitCode.USAGE: "bad arguments or a course.toml that does not load",
                ExitCode.ISOLATION: "grade: the sandbox is below course.toml's min_isolation (no student code run)",
                }[self]

    @classmethod
    def table(cls) -> str:
        return "\n".join(f"  {int(code)}  {code.meaning}" for code in cls)


@dataclass(frozen=True)
class Output:
    """Where a grade goes: results.json; feedback.html beside it (``page``), or the page inside results.json
    (``gradescope``: Gradescope's html results); JUnit XML if ``junit``."""

    results: Path
    junit: Path | None = None
    page: bool = True
    gradescope: bool = False


@dataclass(frozen=True)
class Outcome:
    """What became of a submission: the report (None if nothing was graded), the files written, the exit status, and
    ``problem``: why it was not graded (a notebook of no assignment, the grader failing), for the terminal."""

    status: ExitCode
    report: object | None  # grade.Report
    written: tuple[Path, ...]
    problem: str | None = None


def grade_submission(course, submission: Path, assignment, grader, output: Output, kernel=None,
                     progress: bool = False) -> Outcome:
    """Take ``submission`` (a notebook, or a folder with one) through intake → grade → annotate → write.

    ``assignment`` None: the one its notebooks are for (``which_assignment``). ``grader``: a ``grade.Grader``, or a
    function making one for the assignment. ``kernel``: a kernel already starting for it (``Grader.kernel``), the
    exception that refused to start one, or None to start one here. Whatever happens, results.json is written; the
    kernel is closed before returning."""
    submission = Path(submission)
    if assignment is None:
        from autograder.notebook import AssignmentUnknown  # lazy: nbformat and jsonschema (~0.13 s); not for --help

        try:
            assignment = which_assignment(course, submission)
        except AssignmentUnknown as exc:  # never another assignment's grade: 0, and the message
            from autograder.results import unknown_assignment_results  # lazy: results (20 ms), as in write_results

            return Outcome(ExitCode.OK, None, write_results(output, unknown_assignment_results(str(exc)), None),
                           f"not graded: {exc}")
        except Exception as exc:  # noqa: BLE001 - the last line of defence, before any kernel too
            return failed(output, None, exc)
    if kernel is None:
        try:
            grader, kernel = start(grader, assignment)
        except Exception as exc:  # noqa: BLE001 - e.g. below min_isolation: no student code was run
            kernel = exc
    try:
        if isinstance(kernel, BaseException):
            raise kernel
        kernel.wait_launched()  # (a few ms) before the imports and the grader's work can hold up the launch
        return graded(course, submission, assignment, grader, kernel, output, progress)
    except Exception as exc:  # noqa: BLE001 - written for the student, the traceback logged for the instructor
        return failed(output, assignment, exc)
    finally:
        if not isinstance(kernel, BaseException):
            kernel.close()  # once graded, it is closed already: this does nothing then


def start(grader, assignment):
    """The grader (made if given as a function) and its kernel, starting in its thread from now on. The sandbox's
    probe, which mostly waits for bwrap, runs meanwhile the grader's modules are imported (cached for the start)."""
    from autograder import sandbox  # lazy: 50 ms that --help does without (it imports this module for ExitCode)

    with ThreadPoolExecutor(1) as probing:  # had the probe raised, it would raise again at the kernel's start
        probing.submit(sandbox.probe)
        import autograder.grade  # noqa: F401 - lazy: the kernel's modules (~0.4 s), imported while the probe waits
    if callable(grader) and not hasattr(grader, "grade"):
        grader = grader(assignment)
    return grader, grader.kernel()


def graded(course, submission: Path, assignment, grader, kernel, output: Output, progress: bool) -> Outcome:
    """Intake (a folder's notebook by the one rule, refused if plainly another assignment's), the grade in ``kernel``
    (which stops it), annotated and written."""
    # lazy: after the kernel's launch (tests/test_startup.py), and not for --help (grade 0.4 s, gradebook 0.2 s)
    from autograder.grade import not_graded
    from autograder.gradebook import annotate
    from autograder.notebook import SubmissionError, check_assignment, submitted_notebook
    from autograder.results import gradescope, write_json, write_junit

    try:
        notebook = submitted_notebook(submission, assignment)
        check_assignment(course, notebook, assignment)
        report = grader.grade(notebook, kernel, progress=progress)  # stops the kernel
    except SubmissionError as exc:  # a folder without exactly one notebook to grade, another assignment's
        report = not_graded(submission, assignment, str(exc), grader.only)
    written = [output.results]
    if output.gradescope:  # the feedback page goes into results.json; JUnit stays one testcase per check
        from autograder.feedback import gradescope_html  # lazy: after the launch, as above (feedback ~0.07 s)

        write_json(output.results, annotate(gradescope_html(report, assignment, figures=output.page),
                                            Path(report.submission), assignment))
    else:
        page = write_grade(report, assignment, output.results, page=output.page)
        written += [page] if page else []
    if output.junit:  # late flag and reflection answers as in results.json
        write_junit(output.junit, annotate(gradescope(report), Path(report.submission), assignment), assignment)
        written.append(output.junit)
    return Outcome(ExitCode.OK, report, tuple(written))


def write_grade(report, assignment, results: Path, page: bool = True) -> Path | None:
    """results.json (with the late flag and reflection answers) and, with ``page``, feedback.html beside it; returns
    the page if written. A page that cannot be drawn never costs the grade: a plain page from results.json instead."""
    # lazy: after the kernel's launch (tests/test_startup.py: feedback, gradebook, results ~0.15 s); not for --help
    from autograder import feedback
    from autograder.gradebook import annotate
    from autograder.results import gradescope, write_atomic, write_json

    data = annotate(gradescope(report), Path(report.submission), assignment)
    write_json(results, data)
    if not page:
        return None
    path = results.parent / "feedback.html"
    try:
        feedback.write(path, report, assignment)
    except Exception as exc:  # noqa: BLE001 - the grade is written; the page falls back to its text
        print(f"autograder: feedback page not drawn, a plain one written instead: {exc!r}", file=sys.stderr)
        write_atomic(path, feedback.render_results(assignment, data))
    return path


def write_results(output: Output, results: dict, assignment) -> tuple[Path, ...]:
    """results.json, and the JUnit XML if asked for."""
    # lazy: results (20 ms) comes after the kernel's launch (tests/test_startup.py), not at the top
    from autograder.results import write_json, write_junit

    write_json(output.results, results)
    if output.junit:
        write_junit(output.junit, results, assignment)
    return (output.results,) + ((output.junit,) if output.junit else ())


def failed(output: Output, assignment, exc: Exception) -> Outcome:
    """The last line of defence: results.json, JUnit and a feedback page saying the grader failed (the traceback on
    stderr, for the instructor). Below min_isolation no student code was run: exit 3; otherwise 1."""
    from autograder.feedback import write_failure  # lazy: nbformat, numpy (~0.3 s), after the launch; not for --help
    from autograder.sandbox import IsolationError  # lazy: 50 ms that --help does without, as in start

    write_failure(output.results, assignment, exc, output.junit)
    written = (output.results, output.results.parent / "feedback.html") + ((output.junit,) if output.junit else ())
    if isinstance(exc, IsolationError):
        return Outcome(ExitCode.ISOLATION, None, written, str(exc))
    return Outcome(ExitCode.FAILED, None, written, "The grader failed on this submission (the traceback is on stderr)")


def which_assignment(course, submission: Path):
    """The assignment ``submission`` (a notebook, or a folder of them) is for: the one its notebooks are for
    (``notebook.detect_assignment``). Raises AssignmentUnknown."""
    # lazy: notebook imports nbformat and jsonschema (~0.13 s), which --help does without
    from autograder.notebook import AssignmentUnknown, detect_assignment, notebooks_in

    if not submission.is_dir():
        return detect_assignment(course, submission)
    notebooks = notebooks_in(submission)
    if not notebooks and len(course.assignments) == 1:
        return course.assignment()
    found, problems = {}, []
    for path in notebooks:
        try:
            found.setdefault(detect_assignment(course, path).id, path)
        except AssignmentUnknown as exc:
            problems.append(str(exc))
    if len(found) == 1:
        return course.assignment(next(iter(found)))
    if found:
        listed = "; ".join(f"{path.relative_to(submission)} for {course.assignment(a).title}"
                           for a, path in found.items())
        raise AssignmentUnknown(f"Notebooks of {len(found)} assignments were submitted ({listed}), so the grader "
                                "cannot tell which one to grade. Submit each assignment's notebook to that assignment "
                                "only.")
    if len(problems) == 1:
        raise AssignmentUnknown(problems[0])
    names = ", ".join(a.notebook for a in course.assignments.values())
    raise AssignmentUnknown(f"No notebook of this course was found in the submission ({len(notebooks)} .ipynb "
                            f"files). Submit the released notebook with your answers: one of {names}.")

