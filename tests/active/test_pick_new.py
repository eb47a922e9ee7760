"""``pick_new`` on hand-built pools where each rule decides the batch: the clusters' order by
class-weighted mass, the seeded sample of a too-large net, the inclusive near-duplicate bound
in the embedding centred on ``center``, and the per-class cap counted from zero."""

from __future__ import annotations

import numpy as np
import pytest

import truelabel.active._select as sel
from truelabel.active._select import _unit, pick_new


def _counted(X, predicted, probs, labeled, rows, rng=None):
    """The classes _Counting gives ``rows`` (serial backend; rng only drawn from above the
    taught-item bound)."""
    rng = np.random.default_rng(0) if rng is None else rng
    return sel._Counting(X, np.asarray(predicted), probs, labeled, None, None, rng)(rows).tolist()


def _pick(X, m, value, **kw):
    args = dict(
        value=value, typicality=np.asarray(value, dtype=float), weakness=0.0, predicted=None,
        class_counts=None, duplicate_cosine=0.99, center=np.zeros(X.shape[1]),
        rng=np.random.default_rng(0), backend=None, chunk_size=None, probs=None, scale=1.0,
    )  # fmt: skip
    args.update(kw)
    return pick_new(X, np.arange(len(X)), m, **args)


def test_clusters_are_visited_heaviest_first_by_class_weighted_mass():
    # cluster A: 7 items predicted class 0 (3 labels: weight 1 / sqrt(4) = 1/2, mass 3.5);
    # cluster B: 4 items predicted class 1 (no label: weight 1, mass 4). B is lighter by count
    # and heavier by weight, so its best item leads the batch. Unweighted (7 > 4), weighted
    # by sqrt(1 + count) instead of dividing, or by 1 / sqrt(2 + count) (3.13 > 2.83), or the
    # lightest cluster first, A would lead.
    rng = np.random.default_rng(0)
    a, b = np.array([5.0, 0.0]), np.array([0.0, 5.0])
    X = np.r_[rng.normal(0, 0.01, (7, 2)) + a, rng.normal(0, 0.01, (4, 2)) + b]
    predicted = np.r_[np.zeros(7, dtype=np.int64), np.ones(4, dtype=np.int64)]
    value = np.r_[np.linspace(0.9, 0.8, 7), np.linspace(0.5, 0.4, 4)]  # A more uncertain
    for seed in range(5):
        pick = _pick(
            X,
            2,
            value,
            weakness=0.9,
            predicted=predicted,
            class_counts=np.array([3, 0]),
            rng=np.random.default_rng(seed),
        )  # fmt: skip  (net: 2 m / (1 - 0.9) = 40 -> every item)
        assert pick.index.tolist() == [7, 0]  # B's best first, then A's best
        assert pick.cluster_size.tolist() == [4, 7]


def test_a_net_above_max_candidates_is_a_seeded_sample_without_replacement(monkeypatch):
    monkeypatch.setattr(sel, "MAX_CANDIDATES", 5)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(12, 3))
    value = np.linspace(1.0, 0.1, 12)
    a = _pick(X, 5, value, weakness=0.5)  # net: 20 -> all 12 items, sampled down to 5
    assert a.n_candidates == 5
    # the sample is the first draw of the rng: 5 of the 12 without replacement, and the batch
    # of 5 is exactly those five
    drawn = np.random.default_rng(0).choice(12, size=5, replace=False)
    assert sorted(a.index.tolist()) == sorted(drawn.tolist())
    # all five are taken: five distinct items (a sample with replacement would repeat some)
    assert len(set(a.index.tolist())) == 5
    b = _pick(X, 5, value, weakness=0.5)
    assert a.index.tolist() == b.index.tolist()  # the same rng seed: the same sample
    other = [_pick(X, 5, value, weakness=0.5, rng=np.random.default_rng(s)) for s in range(1, 6)]
    assert any(set(o.index.tolist()) != set(a.index.tolist()) for o in other)


