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
        probs=None,
        scale=1.0,
    )
    assert pick.index.size == 10
    assert np.bincount(predicted[pick.index], minlength=2).tolist() == [5, 5]
    # the five class-1 items are the most uncertain ones beyond the net, in order
    assert sorted(pick.index[predicted[pick.index] == 1].tolist()) == [30, 31, 32, 33, 34]


def _joined_space_pool():
    """40 items: two embedding clusters 0.1 apart (item parity) crossing two groups the model
    sees differently (items < 20: class 0 at 0.9; the rest: class 2 at 0.9, 1.2 apart in
    probability); the first group is the more uncertain one."""
    rng = np.random.default_rng(0)
    i = np.arange(40)
    X = np.c_[0.1 * (i % 2), np.ones(40), np.zeros((40, 2))] + rng.normal(0, 1e-3, (40, 4))
    group = (i >= 20).astype(int)
    probs = np.where(group[:, None] == 0, [0.9, 0.05, 0.05], [0.05, 0.05, 0.9])
    value = np.where(group == 0, 0.9, 0.1) + rng.uniform(0, 0.01, 40)
    return X, probs, group, value


@pytest.mark.parametrize("seed", range(5))
def test_candidates_are_clustered_on_embedding_joined_with_model_probabilities(seed):
    X, probs, group, value = _joined_space_pool()

    def pick(probs_, scale=1.0):
        return pick_new(
            X, np.arange(40), 2, value=value, typicality=value, weakness=0.9,  # net: all 40
            predicted=None, class_counts=None, duplicate_cosine=1.5, center=X.mean(axis=0),
            rng=np.random.default_rng(seed), backend=None, chunk_size=None,
            probs=probs_, scale=scale,
        )  # fmt: skip

    # the embedding alone splits by parity and each half's best is in the uncertain group
    assert group[pick(None).index].tolist() == [0, 0]
    # joined with the probabilities, the batch spans the model's two views
    assert sorted(group[pick(probs).index].tolist()) == [0, 1]
    # the embedding is divided by `scale`: at scale 0.05 its 0.1 gap becomes 2 and wins again
    assert group[pick(probs, scale=0.05).index].tolist() == [0, 0]
