"""Drivers of the fixture assignment: one step on given inputs, and noisy descent on f(x) = x² from a seeded start."""

import numpy as np

from gradekit.drivers import as_vector, seed_everything


def call_descend(fn, case: dict) -> dict:
    return {"x": as_vector(fn(np.asarray(case["x"]), np.asarray(case["grad"]), case["lr"]), "x", len(case["x"])).tolist()}


def descent_run(fn, case: dict) -> dict:
    seed_everything(case["seed"])
    x = np.random.uniform(-2, 2, 1)
    path = []
    for _ in range(case["steps"]):
        x = as_vector(fn(x, 2 * x + np.random.normal(0, 0.01, 1), case["lr"]), "x", 1)
        path.append(float(abs(x[0])))
    return {"distance": path}