def test_unit_rows_are_centred_on_center_then_scaled_to_length_one():
    X = np.array([[3.0, 4.0], [1.0, 1.0], [1.3, 1.4]])
    u = _unit(X, np.array([0, 1, 2]), np.array([1.0, 1.0]))
    assert u[0] == pytest.approx([2 / np.sqrt(13), 3 / np.sqrt(13)])
    assert u[1].tolist() == [0.0, 0.0]  # the centre itself: no direction, not a NaN
    assert u[2] == pytest.approx([0.6, 0.8])  # a row shorter than 1 is lengthened too


def _dup_pool(shift):
    # centred rows: a0 = (0.01, 0) and a1 = (-0.01, 0) (one tight cluster, opposite
    # directions: cosine -1), b0 = (0, 1) far away (cosine exactly 0 to both)
    return shift + np.array([[0.01, 0.0], [-0.01, 0.0], [0.0, 1.0]]), np.array([0.9, 0.8, 0.7])


@pytest.mark.parametrize("seed", range(3))
def test_near_duplicate_bound_is_inclusive(seed):
    X, value = _dup_pool(np.zeros(2))
    pick = _pick(X, 2, value, weakness=0.9, duplicate_cosine=0.0, rng=np.random.default_rng(seed))
    # b0 heads its own cluster but sits exactly at the bound to a0: a duplicate; a1 is not
    assert pick.index.tolist() == [0, 1]
    pick = _pick(X, 2, value, weakness=0.9, duplicate_cosine=0.01, rng=np.random.default_rng(seed))
    assert pick.index.tolist() == [0, 2]


def test_near_duplicates_are_judged_in_the_embedding_centred_on_center():
    # far from the origin every raw row points the same way; centred, b0 is orthogonal to a0
    center = np.array([10.0, 10.0])
    X, value = _dup_pool(center)
    pick = _pick(X, 2, value, weakness=0.9, duplicate_cosine=0.999, center=center)
    assert pick.index.tolist() == [0, 2]


def test_fill_skips_rows_at_the_duplicate_bound():
    X = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    # item 1 is exactly at cosine 0 to the chosen item 0: a duplicate at bound 0; item 2 is not
    out = sel._fill(X, np.array([1, 2]), np.array([0]), 1, np.zeros(2), 0.0)
    assert out.tolist() == [2]
    # only duplicates left: they are returned in order rather than too few items
    out = sel._fill(X, np.array([1]), np.array([0]), 1, np.zeros(2), 0.0)
    assert out.tolist() == [1]


@pytest.mark.parametrize("seed", range(3))
def test_per_class_cap_counts_from_zero(seed):
    # m = 2, K = 2: at most one item of each predicted class. The two most uncertain
    # items are both predicted 0, so the batch is 0's best and then 1's best.
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(8, 3))
    predicted = np.array([0, 0, 1, 1, 0, 1, 0, 1])
    value = np.array([0.9, 0.85, 0.5, 0.45, 0.3, 0.25, 0.2, 0.1])
    pick = _pick(
        X, 2, value, weakness=0.5, predicted=predicted, class_counts=np.array([1, 1]),
        rng=np.random.default_rng(seed), duplicate_cosine=1.5,
    )  # fmt: skip
    assert sorted(predicted[pick.index].tolist()) == [0, 1]
    assert set(pick.index.tolist()) <= {0, 1, 2, 3, 4, 5, 6, 7}
    assert len(set(pick.index.tolist())) == 2


def test_rank01_maps_ranks_onto_zero_one_with_ties_by_position():
    assert sel._rank01(np.array([3.0, 1.0, 2.0])).tolist() == [1.0, 0.0, 0.5]
    assert sel._rank01(np.array([1.0, 1.0])).tolist() == [0.0, 1.0]
    assert sel._rank01(np.array([5.0])).tolist() == [1.0]  # one candidate: the top rank
    assert sel._rank01(np.zeros(0)).tolist() == []


@pytest.mark.parametrize("seed", range(3))
def test_duplicate_candidates_fewer_distinct_than_the_batch(seed):
    # three identical candidates for m = 3: k-means leaves clusters empty; the batch is still
    # three items (near-duplicates only when nothing else is left)
    X = np.ones((3, 2))
    pick = _pick(X, 3, np.array([0.9, 0.8, 0.7]), rng=np.random.default_rng(seed))
    assert sorted(pick.index.tolist()) == [0, 1, 2]
    assert pick.cluster_size.dtype == np.int64


