"""Grade a class: nbgrader's ``submitted/<student>/<assignment>/`` layout in, one results.json per student out.

Each student is graded by its own ``python -m autograder grade`` process, so one student's crash cannot touch
another's grade. Results are written atomically as each student finishes; a re-run skips students whose results.json
is complete (unless ``regrade``), so a batch killed at any moment, even with SIGKILL, resumes without losing or
corrupting anything. A submission with a file newer than its results.json (a resubmission) is graded again, and
``students`` regrades just those. The grades CSV, the summary and the class report are rebuilt from all results.json
files at the end.

Results go to ``results/<student>/<assignment>/`` beside ``submitted/``, out of reach of nbgrader's ``autograde
--force`` and ``generate_feedback --force``. In an nbgrader course (``gradebook.py``) the grades are also written into
its gradebook, with the late penalty, and its autograded notebook gets our feedback for ``generate_feedback``.
"""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from autograder.exports import read_rows, results_dir, write_report
from autograder.results import AUTOGRADER_ERROR, error_results, write_atomic, write_json


@dataclass(frozen=True)
class Job:
    student: str
    notebook: Path
    results: Path


def submitted_dir(path: Path) -> Path:
    """Accept the course directory or its ``submitted/`` folder."""
    return path / "submitted" if (path / "submitted").is_dir() else path


def find_jobs(submitted: Path, assignment, out: Path) -> list[Job]:
    jobs = []
    for student_dir in sorted(p for p in submitted.iterdir() if p.is_dir()):
        folder = student_dir / assignment.id
        if not folder.is_dir():
            continue
        expected = folder / assignment.notebook
        notebooks = sorted(folder.glob("*.ipynb"))
        notebook = notebooks[0] if not expected.exists() and len(notebooks) == 1 else expected
        jobs.append(Job(student_dir.name, notebook, out / student_dir.name / assignment.id / "results.json"))
    return jobs


def is_complete(path: Path) -> bool:
    try:
        return isinstance(json.loads(path.read_text()).get("score"), (int, float))
    except (OSError, ValueError, AttributeError):
        return False


def grade_one(job: Job, assignment, config_path: Path, only: list[str], workers: int = 1) -> None:
    """Grade one student in a child process; whatever happens, leave a complete results.json behind."""
    cmd = [sys.executable, "-m", "autograder", "--config", str(config_path), "grade", str(job.notebook),
           "--results", str(job.results), "--assignment", assignment.id, "--workers", str(workers)]
    cmd += [arg for name in only for arg in ("--check", name)]
    timeout = assignment.limits.submission_seconds + 120
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        _, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        _, stderr = proc.communicate()
        stderr = f"grading did not finish within {timeout:.0f} s"
    if not is_complete(job.results):
        write_json(job.results, error_results(assignment, RuntimeError(stderr.strip()[-500:] or
                                                                       f"exit code {proc.returncode}")))


def is_outdated(job: Job) -> bool:
    """A file of the submission (the notebook, nbgrader's timestamp.txt) is newer than its results.json."""
    try:
        graded = job.results.stat().st_mtime_ns
    except OSError:
        return True
    folder = job.notebook.parent
    return any(p.stat().st_mtime_ns > graded for p in folder.rglob("*") if p.is_file())


def grade_all(course_dir: Path, assignment, config_path: Path, out: Path | None = None, jobs: int | None = None,
              regrade: bool = False, only: list[str] = (), progress: bool = True, students: list[str] = ()) -> Path:
    """Grade every student whose results are missing or older than the submission (all with ``regrade``, only
    ``students`` if given); write the nbgrader gradebook if the folder is an nbgrader course; return the grades CSV."""
    from autograder import gradebook

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
    with ThreadPoolExecutor(max_workers=jobs) as pool, \
            tqdm(total=len(everyone), initial=len(everyone) - len(todo), desc=f"grading {assignment.id}",
                 unit="student", disable=not progress, file=sys.stderr) as bar:
        futures = {pool.submit(grade_one, job, assignment, config_path, list(only), workers): job for job in todo}
        for future in as_completed(futures):
            future.result()
            bar.set_postfix_str(futures[future].student)
            bar.update()
    notes = annotate(everyone, assignment, nbgrader)
    roster = gradebook.roster(nbgrader) if nbgrader else []
    csv_path = write_outputs(out, assignment, [(job.student, json.loads(job.results.read_text())) for job in everyone],
                             roster)
    for note in notes:
        print(f"grade-all: {note}", file=sys.stderr)
    return csv_path


