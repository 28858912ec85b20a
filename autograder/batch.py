"""Grade a class: nbgrader's ``submitted/<student>/<assignment>/`` layout in, one results.json per student out.

One long-lived grading worker per job slot (``worker.py``) grades the students it is sent, each in a fresh sandboxed
kernel, paying imports and the reference once. A worker that dies (or overruns a submission's time limit) takes only
its current student with it: that student is retried once in a new worker, then gets an autograder error entry.
Results are written atomically as each student finishes; a re-run skips students whose results.json is complete
(unless ``regrade``), so a batch killed at any moment, even with SIGKILL (its workers die with it), resumes without
losing, corrupting or grading twice anything. A submission with a file newer than its results.json (a resubmission)
is graded again, and ``students`` regrades just those. The grades CSV, the summary and the class report are rebuilt
from all results.json files at the end.

Results go to ``results/<student>/<assignment>/`` beside ``submitted/``, out of reach of nbgrader's ``autograde
--force`` and ``generate_feedback --force``. In an nbgrader course (``gradebook.py``) the grades are also written into
its gradebook, with the late penalty, and its autograded notebook gets our feedback for ``generate_feedback``.
"""

from __future__ import annotations

import csv
import ctypes
import io
import json
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, deque
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from autograder import gradebook
from autograder.exports import class_mean, read_rows, results_dir, write_report
from autograder.feedback import write_failure
from autograder.nbgrader_source import check_order
from autograder.notebook import SubmissionError, find_notebook
from autograder.results import Results, write_atomic, write_json


@dataclass(frozen=True)
class Job:
    student: str
    folder: Path  # <submitted>/<student>/<assignment>/: what the worker grades, as `grade` grades a folder
    notebook: Path | None  # the one graded in it (notebook.find_notebook); None if there is none to grade
    results: Path


def submitted_dir(path: Path) -> Path:
    """Accept the course directory or its ``submitted/`` folder."""
    return path / "submitted" if (path / "submitted").is_dir() else path


def find_jobs(submitted: Path, assignment, out: Path) -> list[Job]:
    """A job for every student with a folder for ``assignment``, whether or not a notebook can be graded in it (the
    worker then writes the same verdict and message as ``grade`` on that folder)."""
    jobs = []
    for student_dir in sorted(p for p in submitted.iterdir() if p.is_dir()):
        folder = student_dir / assignment.id
        if not folder.is_dir():
            continue
        try:
            notebook = find_notebook(folder, assignment)
        except SubmissionError:
            notebook = None
        jobs.append(Job(student_dir.name, folder, notebook, out / student_dir.name / assignment.id / "results.json"))
    return jobs


def is_complete(path: Path) -> bool:
    return Results.complete(path)


AHEAD = 2  # jobs a worker holds: the one it grades, and the next, whose kernel starts meanwhile
ATTEMPTS = 2  # a student whose worker died is retried once, then gets an autograder error entry


def worker_command(config_path: Path, assignment, only: list[str], workers: int) -> list[str]:
    cmd = [sys.executable, "-m", "autograder", "--config", str(config_path), "worker", "--assignment", assignment.id,
           "--workers", str(workers)]
    return cmd + [arg for name in only for arg in ("--check", name)]