def _cap_pool():
    # four tight groups far apart, each one item predicted 0 and one predicted 1
    rng = np.random.default_rng(0)
    corners = np.array([[5.0, 0.0], [0.0, 5.0], [-5.0, 0.0], [0.0, -5.0]])
    X = np.r_[corners, corners] + rng.normal(0, 0.01, (8, 2))  # group g: items g and g + 4
    predicted = np.r_[np.zeros(4, dtype=np.int64), np.ones(4, dtype=np.int64)]
    return X, predicted


def _cap_pick(value, seed):
    """m = 4 from the cap pool, 2 labels per class (cap 2 per predicted class), net = all."""
    X, predicted = _cap_pool()
    return _pick(
        X, 4, value, weakness=0.9, predicted=predicted, class_counts=np.array([2, 2]),
        rng=np.random.default_rng(seed), duplicate_cosine=1.5,
    )  # fmt: skip


@pytest.mark.parametrize("seed", range(3))
def test_cap_counts_each_pick_once(seed):
    # m = 4, K = 2: cap 2 per class. The heads (each group's best) are 0, 1 (class 0) and
    # 6, 7 (class 1): all four fit under the cap, each from a group of two. Counting a pick
    # twice would block 1 and 7 and fill the batch from beyond the clusters (size 0).
    value = np.array([0.9, 0.85, 0.7, 0.65, 0.3, 0.25, 0.8, 0.75])
    pick = _cap_pick(value, seed)
    assert sorted(pick.index.tolist()) == [0, 1, 6, 7]
    assert pick.cluster_size.tolist() == [2, 2, 2, 2]
    assert (pick.score > 0).all()


@pytest.mark.parametrize("seed", range(3))
def test_capped_heads_give_way_to_the_next_best_members_of_the_clusters(seed):
    # every head is predicted 0: two are taken (cap 2), the other two blocked; the batch is
    # completed from the clusters' other members (class 1, by score), not from beyond them
    value = np.array([0.9, 0.85, 0.8, 0.75, 0.6, 0.55, 0.5, 0.45])
    pick, predicted = _cap_pick(value, seed), _cap_pool()[1]
    assert np.bincount(predicted[pick.index], minlength=2).tolist() == [2, 2]
    assert sorted(pick.index[predicted[pick.index] == 1].tolist()) == [4, 5]
    assert pick.cluster_size.tolist() == [2, 2, 2, 2]


@pytest.mark.parametrize("seed", range(3))
def test_a_duplicate_head_is_skipped_not_the_end_of_the_heads(seed):
    # centred rows: a0 = (0.01, 0) and a1 = (-0.01, 0) (one cluster, cosine -1), b0 = (0.5, 1)
    # (cosine 0.45 to a0: a duplicate at bound 0.01), c0 = (0, -1) (cosine 0 to both a's).
    # Clusters by weighted mass: {a0, a1} 2, {b0} 1, {c0} 0.5 (its class has 3 labels).
    X = np.array([[0.01, 0.0], [-0.01, 0.0], [0.5, 1.0], [0.0, -1.0]])
    value = np.array([0.9, 0.8, 0.7, 0.85])
    pick = _pick(
        X, 3, value, weakness=0.9, predicted=np.array([0, 0, 0, 1]),
        class_counts=np.array([0, 3]), duplicate_cosine=0.01, rng=np.random.default_rng(seed),
    )  # fmt: skip
    # heads in mass order: a0, b0 (skipped: duplicate), c0; then a1 from a0's cluster
    assert pick.index.tolist() == [0, 3, 1]
    assert (pick.score > 0).all()


def test_fill_scans_in_order_from_the_first_row():
    X = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [-1.0, -0.5]])
    # 3 is free, then 2 is a duplicate of 3 (cosine 0.89): only duplicates are left, so 2
    # comes last, after the free row
    out = sel._fill(X, np.array([3, 2]), np.array([0]), 2, np.zeros(2), 0.0)
    assert out.tolist() == [3, 2]
    # the duplicates that fill a shortfall are the rows not already returned, k in all
    out = sel._fill(X, np.array([3, 1, 2]), np.array([0]), 2, np.zeros(2), 0.0)
    assert out.tolist() == [3, 1]


