"""Calibration: how often does the reference pass each behaviour check, and what does the rule in course.toml cost?

For every convergence check, the reference is trained with the check's own driver on many seeds other than the grading
seeds (a student's code draws random numbers in another order, so each grading seed is a fresh draw for them). From
the per-seed pass rate p (with a 95 % Clopper-Pearson lower bound) follows the probability that a correct submission
fails the k-of-n rule: P(Binomial(n, p) < k).
"""

from __future__ import annotations

import math
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from gradekit.checks import ConvergenceCheck
from gradekit.protocol import run_case

from autograder.execute import THREAD_VARS
from autograder.notebook import reference_functions


def binom_cdf_below(k: int, n: int, p: float) -> float:
    """P(X < k) for X ~ Binomial(n, p)."""
    return sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k))


def clopper_pearson_lower(successes: int, trials: int, confidence: float = 0.95) -> float:
    """One-sided lower bound on a success probability (exact, by bisection on the binomial tail)."""
    if successes == 0:
        return 0.0
    alpha, lo, hi = 1 - confidence, 0.0, 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        tail = 1 - binom_cdf_below(successes, trials, mid)  # P(X >= successes | mid)
        lo, hi = (lo, mid) if tail > alpha else (mid, hi)
    return lo


@dataclass
class Calibration:
    check: str
    metrics: list[float]
    threshold: float
    n: int
    k: int
    passed: list[bool] | None = None  # each seed met every pass criterion (default: its metric reached threshold)

    @property
    def passes(self) -> int:
        if self.passed is not None:
            return sum(self.passed)
        return sum(m >= self.threshold for m in self.metrics)

    @property
    def false_fail_bound(self) -> float:
        """False-fail probability of the k-of-n rule at the 95 % lower bound of the per-seed pass rate."""
        return binom_cdf_below(self.k, self.n, clopper_pearson_lower(self.passes, len(self.metrics)))

    def report(self) -> str:
        m = np.asarray(self.metrics)
        trials = len(m)
        p = self.passes / trials
        p_low = clopper_pearson_lower(self.passes, trials)
        q = np.quantile(m, [0.0, 0.001, 0.01, 0.05, 0.5])
        return (f"{self.check}: {trials} reference seeds, metric min {q[0]:.3f}, 0.1% {q[1]:.3f}, 1% {q[2]:.3f}, "
                f"5% {q[3]:.3f}, median {q[4]:.3f}, mean {m.mean():.3f}\n"
                f"  threshold {self.threshold}: per-seed pass rate {p:.4f} ({self.passes}/{trials}; 95% lower bound "
                f"{p_low:.4f})\n"
                f"  rule {self.k} of {self.n}: false-fail probability {binom_cdf_below(self.k, self.n, p):.2e} at the "
                f"measured rate, ≤ {self.false_fail_bound:.2e} at the lower bound")


def _init_worker() -> None:
    for var in THREAD_VARS:
        os.environ[var] = "1"
    import torch  # lazy: 1.7 s; the calibrating process never trains, its workers do (each imports it once, here)

    torch.set_num_threads(1)


def variant_functions(path: Path) -> dict:
    """The functions a catalogued variant (a .py file of graded-function definitions) defines."""
    # lazy: torch costs 1.7 s; only a variant's file needs it in the calibrating process
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    namespace = {"np": np, "torch": torch, "nn": nn, "F": F}
    exec(compile(Path(path).read_text(), str(path), "exec"), namespace)  # noqa: S102 - instructor's own files
    return {k: v for k, v in namespace.items() if callable(v) and getattr(v, "__module__", None) is None}


def _run(job):
    assignment, check_name, variant, seed = job
    check = assignment.check(check_name)
    functions = reference_functions(assignment) | (variant_functions(variant) if variant else {})
    case = check.cases(functions)[0] | {"seed": seed}
    answer = run_case(check.driver, [functions[f] for f in check.functions], case)
    outcome = check.outcome(seed, answer)
    return (check.metric(answer["ok"]) if "ok" in answer else math.nan), outcome["passed"]


def calibrate(assignment, seeds: int, variant: Path | None = None, first_seed: int = 10_000,
              jobs: int | None = None, progress: bool = True):
    """Yield a Calibration per convergence check of ``assignment`` that ``variant`` (if given) touches.

    A progress bar per check counts its seeds on stderr (a check takes minutes at 1000 seeds); stdout keeps only the
    reports."""
    touched = variant_functions(variant) if variant else None
    checks = [c for c in assignment.checks if isinstance(c, ConvergenceCheck)
              and (touched is None or set(c.functions) & set(touched))]
    with ProcessPoolExecutor(max_workers=jobs or os.cpu_count(), initializer=_init_worker) as pool:
        for check in checks:
            jobs_ = [(assignment, check.name, variant, first_seed + i) for i in range(seeds)]
            name = check.name + (f" [{Path(variant).stem}]" if variant else "")
            runs = list(tqdm(pool.map(_run, jobs_, chunksize=max(1, seeds // 50)), total=seeds, desc=name,
                             unit="seed", disable=not progress, file=sys.stderr))
            yield Calibration(name, [m for m, _ in runs], check.threshold, len(check.seeds), check.min_passing,
                              [passed for _, passed in runs])
