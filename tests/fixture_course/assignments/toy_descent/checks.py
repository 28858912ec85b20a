"""Checks of the fixture assignment."""

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from gradekit.checks import ConvergenceCheck, ExactCheck, fmt

from . import drivers


@dataclass(frozen=True)
class DescendExact(ExactCheck):
    title: ClassVar[str] = "descend: x − lr·grad"
    functions: ClassVar[tuple[str, ...]] = ("descend",)
    driver: ClassVar = staticmethod(drivers.call_descend)

    def fixed_cases(self):
        return [{"x": [1.0, -2.0], "grad": [0.5, 0.5], "lr": 0.1}]

    def random_case(self, rng):
        n = int(rng.integers(1, 5))
        return {"x": rng.normal(0, 1, n).round(4).tolist(), "grad": rng.normal(0, 1, n).round(4).tolist(),
                "lr": round(float(rng.uniform(0.01, 1)), 3)}

    def compare(self, case, expected, got):
        if not np.allclose(got["x"], expected["x"], atol=1e-9):
            return f"x: expected {fmt(expected['x'])}, got {fmt(got['x'])}."
        return None


@dataclass(frozen=True)
class DescentConverges(ConvergenceCheck):
    title: ClassVar[str] = "descend: 50 noisy steps reach the minimum of x²"
    functions: ClassVar[tuple[str, ...]] = ("descend",)
    driver: ClassVar = staticmethod(drivers.descent_run)
    metric_name: ClassVar[str] = "−|x| after the last step"
    curve: ClassVar[str] = "distance"
    axes: ClassVar[tuple[str, str]] = ("Step", "|x|")
    lr: float = 0.1
    steps: int = 50

    def settings(self):
        return {"lr": self.lr, "steps": self.steps}

    def metric(self, data):
        return -float(data["distance"][-1])