def test_fill_scans_past_the_first_block_of_1024_rows():
    # 1,100 rows all duplicates of the chosen row except the one at position 1024
    X = np.tile([1.0, 0.0], (1101, 1))
    X[1025] = [-1.0, 0.0]
    out = sel._fill(X, np.arange(1, 1101), np.array([0]), 1, np.zeros(2), 0.5)
    assert out.tolist() == [1025]


def _capped_fill(predicted, per_class, cap):
    """Rows 1-3 of four unit vectors after row 0 (no near-duplicates), classes ``predicted``."""
    X = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, -1.0], [-1.0, 0.0]])
    counted = np.asarray(predicted).__getitem__
    return sel._fill(X, np.array([1, 2, 3]), np.array([0]), 3, np.zeros(2), 1.5, counted,
                     per_class, cap).tolist()  # fmt: skip


def test_fill_counts_classes_against_the_cap():
    # cap 1: the first item of class 0 is taken, the second blocked, class 1 taken
    assert _capped_fill([9, 0, 0, 1], {}, 1) == [1, 3]
    # a class already at its cap in the batch is skipped from the start
    assert _capped_fill([9, 0, 0, 1], {0: 1}, 1) == [3]


@pytest.mark.parametrize("seed", range(3))
def test_a_capped_head_is_skipped_not_the_end_of_the_heads(seed):
    # groups {0, 4}, {1, 5}, {2, 6}, {3, 7}; items 0-2 predicted 0, the rest 1. Class 1 has 3
    # labels (weight 1/2), so the group of 3 and 7 is the lightest and visited last: its head
    # 3 comes after the third class-0 head, which the cap (2) blocks
    X, _ = _cap_pool()
    predicted = np.array([0, 0, 0, 1, 1, 1, 1, 1])
    value = np.array([0.9, 0.85, 0.8, 0.75, 0.5, 0.45, 0.4, 0.3])
    pick = _pick(
        X, 4, value, weakness=0.9, predicted=predicted, class_counts=np.array([0, 3]),
        rng=np.random.default_rng(seed), duplicate_cosine=1.5,
    )  # fmt: skip
    picked = pick.index.tolist()
    assert 3 in picked and 4 in picked and 5 not in picked
    assert np.bincount(predicted[pick.index], minlength=2).tolist() == [2, 2]


def test_fill_returns_each_row_once_and_starts_without_a_batch():
    X = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    # fewer rows than asked: each once (no second pass over rows already returned)
    assert sel._fill(X, np.array([1, 2]), np.array([0]), 3, np.zeros(2), 1.5).tolist() == [1, 2]
    # nothing chosen yet: the first row is free
    none = np.zeros(0, dtype=np.int64)
    assert sel._fill(X, np.array([1, 2]), none, 1, np.zeros(2), 0.0).tolist() == [1]
    # more than one block of 1024 rows: each row once, in order
    big = np.tile([1.0, 0.0], (1101, 1))
    out = sel._fill(big, np.arange(1, 1101), np.array([0]), 2000, np.zeros(2), 1.5)
    assert out.tolist() == list(range(1, 1101))


def test_fill_cap_of_two_admits_two_of_a_class():
    assert _capped_fill([9, 0, 0, 0], {}, 2) == [1, 2]


def test_a_net_of_exactly_max_candidates_is_not_resampled(monkeypatch):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(12, 4))
    value = rng.uniform(size=12)
    monkeypatch.setattr(sel, "MAX_CANDIDATES", 1000)
    ref = [_pick(X, 3, value, weakness=0.9, rng=np.random.default_rng(s)).index for s in range(8)]
    monkeypatch.setattr(sel, "MAX_CANDIDATES", 12)  # the net (all 12) is exactly the cap
    for s in range(8):
        got = _pick(X, 3, value, weakness=0.9, rng=np.random.default_rng(s)).index
        assert got.tolist() == ref[s].tolist()


