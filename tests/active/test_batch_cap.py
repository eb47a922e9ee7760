"""The per-class cap of a batch: twice the fair share, never more than half the batch."""

from __future__ import annotations

import numpy as np
import pytest

from truelabel.active._select import class_cap, pick_new


@pytest.mark.parametrize(
    ("m", "k", "cap"),
    [(10, 2, 5), (9, 2, 5), (10, 3, 5), (9, 3, 5), (10, 4, 5), (10, 6, 4), (10, 77, 1), (1, 2, 1)],
)
def test_class_cap_hand_values(m, k, cap):
    # min(ceil(2 m / K), ceil(m / 2)): the half-batch bound binds for K <= 4 only
    assert class_cap(m, k) == cap


def test_a_binary_batch_takes_both_predicted_classes_even_when_one_holds_every_candidate():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 4))
    predicted = np.r_[np.zeros(30, dtype=np.int64), np.ones(10, dtype=np.int64)]
    value = np.r_[np.linspace(1.0, 0.7, 30), np.linspace(0.5, 0.1, 10)]  # class 0 most uncertain
    pick = pick_new(
        X,
        np.arange(40),
        10,
        value=value,
        typicality=np.ones(40),
        weakness=0.0,  # net = the 20 most uncertain: all predicted 0
        predicted=predicted,
        class_counts=np.array([5, 5]),
        duplicate_cosine=0.99,
        center=X.mean(axis=0),
        rng=np.random.default_rng(1),
        backend=None,
        chunk_size=None,
    )
    assert pick.index.size == 10
    assert np.bincount(predicted[pick.index], minlength=2).tolist() == [5, 5]
    # the five class-1 items are the most uncertain ones beyond the net, in order
    assert sorted(pick.index[predicted[pick.index] == 1].tolist()) == [30, 31, 32, 33, 34]
