"""``grade-all``'s long-lived grading worker: a queue of submissions, each graded as ``grade`` grades one.

``batch.py`` starts one worker per job slot (``python -m autograder worker``) and sends it jobs, one JSON line each
(``{"student", "submission", "results"}``; the submission is a student's folder, graded as ``grade`` grades one) on
stdin. The worker says ``{"ready": true}`` on stdout once its imports are done, ``{"start": student}`` when it begins a
job and ``{"done": student}`` once that job's results.json and feedback.html are written (``pipeline``, the way
``grade`` writes them). Imports, the reference, every check's cases and expected answers are paid once per worker
(``grade.Grader``). While one student is graded, the kernel
for the next job already received starts in a thread (setup cell included), so the kernel's start is off the critical
path. A kernel is never reused: each student gets a fresh sandbox. The worker never runs student code itself.
"""

from __future__ import annotations

import json
import os
import select
import sys
from pathlib import Path

from autograder.grade import Grader
from autograder.pipeline import Output, grade_submission


class Jobs:
    """Job lines from a file descriptor: the next one, waiting for it or only if it has already arrived."""

    def __init__(self, fd: int):
        self.fd, self.buffer, self.closed = fd, b"", False

    def next(self, wait: bool) -> dict | None:
        while b"\n" not in self.buffer and not self.closed:
            if not wait and not select.select([self.fd], [], [], 0)[0]:
                return None
            chunk = os.read(self.fd, 1 << 16)
            self.closed = not chunk
            self.buffer += chunk
        if b"\n" not in self.buffer:
            return None
        line, self.buffer = self.buffer.split(b"\n", 1)
        return json.loads(line)


def serve(course, grader: Grader, jobs: Jobs, say=None) -> None:
    """Grade jobs until the input ends; the next job's kernel starts while the current one is graded."""
    say = say or (lambda message: print(json.dumps(message), flush=True))

    def kernel_for(slot: int):
        try:
            return grader.kernel(slot)
        except Exception as exc:  # noqa: BLE001 - e.g. below min_isolation: that job gets the error entry
            return exc

    say({"ready": True})
    job, slot = jobs.next(wait=True), 0
    kernel = kernel_for(slot) if job else None
    while job is not None:
        say({"start": job["student"]})
        following = jobs.next(wait=False)
        upcoming = kernel_for(1 - slot) if following else None
        grade_submission(course, Path(job["submission"]), grader.assignment, grader, Output(Path(job["results"])),
                         kernel)  # as `grade` grades a folder; whatever happens, a complete results.json
        say({"done": job["student"]})
        if following is None:
            following = jobs.next(wait=True)
            upcoming = kernel_for(1 - slot) if following else None
        job, kernel, slot = following, upcoming, 1 - slot


def main(course, assignment, only: set[str] | None, workers: int) -> int:
    """``python -m autograder worker``: serve jobs from stdin (see the module's docstring)."""
    serve(course, Grader(assignment, only, workers), Jobs(sys.stdin.fileno()))
    return 0