@pytest.mark.parametrize("seed", range(5))
def test_kmeans_is_weighted_towards_classes_with_fewer_labels(seed):
    # (4, 0) and (3, 6) are predicted class 0 (no labels: weight 1); the other three class 1
    # (99 labels: weight 0.1), so the two class-0 items anchor the weighted clusters:
    # {(1, 7), (9, 7), (3, 6)} and {(6, 3), (4, 0)}, centres (3.3, 6.2) and (4.2, 0.3). The
    # batch is each cluster's best: (3, 6) and (6, 3). Unweighted, (9, 7) leaves (3, 6)'s
    # cluster on every seed here and, as its new cluster's best, takes (6, 3)'s place.
    X = np.array([[1.0, 7.0], [9.0, 7.0], [6.0, 3.0], [4.0, 0.0], [3.0, 6.0]])
    value = np.array([0.41, 0.6, 0.57, 0.22, 0.85])
    pick = _pick(
        X, 2, value, weakness=0.9, predicted=np.array([1, 1, 1, 0, 0]),
        class_counts=np.array([0, 99, 3]), duplicate_cosine=1.5, rng=np.random.default_rng(seed),
    )  # fmt: skip
    assert pick.index.tolist() == [4, 2]


def _unsure_pool():
    """8 candidates the model is unsure about (p = 0.55 / 0.45, predicted 0 and 1 alternately),
    all next to a taught item of class 1 (row 10); two sure ones (p = 0.95, class 0) apart;
    the pick_new arguments but ``labeled``, ``rng``, ``backend`` and ``chunk_size``."""
    rng = np.random.default_rng(0)
    X = np.r_[rng.normal(0, 0.1, (8, 2)) + np.array([5.0, 5.0]),
              rng.normal(0, 0.1, (2, 2)) + np.array([-5.0, 0.0]),
              np.array([[5.0, 5.2], [-5.0, -5.0]])]  # fmt: skip
    probs = np.r_[np.tile([[0.45, 0.55], [0.55, 0.45]], (4, 1)), [[0.95, 0.05]] * 2,
                  [[0.1, 0.9], [0.9, 0.1]]]  # fmt: skip
    value = np.r_[np.linspace(0.9, 0.8, 8), [0.1, 0.05]]  # per unlabeled item (0-9)
    common = dict(
        value=value, typicality=value, weakness=0.9, predicted=probs.argmax(axis=1),
        class_counts=np.array([1, 1]), duplicate_cosine=1.5, center=np.zeros(2), probs=probs,
        scale=1.0,
    )  # fmt: skip
    return X, probs, common


UNSURE_LABELED = (np.array([10, 11]), np.array([1, 0]))  # item 10 (class 1) with the eight


def test_unsure_candidates_count_as_their_nearest_taught_items_class():
    # m = 4, K = 2: cap 2 per class. Counted by the model, three of the eight unsure ones
    # enter (their clusters' heads: 2 + 1 by class); counted by their neighbour, they are all
    # class 1, so only two of them are taken and the two sure class-0 items complete the batch.
    X, probs, common = _unsure_pool()
    serial = dict(rng=np.random.default_rng(0), backend=None, chunk_size=None)
    by_neighbour = pick_new(X, np.arange(10), 4, labeled=UNSURE_LABELED, **serial, **common)
    assert len([i for i in by_neighbour.index.tolist() if i < 8]) == 2
    assert {8, 9} <= set(by_neighbour.index.tolist())
    serial["rng"] = np.random.default_rng(0)
    by_model = pick_new(X, np.arange(10), 4, labeled=None, **serial, **common)
    # counted by the model's coin flips, three of the eight pass the cap (2 + 1)
    assert len([i for i in by_model.index.tolist() if i < 8]) == 3
    # sure candidates keep the model's class whatever their neighbour says
    rows = np.array([8, 0])
    assert _counted(X, np.zeros(12, dtype=np.int64), probs, UNSURE_LABELED, rows) == [0, 1]


