"""The statistics behind the thresholds reproduce the table in GRADING_NOTES.md."""

import pytest

from autograder.calibrate import binom_cdf_below, clopper_pearson_lower


@pytest.mark.parametrize("k, n, p, expected", [
    (1, 1, 0.95, 0.05), (2, 3, 0.95, 0.00725), (3, 5, 0.95, 0.00116), (2, 3, 0.90, 0.028), (3, 5, 0.90, 0.00856),
])
def test_false_fail_probability_of_k_of_n(k, n, p, expected):
    assert binom_cdf_below(k, n, p) == pytest.approx(expected, rel=0.02)


@pytest.mark.parametrize("successes, trials, expected", [(20, 20, 0.861), (50, 50, 0.942), (0, 10, 0.0)])
def test_clopper_pearson_lower_bound(successes, trials, expected):
    assert clopper_pearson_lower(successes, trials) == pytest.approx(expected, abs=0.001)
