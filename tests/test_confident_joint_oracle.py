"""The confident joint against a plain loop over items, including a class nobody was
given (its threshold is infinite: it can never be a confident guess)."""

from __future__ import annotations

import numpy as np
import pytest

from truelabel import compute_confident_joint


def _naive_confident_joint(labels, p):
    n, k = p.shape
    thresholds = []
    for c in range(k):
        rows = [i for i in range(n) if labels[i] == c]
        thresholds.append(sum(p[i, c] for i in rows) / len(rows) if rows else float("inf"))
    cj = np.zeros((k, k), dtype=int)
    for i in range(n):
        above = [c for c in range(k) if p[i, c] >= thresholds[c]]
        if above:
            guess = max(above, key=lambda c: p[i, c])
            cj[labels[i], guess] += 1
    return cj


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_confident_joint_equals_a_plain_loop_with_an_unused_class(seed):
    rng = np.random.default_rng(seed)
    n, k = 60, 4
    p = rng.dirichlet(np.ones(k), size=n)
    labels = rng.integers(0, k - 1, n)  # class 3 is never given, yet often most probable
    assert (p.argmax(axis=1) == k - 1).any()
    want = _naive_confident_joint(labels, p)
    got = compute_confident_joint(labels, p, calibrate=False)
    np.testing.assert_array_equal(got, want)
    assert (got[:, k - 1] == 0).all()