def test_every_chunk_pass_of_a_batch_runs_on_the_given_backend_and_chunk_size(
    recording_backend, forbid_default_backend
):
    # k-means and the nearest-taught-item search (_Counting) both run on the backend given, in
    # chunks of the size given, and the batch is the default backend's
    X, _, common = _unsure_pool()
    ref = pick_new(X, np.arange(10), 4, labeled=UNSURE_LABELED, rng=np.random.default_rng(0),
                   backend=None, chunk_size=None, **common)  # fmt: skip
    forbid_default_backend()
    got = pick_new(X, np.arange(10), 4, labeled=UNSURE_LABELED, rng=np.random.default_rng(0),
                   backend=recording_backend, chunk_size=1, **common)  # fmt: skip
    assert got.index.tolist() == ref.index.tolist()
    assert set(recording_backend.fns) == {"_sqdist_chunk", "_nearest_chunk"}
    assert max(recording_backend.chunk_rows) == 1


def test_neighbour_classes_at_the_bound_and_without_taught_items():
    X = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    probs = np.array([[0.8, 0.2], [0.79, 0.21], [0.5, 0.5]])
    labeled = (np.array([2]), np.array([1]))
    rows, model = np.array([0, 1]), np.zeros(3, dtype=np.int64)
    # top probability 0.8 is sure (keeps the model's 0); 0.79 is not (the neighbour's 1)
    assert _counted(X, model, probs, labeled, rows) == [0, 1]
    # no taught item, or no probabilities (no model yet): the model's classes, unchanged
    none = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
    assert _counted(X, model, probs, none, rows) == [0, 0]
    assert _counted(X, model, None, labeled, rows) == [0, 0]
    assert _counted(X, model, probs, None, rows) == [0, 0]


def test_neighbour_classes_searches_a_seeded_sample_above_the_bound(monkeypatch):
    # one unsure row at the origin; taught items at distance 1, 2, 3 of classes 0, 1, 2.
    # With room for 2 of the 3, the nearest is searched among the sample the rng draws, so
    # the answer is the class of the sample's nearest, and the rng moves by exactly that draw.
    X = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [-3.0, 0.0]])
    probs = np.full((4, 2), 0.5)
    labeled = (np.array([1, 2, 3]), np.array([0, 1, 2]))
    model = np.ones(4, dtype=np.int64)
    monkeypatch.setattr(sel, "MAX_NEIGHBOURS", 2)
    for seed in range(6):
        rng = np.random.default_rng(seed)
        got = _counted(X, model, probs, labeled, np.array([0]), rng)
        oracle = np.random.default_rng(seed)
        keep = np.sort(oracle.choice(3, size=2, replace=False))
        assert got == [int(labeled[1][keep].min())]  # nearer items have lower codes
        assert rng.random() == oracle.random()
    # at the bound: every taught item is searched and the rng is not touched
    monkeypatch.setattr(sel, "MAX_NEIGHBOURS", 3)
    rng = np.random.default_rng(7)
    assert _counted(X, model, probs, labeled, np.array([0]), rng) == [0]
    assert rng.random() == np.random.default_rng(7).random()


def test_at_most_max_unsure_rows_take_their_neighbours_class_per_batch(monkeypatch):
    # five unsure rows, all nearest the one taught item (class 1); the model says 0. With a
    # budget of 3 the first call gives 3 rows the neighbour's class (the first 3 unsure rows,
    # a sure row in between costs nothing), the next call the last one, then none is left
    X = np.r_[np.zeros((6, 2)), [[0.1, 0.0]]]
    probs = np.array([[0.5, 0.5], [0.9, 0.1], [0.5, 0.5], [0.5, 0.5], [0.5, 0.5], [0.5, 0.5],
                      [0.5, 0.5]])  # fmt: skip
    monkeypatch.setattr(sel, "MAX_UNSURE_ROWS", 4)
    counting = sel._Counting(X, np.zeros(7, dtype=np.int64), probs,
                             (np.array([6]), np.array([1])), None, None,
                             np.random.default_rng(0))  # fmt: skip
    assert counting(np.array([0, 1, 2, 3])).tolist() == [1, 0, 1, 1]
    assert counting.unsure_left == 1
    assert counting(np.array([4, 5])).tolist() == [1, 0]
    assert counting.unsure_left == 0
    assert counting(np.array([0])).tolist() == [0]