def _die_with_parent() -> None:
    """In a worker, before exec: SIGKILL when grade-all dies (Linux), so a killed batch leaves no grader behind."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class Worker:
    """One grading worker process as grade-all sees it: the jobs sent to it, and the one it is grading."""

    def __init__(self, command: list[str]):
        self.stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr,
                                     start_new_session=True, preexec_fn=_die_with_parent)
        self.sent: deque[Job] = deque()
        self.current: Job | None = None
        self.since = 0.0
        self.ready = False  # it said it is up (imports done): a death before that is the grader's, not a student's
        self.finished = False  # its input is closed: it gets no more jobs
        self.buffer = b""

    def send(self, job: Job) -> None:
        line = json.dumps({"student": job.student, "submission": str(job.folder), "results": str(job.results)})
        try:
            self.proc.stdin.write(line.encode() + b"\n")
            self.proc.stdin.flush()
        except OSError:
            pass  # dead: its end of file on stdout says so
        self.sent.append(job)

    def messages(self) -> list[dict] | None:
        """The messages that arrived (after a select said so); None at end of file (the worker is gone)."""
        chunk = os.read(self.proc.stdout.fileno(), 1 << 16)
        if not chunk:
            return None
        self.buffer += chunk
        *lines, self.buffer = self.buffer.split(b"\n")
        out = []
        for line in lines:
            try:
                out.append(json.loads(line))
            except ValueError:
                pass  # not ours (a library printing to stdout)
        return out

    def finish(self) -> None:
        """No more jobs: end its input; it exits when done."""
        self.finished = True
        try:
            self.proc.stdin.close()
        except OSError:
            pass

    def kill(self) -> str:
        """Kill it (and its process group); return the end of what it wrote on stderr."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except OSError:
            pass
        self.proc.wait()
        self.finish()
        self.proc.stdout.close()
        self.stderr.seek(0)
        tail = self.stderr.read().decode(errors="replace").strip()[-500:]
        self.stderr.close()
        return tail


def run_workers(todo: list[Job], assignment, config_path: Path, only: list[str], jobs: int, workers: int,
                bar) -> None:
    """Grade ``todo`` on ``jobs`` workers; every job ends with a complete results.json."""
    queue, attempts, pool = deque(todo), Counter(), []
    selector = selectors.DefaultSelector()
    timeout = assignment.limits.submission_seconds + 120
    command = worker_command(config_path, assignment, only, workers)

    def spawn() -> None:
        worker = Worker(command)
        selector.register(worker.proc.stdout, selectors.EVENT_READ, worker)
        pool.append(worker)

    def feed() -> None:  # one job each first, then one ahead each, so the work is spread
        while queue and sum(not w.finished for w in pool) < jobs:
            spawn()
        for depth in range(1, AHEAD + 1):
            for worker in pool:
                if queue and not worker.finished and len(worker.sent) < depth:
                    worker.send(queue.popleft())
        for worker in pool:
            if not queue and not worker.sent and not worker.finished:
                worker.finish()

    def gone(worker: Worker, why: str) -> None:
        selector.unregister(worker.proc.stdout)
        pool.remove(worker)
        tail = worker.kill()
        if worker.sent:
            died(worker, why, tail)

    def died(worker: Worker, why: str, tail: str) -> None:
        if not worker.ready:
            raise RuntimeError(f"the grading worker could not start: {tail or why}")
        lost = worker.current or worker.sent[0]  # the student it was grading, or about to
        for job in reversed(worker.sent):  # never started: back to the front of the queue, no attempt counted
            if job is not lost:
                queue.appendleft(job)
        attempts[lost.student] += 1
        if attempts[lost.student] < ATTEMPTS:
            queue.appendleft(lost)
        else:
            write_failure(lost.results, assignment, RuntimeError(
                f"the grading process stopped twice while grading this submission ({why}): {tail}"))
            bar.set_postfix_str(lost.student)
            bar.update()

    try:
        feed()
        while pool:
            for key, _ in selector.select(timeout=1.0):
                worker = key.data
                messages = worker.messages()
                if messages is None:  # its end: done with everything sent, or dead
                    gone(worker, f"exit code {worker.proc.wait()}")
                    continue
                for message in messages:
                    if "ready" in message:
                        worker.ready = True
                    elif "start" in message:
                        worker.current = next((j for j in worker.sent if j.student == message["start"]), None)
                        worker.since = time.monotonic()
                    elif "done" in message and worker.current is not None:
                        worker.sent.remove(worker.current)
                        bar.set_postfix_str(worker.current.student)
                        bar.update()
                        worker.current = None
            for worker in list(pool):
                if worker.current is not None and time.monotonic() - worker.since > timeout:
                    gone(worker, f"grading did not finish within {timeout:.0f} s")
            feed()
    finally:
        for worker in pool:
            worker.kill()


