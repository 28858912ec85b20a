"""Calibration of ``chain_baseline_learns`` with both of its per-seed numbers (``calibrate`` keeps one metric a seed).

Trains the reference with the check's own driver on seeds 10000, 10001, ... (disjoint from the grading seeds), one
process, and appends one JSON line a seed: the last-50 mean return with the baseline and the variance ratio of the
per-step policy-gradient terms with / without it. Then prints the quantiles and the pass rate at course.toml's rule.

    nice .venv/bin/python bench/calibrate_baseline.py --seeds 1000 --out docs/calibration-metrics-baseline.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "assignments")]
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from autograder import config  # noqa: E402
from autograder.calibrate import binom_cdf_below, clopper_pearson_lower  # noqa: E402
from autograder.notebook import reference_functions  # noqa: E402
from gradekit.protocol import run_case  # noqa: E402
from week03_policy_gradients.checks import ChainReinforceLearns, weight_variance_ratio  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=1000)
    parser.add_argument("--first-seed", type=int, default=10_000)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    assignment = config.load().assignment("week03_policy_gradients")
    check = assignment.check("chain_baseline_learns")
    reference = reference_functions(assignment)
    functions = [reference[f] for f in check.functions]
    done = {}
    if args.out.exists():
        done = {row["seed"]: row for row in map(json.loads, args.out.read_text().splitlines())}
    with args.out.open("a") as out:
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            if seed in done:
                continue
            answer = run_case(check.driver, functions, check.cases(reference)[0] | {"seed": seed})
            row = {"seed": seed, "return": ChainReinforceLearns.metric(check, answer["ok"]),
                   "ratio": weight_variance_ratio(answer["ok"]["weights"])}
            out.write(json.dumps(row) + "\n")
            out.flush()
            done[seed] = row
    rows = [done[s] for s in sorted(done)]
    returns, ratios = np.array([r["return"] for r in rows]), np.array([r["ratio"] for r in rows])
    passes = int(np.sum((returns >= check.threshold) & (ratios <= check.max_ratio)))
    low = clopper_pearson_lower(passes, len(rows))
    q = [0, 0.001, 0.01, 0.5]
    print(f"{len(rows)} seeds; return quantiles {np.round(np.quantile(returns, q), 3).tolist()}; ratio max "
          f"{ratios.max():.3f}, 99.9% {np.quantile(ratios, 0.999):.3f}, 99% {np.quantile(ratios, 0.99):.3f}, median "
          f"{np.median(ratios):.3f}; pass {passes}/{len(rows)} (95% lower bound {low:.4f}); rule {check.min_passing} "
          f"of {len(check.seeds)}: false-fail ≤ {binom_cdf_below(check.min_passing, len(check.seeds), low):.2e}")
    if np.isnan(returns).any() or np.isnan(ratios).any():
        print("some seeds failed to run")


if __name__ == "__main__":
    main()
