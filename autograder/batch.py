"""Grade a class: nbgrader's ``submitted/<student>/<assignment>/`` layout in, one results.json per student out.

Each student is graded by its own ``python -m autograder grade`` process, so one student's crash cannot touch
another's grade. Results are written atomically as each student finishes; a re-run skips students whose results.json
is complete (unless ``regrade``), so a batch killed at any moment, even with SIGKILL, resumes without losing or
corrupting anything. The grades CSV, the summary and the class report are rebuilt from all results.json files at the
end.
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

from autograder.exports import write_report
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


def grade_all(course_dir: Path, assignment, config_path: Path, out: Path | None = None, jobs: int | None = None,
              regrade: bool = False, only: list[str] = (), progress: bool = True) -> Path:
    """Grade every student; return the grades CSV."""
    submitted = submitted_dir(course_dir)
    out = out or submitted.parent / "autograded"
    for stale in out.glob("*/*/.*.tmp"):
        stale.unlink()  # left by a batch that was killed mid-write; the real file was never replaced
    everyone = find_jobs(submitted, assignment, out)
    todo = [job for job in everyone if regrade or not is_complete(job.results)]
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
    return write_outputs(out, assignment, [(job.student, json.loads(job.results.read_text())) for job in everyone])


def write_outputs(out: Path, assignment, rows: list[tuple[str, dict]]) -> Path:
    """The class's grades CSV, summary and HTML report (``exports.py``), all from the results; return the CSV."""
    csv_path = out / f"grades-{assignment.id}.csv"
    write_atomic(csv_path, grades_csv(rows))
    write_atomic(out / f"summary-{assignment.id}.txt", summary(rows))
    write_report(out, assignment, rows)
    return csv_path


def grades_csv(rows: list[tuple[str, dict]]) -> str:
    names = sorted({t["name"] for _, r in rows for t in r.get("tests", [])}, key=lambda n: (n == AUTOGRADER_ERROR, n))
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["student", "score", "max_score", "autograder_error", *names])
    for student, result in rows:
        tests = {t["name"]: t for t in result.get("tests", [])}
        writer.writerow([student, result["score"], sum(t["max_score"] for t in tests.values()),
                         AUTOGRADER_ERROR in tests, *[tests[n]["score"] if n in tests else "" for n in names]])
    return buffer.getvalue()


def summary(rows: list[tuple[str, dict]]) -> str:
    scores = [r["score"] for _, r in rows]
    errors = [s for s, r in rows if any(t["name"] == AUTOGRADER_ERROR for t in r.get("tests", []))]
    failures = Counter(t["name"] for _, r in rows for t in r.get("tests", []) if t.get("status") == "failed")
    lines = [f"students: {len(rows)}, graded: {len(rows) - len(errors)}, autograder errors: {len(errors)}",
             f"mean score: {sum(scores) / len(scores):.2f}" if scores else "mean score: -"]
    if errors:
        lines.append("regrade after fixing: " + ", ".join(errors))
    lines.append("failures by check:")
    lines += [f"  {count:4d}  {name}" for name, count in failures.most_common()]
    return "\n".join(lines) + "\n"
