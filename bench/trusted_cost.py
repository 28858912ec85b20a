"""What moving the experiment to the grader's side costs: this checkout's grades side by side with a baseline
checkout's (the commit before, where the drivers ran in the student's kernel), in one run on one machine.

    git worktree add /tmp/baseline 119dcb5 && ln -s "$PWD/.venv" /tmp/baseline/.venv
    OMP_NUM_THREADS=1 .venv/bin/python bench/trusted_cost.py --baseline /tmp/baseline --repeats 3 --students 6

Per submission (reference, blank release, buggy = tests/catalogue/bugs/loss_prob_not_log.py), ``--repeats`` grades
each with ``python -m autograder grade NB --results R`` from each checkout, alternating (this, baseline, this, ...):
median wall seconds and CPU seconds of the whole process tree (cgroup cpuacct, kernels included, as
bench/grading_speed.py measures), and the ratio this / baseline of the medians. Then ``--students`` submissions (a
third each) graded by ``grade-all --jobs 2`` from each checkout, alternating: CPU-s per submission as the median of
results.json's ``extra_data.cpu_seconds`` (grader, with its workers, + kernel) and as the cgroup's total / n. Scores
must agree between the checkouts, else the script stops with SCORES DISAGREE (exit 1).

``--bug FILE`` (repeatable) adds a catalogue file's submission to the single grades (a sign-flipped loss, whose policy
wanders the chain, is the costly kind); ``--assignment`` grades another assignment's reference and blank release (and
its ``--bug`` files; no batch: ``--students 0``), e.g. the Fetch part, whose cloning check dominates its grade:

    .venv/bin/python bench/trusted_cost.py --baseline /tmp/before --bug tests/catalogue/bugs/loss_sign_flipped.py
    .venv/bin/python bench/trusted_cost.py --baseline /tmp/before --assignment week03_fetch_slide --students 0
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.grading_speed import (answers_of, cpu_field, env_with_venv, field_total, measure,  # noqa: E402
                                 read_results, submissions, write_ours)


def env_for(checkout: Path) -> dict:
    env = env_with_venv()
    env["PYTHONPATH"] = str(checkout)
    return env


def grade_cmd(notebook: Path, results: Path, assignment: str) -> list[str]:
    return [sys.executable, "-m", "autograder", "grade", str(notebook), "--results", str(results), "--no-html",
            "--assignment", assignment]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, required=True, help="a checkout of the commit to compare with")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--students", type=int, default=6, help="class size of the grade-all runs (0: none)")
    parser.add_argument("--json", type=Path, help="write every raw number here")
    parser.add_argument("--bug", type=Path, action="append", default=[], help="also grade this catalogue file")
    parser.add_argument("--assignment", default="week03_policy_gradients")
    args = parser.parse_args()
    from autograder import config

    assignment = config.load().assignment(args.assignment)
    kinds = submissions() if args.assignment == "week03_policy_gradients" else {"reference": None, "blank": "blank"}
    kinds |= {bug.stem: bug for bug in args.bug}
    checkouts = {"this": ROOT, "baseline": args.baseline.resolve()}
    out: dict = {"load_before": os.getloadavg()[0], "per_submission": {}, "batch": {}}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for label, kind in kinds.items():
            answers, blank = answers_of(kind)
            notebook = write_ours(assignment, tmp / label / assignment.notebook, answers, blank)
            runs = out["per_submission"][label] = {name: [] for name in checkouts}
            for rep in range(args.repeats):
                for name, checkout in checkouts.items():
                    results = tmp / f"{label}-{name}-{rep}.json"
                    run = measure(grade_cmd(notebook, results, assignment.id), env_for(checkout), cwd=checkout)
                    run["score"] = read_results(results)["score"]
                    runs[name].append(run)
            scores = {f"{n} {i}": r["score"] for n, rs in runs.items() for i, r in enumerate(rs)}
            if len(set(scores.values())) != 1:
                print(f"SCORES DISAGREE on {label}: {scores}")
                return 1
            print(f"{label:>17}: " + "; ".join(
                f"{n} {statistics.median(r['wall'] for r in rs):5.1f} s wall {statistics.median(r['cpu'] for r in rs):5.1f}"
                f" CPU-s" for n, rs in runs.items()) + f"; CPU this/baseline "
                f"{statistics.median(r['cpu'] for r in runs['this']) / statistics.median(r['cpu'] for r in runs['baseline']):.2f}"
                f" (score {scores['this 0']})", flush=True)
        if args.students:
            kinds = list(submissions().items())
            course = tmp / "class"
            for i in range(args.students):
                _, kind = kinds[i % len(kinds)]
                answers, blank = answers_of(kind)
                write_ours(assignment, course / "submitted" / f"s{i:02d}" / assignment.id / assignment.notebook,
                           answers, blank)
            runs = out["batch"] = {name: [] for name in checkouts}
            for rep in range(args.repeats):
                for name, checkout in checkouts.items():
                    results = tmp / f"batch-{name}-{rep}"
                    cmd = [sys.executable, "-m", "autograder", "grade-all", str(course), "--jobs", "2", "--out",
                           str(results)]
                    run = measure(cmd, env_for(checkout), cwd=checkout)
                    each = [read_results(p) for p in sorted(results.glob(f"*/{assignment.id}/results.json"))]
                    run["scores"] = [r["score"] for r in each]
                    run["field"] = statistics.median(field_total(cpu_field(r)) for r in each)
                    runs[name].append(run)
            if len({tuple(r["scores"]) for rs in runs.values() for r in rs}) != 1:
                print(f"SCORES DISAGREE in the batch: {[r['scores'] for rs in runs.values() for r in rs]}")
                return 1
            for name, rs in runs.items():
                print(f"grade-all --jobs 2, {args.students} students, {name}: "
                      f"{statistics.median(r['wall'] for r in rs):5.1f} s wall, CPU-s per submission "
                      f"{statistics.median(r['field'] for r in rs):5.2f} (results.json, median) / "
                      f"{statistics.median(r['cpu'] for r in rs) / args.students:5.2f} (cgroup total / n)", flush=True)
            ratio = (statistics.median(r["field"] for r in runs["this"])
                     / statistics.median(r["field"] for r in runs["baseline"]))
            print(f"grade-all CPU-s per submission, this / baseline: {ratio:.2f}")
    out["load_after"] = os.getloadavg()[0]
    print(f"load average before {out['load_before']:.2f}, after {out['load_after']:.2f} ({os.cpu_count()} cores)")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