def is_outdated(job: Job) -> bool:
    """A file of the submission (the notebook, nbgrader's timestamp.txt) is newer than its results.json."""
    try:
        graded = job.results.stat().st_mtime_ns
    except OSError:
        return True
    return any(p.stat().st_mtime_ns > graded for p in job.folder.rglob("*") if p.is_file())


def grade_all(course_dir: Path, assignment, config_path: Path, out: Path | None = None, jobs: int | None = None,
              regrade: bool = False, only: list[str] = (), progress: bool = True, students: list[str] = ()) -> Path:
    """Grade every student whose results are missing or older than the submission (all with ``regrade``, only
    ``students`` if given); write the nbgrader gradebook if the folder is an nbgrader course; return the grades CSV."""
    course_root = submitted_dir(course_dir).parent
    nbgrader = gradebook.nbgrader_settings(course_root) if gradebook.is_nbgrader_course(course_root) else None
    submitted = nbgrader.submitted if nbgrader and nbgrader.submitted.is_dir() else submitted_dir(course_dir)
    out = out or submitted.parent / "results"
    for stale in out.glob("*/*/.*.tmp"):
        stale.unlink()  # left by a batch that was killed mid-write; the real file was never replaced
    everyone = find_jobs(submitted, assignment, out)
    unknown = sorted(set(students) - {job.student for job in everyone})
    if unknown:
        raise FileNotFoundError(f"no submission of {assignment.id} by {', '.join(unknown)} under {submitted}")
    todo = [job for job in everyone if job.student in students] if students else [
        job for job in everyone if regrade or not is_complete(job.results) or is_outdated(job)]
    jobs = jobs or os.cpu_count() or 1
    workers = max(1, (os.cpu_count() or 1) // jobs)  # the cores left to each student for parallel seeds
    with tqdm(total=len(everyone), initial=len(everyone) - len(todo), desc=f"grading {assignment.id}",
              unit="student", disable=not progress, file=sys.stderr) as bar:
        run_workers(todo, assignment, config_path, list(only), jobs, workers, bar)
    notes = annotate(everyone, assignment, nbgrader)
    roster = gradebook.roster(nbgrader) if nbgrader else []
    csv_path = write_outputs(out, assignment, [(job.student, Results.read(job.results, assignment).data)
                                               for job in everyone], roster)
    for note in notes:
        print(f"grade-all: {note}", file=sys.stderr)
    return csv_path


def annotate(jobs: list[Job], assignment, nbgrader=None) -> list[str]:
    """In an nbgrader course, write every student's grade into its gradebook and autograded notebook, and the
    gradebook's lateness (which counts extensions) into results.json. Returns notes for the instructor."""
    if nbgrader is None:
        return []
    if not nbgrader.has_gradebook:
        return [f"gradebook not written: {nbgrader.db_url} does not exist (run nbgrader generate_assignment)"]
    with gradebook.open_gradebook(nbgrader) as book:
        try:
            gradebook.ensure_cells(book, assignment)
        except gradebook.GradebookError as exc:
            return [f"gradebook not written: {exc}"]
        notes = []
        for job in jobs:
            try:
                results = Results.read(job.results, assignment).data
                timestamp = gradebook.read_timestamp(job.folder)
                late = gradebook.sync_student(book, assignment, job.student, results, timestamp,
                                              job.notebook if job.notebook and job.notebook.exists() else None)
                updated = gradebook.annotate(results, job.notebook or job.folder, assignment,
                                             late["seconds_late"] if late and timestamp else None)
                if updated != results:
                    write_json(job.results, updated)
                page = job.results.parent / "feedback.html"
                gradebook.write_autograded(nbgrader, assignment, job.student, updated,
                                           page if page.exists() else None)
            except Exception as exc:  # noqa: BLE001 - one student's outputs never stop the class's
                notes.append(f"{job.student}: gradebook or autograded notebook not written ({type(exc).__name__}: "
                             f"{str(exc)[:300]!r}); regrade with --student {job.student}")
    return notes


def write_outputs(out: Path, assignment, rows: list[tuple[str, dict]], roster: list[str] = ()) -> Path:
    """The class's grades CSV, summary and HTML report (``exports.py``), all from the results, with every student of
    ``roster`` (nbgrader's gradebook) who submitted nothing marked missing; return the CSV."""
    csv_path = out / f"grades-{assignment.id}.csv"
    write_atomic(csv_path, grades_csv(rows, assignment, roster))
    write_atomic(out / f"summary-{assignment.id}.txt", summary(rows))
    write_report(out, assignment, rows, roster)
    return csv_path


def grades_csv(rows: list[tuple[str, dict]], assignment, roster: list[str] = ()) -> str:
    """One row per student (submitted or on the roster), one column per check id in notebook order."""
    try:
        order = check_order(assignment)
    except Exception:  # noqa: BLE001 - a source notebook the grade cells cannot be placed in: course.toml's order
        order = [check.name for check in assignment.checks]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["student", "status", "score", "max_score", "autograder_error", "late", "late_penalty",
                     "score_after_penalty", *order])
    graded = dict(rows)
    for student in sorted(set(graded) | set(roster)):
        if student not in graded:
            writer.writerow([student, "missing", 0, sum(c.points for c in assignment.checks), False, "", "", 0,
                             *[""] * len(order)])
            continue
        result = Results.of(graded[student])
        error = result.autograder_error is not None
        checks = result.checks
        writer.writerow([student, "autograder error" if error else "graded", result.score, result.max_score, error,
                         bool(result.late.get("late")), result.penalty,
                         round(max(0.0, result.score - result.penalty), 4),
                         *[checks[n].score if n in checks else "" for n in order]])
    return buffer.getvalue()


