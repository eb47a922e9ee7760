"""robust_upper_outliers works in one buffer: the same mask, bit for bit, as the textbook
``0.6745 * (v - median) / MAD > z`` (MAD 0 -> mean absolute deviation), the input untouched."""

from __future__ import annotations

import numpy as np
import pytest

from truelabel.detect._outliers import robust_upper_outliers


def textbook(values: np.ndarray, z: float) -> np.ndarray:
    med = np.median(values)
    mad = np.median(np.abs(values - med))
    if mad == 0:
        mad = np.mean(np.abs(values - med)) or 1.0
    return (0.6745 * (values - med) / mad) > z


@pytest.mark.parametrize("kind", ["lognormal", "rounded", "mostly_zero", "cauchy", "constant"])
def test_same_mask_as_the_textbook_formula(kind: str) -> None:
    rng = np.random.default_rng(len(kind))
    for n in (1, 2, 7, 100, 1001):
        if kind == "lognormal":
            v = rng.lognormal(size=n)
        elif kind == "rounded":
            v = np.round(rng.normal(size=n), 1)  # ties at the median
        elif kind == "mostly_zero":  # MAD 0: the mean absolute deviation is the scale
            v = np.zeros(n)
            v[: max(1, n // 3)] = rng.normal(size=max(1, n // 3)) * 10
        elif kind == "cauchy":
            v = rng.standard_cauchy(size=n)
        else:
            v = np.full(n, 2.5)  # MAD 0 and mean deviation 0: scale 1, nothing flagged
        before = v.copy()
        for z in (0.5, 3.5):
            got = robust_upper_outliers(v, z)
            np.testing.assert_array_equal(got, textbook(v, z))
        np.testing.assert_array_equal(v, before)


def test_hand_value() -> None:
    # median 2, |v - 2| = 1 1 0 1 8 -> MAD 1; z = 0.6745 * (v - 2): only 10 exceeds 3.5
    v = np.array([1.0, 3.0, 2.0, 1.0, 10.0])
    assert robust_upper_outliers(v).tolist() == [False, False, False, False, True]
    assert robust_upper_outliers(v, z=0.6).tolist() == [False, True, False, False, True]