@pytest.mark.parametrize("net_top", [0.9, 0.55])
def test_the_fill_counts_its_rows_like_the_net(monkeypatch, net_top):
    # m = 2 at weakness 0: the net is the 4 most valuable rows (0-3), all class 0 (sure, or
    # unsure and nearest the taught class-0 item), and the cap (1 per class) sends the second
    # pick beyond it. Rows 4 and 5 are predicted 1 by an unsure model but sit on the taught
    # class-0 item (row 7), so they count as 0 and are skipped: the fill takes row 6 (sure
    # class 1), though rows 4 and 5 are worth more. A budget of 6 unsure rows covers the net's
    # 4 and rows 4-5 only if the fill does not count the net's rows a second time.
    monkeypatch.setattr(sel, "MAX_UNSURE_ROWS", 6)
    X = np.r_[np.full((4, 2), 5.0) + np.arange(4)[:, None] * 0.01, [[-5.0, 0.0], [-5.0, 0.1]],
              [[0.0, -5.0]], [[-5.0, 0.05]]]  # fmt: skip
    net = [[net_top, 1 - net_top]] * 4
    probs = np.r_[net, [[0.45, 0.55]] * 2, [[0.1, 0.9]], [[0.9, 0.1]]]
    predicted = probs.argmax(axis=1)
    value = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.1])

    def pick(labeled):
        return pick_new(
            X, np.arange(7), 2, value=value, typicality=value, weakness=0.0,
            predicted=predicted, class_counts=np.array([3, 3]), duplicate_cosine=1.5,
            center=np.zeros(2), rng=np.random.default_rng(0), backend=None, chunk_size=None,
            probs=probs, scale=1.0, labeled=labeled,
        )  # fmt: skip

    counted = pick((np.array([7]), np.array([0])))
    assert counted.index[0] < 4
    assert counted.index[1] == 6
    # counted by the model alone (no taught item), row 4 would have been the fill
    assert pick(None).index[1] == 4


def test_picks_beyond_the_candidates_come_from_no_cluster():
    # weakness 0, m = 2: a net of 4 (rows 0-3, all predicted class 0); the cap of 1 per class
    # admits one of them, and the other pick is the best class-1 row beyond the net (row 5,
    # before row 4 by value): it comes from no cluster (size 0) and has no candidate score
    rng = np.random.default_rng(0)
    X = np.r_[rng.normal(0, 1, (4, 2)), [[9.0, 9.0], [-9.0, 9.0]]]
    value = np.array([0.9, 0.8, 0.7, 0.6, 0.1, 0.2])
    predicted = np.array([0, 0, 0, 0, 1, 1])
    pick = _pick(X, 2, value, predicted=predicted, class_counts=np.array([5, 5]),
                 duplicate_cosine=1.5)  # fmt: skip
    assert pick.n_candidates == 4
    assert pick.index[1] == 5 and pick.index[0] < 4
    assert pick.cluster_size[1] == 0 and pick.cluster_size[0] >= 1
    assert pick.score[1] == 0.0


def test_pick_new_passes_its_rng_to_the_neighbour_sample(monkeypatch):
    # two taught items, room for one: the neighbour search draws its sample from pick_new's
    # rng, so the same seed gives the same batch and the draw moves the rng
    X, predicted = _cap_pool()
    probs = np.tile([[0.55, 0.45]], (8, 1))
    monkeypatch.setattr(sel, "MAX_NEIGHBOURS", 1)
    picks = []
    for _ in range(2):
        rng = np.random.default_rng(3)
        pick = pick_new(
            X, np.arange(6), 2, value=np.linspace(0.9, 0.4, 6), typicality=np.ones(6),
            weakness=0.9, predicted=predicted, class_counts=np.array([1, 1]),
            duplicate_cosine=1.5, center=np.zeros(2), rng=rng, backend=None, chunk_size=None,
            probs=probs, scale=1.0, labeled=(np.array([6, 7]), np.array([0, 1])),
        )  # fmt: skip
        picks.append(pick.index.tolist())
    assert picks[0] == picks[1]