def summary(rows: list[tuple[str, dict]]) -> str:
    """Counts, the class mean (``exports.class_mean``: over the graded students, as the report), late students,
    autograder errors to regrade, failures by check."""
    results = [(s, Results.of(r)) for s, r in rows]
    errors = [s for s, r in results if r.autograder_error is not None]
    graded = [r for _, r in results if r.autograder_error is None]
    scores, max_score = [r.score for r in graded], max((r.max_score for r in graded), default=0.0)
    failures = Counter(check_id for _, r in results for check_id, c in r.checks.items() if not c.passed)
    late = [s for s, r in results if r.late.get("late")]
    lines = [f"students: {len(rows)}, graded: {len(rows) - len(errors)}, autograder errors: {len(errors)}",
             class_mean(scores, max_score)]
    if late:
        lines.append("late (penalty in the grades CSV): " + ", ".join(late))
    if errors:
        lines.append("regrade after fixing: " + ", ".join(errors))
    lines.append("failures by check:")
    lines += [f"  {count:4d}  {name}" for name, count in failures.most_common()]
    return "\n".join(lines) + "\n"


def rebuild(directory: Path, assignment) -> Path:
    """Grades CSV, summary and class report again from the results.json files of an autograded folder (after a
    batch, or after regrading one student by hand). Returns the grades CSV."""
    out = results_dir(directory)
    rows = read_rows(out, assignment)
    if not rows:
        raise FileNotFoundError(f"no {assignment.id} results under {out} (expected <student>/{assignment.id}/"
                                "results.json, as grade-all writes them)")
    course = out.parent  # the course folder, whose gradebook holds the roster
    roster = gradebook.roster(gradebook.nbgrader_settings(course)) if gradebook.is_nbgrader_course(course) else []
    return write_outputs(out, assignment, rows, roster)