def annotate(jobs: list[Job], assignment, nbgrader=None) -> list[str]:
    """In an nbgrader course, write every student's grade into its gradebook and autograded notebook, and the
    gradebook's lateness (which counts extensions) into results.json. Returns notes for the instructor."""
    from autograder import gradebook

    if nbgrader is None:
        return []
    if not nbgrader.has_gradebook:
        return [f"gradebook not written: {nbgrader.db_url} does not exist (run nbgrader generate_assignment)"]
    with gradebook.open_gradebook(nbgrader) as book:
        try:
            gradebook.ensure_cells(book, assignment)
        except gradebook.GradebookError as exc:
            return [f"gradebook not written: {exc}"]
        for job in jobs:
            results = json.loads(job.results.read_text())
            timestamp = gradebook.read_timestamp(job.notebook.parent)
            late = gradebook.sync_student(book, assignment, job.student, results, timestamp,
                                          job.notebook if job.notebook.exists() else None)
            updated = gradebook.annotate(results, job.notebook, assignment,
                                         late["seconds_late"] if late and timestamp else None)
            if updated != results:
                write_json(job.results, updated)
            page = job.results.parent / "feedback.html"
            gradebook.write_autograded(nbgrader, assignment, job.student, updated, page if page.exists() else None)
    return []


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
    from autograder.nbgrader_source import check_order

    names = {check.name: check.title for check in assignment.checks}
    try:
        order = check_order(assignment)
    except Exception:  # noqa: BLE001 - a source notebook the grade cells cannot be placed in: course.toml's order
        order = list(names)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["student", "status", "score", "max_score", "autograder_error", "late", "late_penalty",
                     "score_after_penalty", *order])
    graded = dict(rows)
    for student in sorted(set(graded) | set(roster)):
        result = graded.get(student)
        if result is None:
            writer.writerow([student, "missing", 0, sum(c.points for c in assignment.checks), False, "", "", 0,
                             *[""] * len(order)])
            continue
        tests = {t["name"]: t for t in result.get("tests", [])}
        error = AUTOGRADER_ERROR in tests
        late = result.get("extra_data", {}).get("late") or {}
        penalty = late.get("penalty", 0.0) if late.get("late") else 0.0
        writer.writerow([student, "autograder error" if error else "graded", result["score"],
                         sum(t["max_score"] for t in tests.values()), error, bool(late.get("late")),
                         penalty, round(max(0.0, result["score"] - penalty), 4),
                         *[tests[names[n]]["score"] if names[n] in tests else "" for n in order]])
    return buffer.getvalue()


def summary(rows: list[tuple[str, dict]]) -> str:
    scores = [r["score"] for _, r in rows]
    errors = [s for s, r in rows if any(t["name"] == AUTOGRADER_ERROR for t in r.get("tests", []))]
    failures = Counter(t["name"] for _, r in rows for t in r.get("tests", []) if t.get("status") == "failed")
    late = [s for s, r in rows if (r.get("extra_data", {}).get("late") or {}).get("late")]
    lines = [f"students: {len(rows)}, graded: {len(rows) - len(errors)}, autograder errors: {len(errors)}",
             f"mean score: {sum(scores) / len(scores):.2f}" if scores else "mean score: -"]
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
    from autograder import gradebook

    out = results_dir(directory)
    rows = read_rows(out, assignment)
    if not rows:
        raise FileNotFoundError(f"no {assignment.id} results under {out} (expected <student>/{assignment.id}/"
                                "results.json, as grade-all writes them)")
    course = out.parent  # the course folder, whose gradebook holds the roster
    roster = gradebook.roster(gradebook.nbgrader_settings(course)) if gradebook.is_nbgrader_course(course) else []
    return write_outputs(out, assignment, rows, roster)
