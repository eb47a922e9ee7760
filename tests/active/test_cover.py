"""Coverage batches (``pick_cover``) and the model-versus-nearest-neighbour edge that switches
them on (``neighbour_edge``), against brute-force oracles on hand-built pools."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import truelabel.active._learner as lrn
import truelabel.active._select as sel
from truelabel._progress import progress_enabled
from truelabel.active import ActiveLearner
from truelabel.active._select import Pick, neighbour_edge, pick_cover
from truelabel.backend import LocalBackend

#: blob centres far apart (k-means finds each blob), sizes all different (the order is exact)
CENTRES = np.array([[0.0, 0.0], [40.0, 0.0], [0.0, 40.0], [40.0, 40.0], [80.0, 0.0]])
SIZES = [9, 14, 7, 11, 5]


def _blobs(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = np.vstack([c + rng.normal(0, 1.0, (s, 2)) for c, s in zip(CENTRES, SIZES, strict=True)])
    return X, np.repeat(np.arange(len(SIZES)), SIZES)


def _typical(X: np.ndarray, members: np.ndarray, costs: np.ndarray) -> int:
    """The oracle: highest 1 / mean distance to the 5 nearest other members, per unit cost."""
    d = np.sqrt(((X[members][:, None] - X[members][None]) ** 2).sum(-1))
    d.sort(axis=1)
    typ = 1.0 / d[:, 1:6].mean(axis=1)
    return int(members[np.argmax(typ / costs[members])])


def _cover(X, taught, m, *, costs=None, rng=None, duplicate_cosine=0.99):
    return pick_cover(
        X, np.asarray(taught, dtype=np.int64), m,
        costs=np.ones(len(X)) if costs is None else costs,
        duplicate_cosine=duplicate_cosine, center=X.mean(axis=0),
        rng=np.random.default_rng(0) if rng is None else rng, backend=None, chunk_size=None,
    )  # fmt: skip


def test_cover_takes_the_most_typical_item_of_each_uncovered_cluster_largest_first():
    # taught: one item of blob 1 (the largest) and one of blob 3; k = 2 + 3 = 5 clusters, the
    # blobs. Uncovered: blobs 0 (9), 2 (7), 4 (5), in that order.
    X, blob = _blobs()
    pick = _cover(X, [9, 30], 3)
    expect = [_typical(X, np.flatnonzero(blob == b), np.ones(len(X))) for b in (0, 2, 4)]
    assert pick.index.tolist() == expect
    assert pick.cluster_size.tolist() == [9, 7, 5]
    # score: size x squared distance from the blob's mean to the nearest taught item
    taught = X[[9, 30]]
    mass = [
        (blob == b).sum() * ((X[blob == b].mean(axis=0) - taught) ** 2).sum(axis=1).min()
        for b in (0, 2, 4)
    ]
    assert pick.score.tolist() == pytest.approx(np.array(mass) / mass[0])
    assert pick.n_candidates == len(X)
    # a pool a thousand times smaller (every mass below 1): the same picks, the same ratios
    small = _cover(X * 1e-3, [9, 30], 3)
    assert small.index.tolist() == pick.index.tolist()
    assert small.score.tolist() == pytest.approx(pick.score.tolist(), rel=1e-9)
    # float32 features are clustered as float64: the batch of the same values in float64
    x32 = X.astype(np.float32)
    as64 = _cover(x32.astype(np.float64), [9, 30], 3)
    assert _cover(x32, [9, 30], 3).index.tolist() == as64.index.tolist()


def test_cover_weighs_an_uncovered_cluster_by_its_squared_distance_to_the_taught_items():
    # taught: blob 0 at (0, 0). Uncovered: 14 items at (10, 0) beside it and 7 at (100, 0)
    # far away. By size (TypiClust) the near blob would come first; its uncovered mass
    # 14 x 10^2 is far below 7 x 100^2, so the far blob leads.
    rng = np.random.default_rng(1)
    X = np.vstack([
        rng.normal(0, 0.5, (9, 2)),
        np.array([10.0, 0.0]) + rng.normal(0, 0.5, (14, 2)),
        np.array([100.0, 0.0]) + rng.normal(0, 0.5, (7, 2)),
    ])  # fmt: skip
    blob = np.repeat([0, 1, 2], [9, 14, 7])
    pick = _cover(X, [0], 2)
    expect = [_typical(X, np.flatnonzero(blob == b), np.ones(len(X))) for b in (2, 1)]
    assert pick.index.tolist() == expect
    assert pick.cluster_size.tolist() == [7, 14]
    d2 = [((X[blob == b].mean(axis=0) - X[0]) ** 2).sum() for b in (2, 1)]
    assert pick.score.tolist() == pytest.approx([1.0, 14 * d2[1] / (7 * d2[0])])


def test_cover_with_nothing_taught_orders_clusters_by_size():
    X, blob = _blobs()
    pick = _cover(X, [], 5)
    assert pick.cluster_size.tolist() == [14, 11, 9, 7, 5]
    assert pick.score.tolist() == pytest.approx([1.0, 11 / 14, 9 / 14, 7 / 14, 5 / 14])


def test_within_a_cluster_typicality_is_weighed_per_unit_of_cost():
    X, blob = _blobs()
    costs = np.ones(len(X))
    first = _typical(X, np.flatnonzero(blob == 0), costs)
    costs[first] = 50.0  # the most typical of blob 0 now costs too much
    pick = _cover(X, [9, 30], 3, costs=costs)
    assert pick.index[0] != first
    assert pick.index[0] == _typical(X, np.flatnonzero(blob == 0), costs)


def test_a_near_duplicate_of_the_batch_is_passed_over():
    # every pair of rows has centred cosine >= -1: after the first pick all are duplicates
    X, _ = _blobs()
    pick = _cover(X, [9, 30], 3, duplicate_cosine=-1.0)
    assert pick.index.size == 1
    pick = _cover(X, [9, 30], 3, duplicate_cosine=1.0 + 1e-9)  # nothing is a duplicate
    assert pick.index.size == 3


def test_a_labeled_member_is_never_picked_and_covered_clusters_are_skipped():
    X, blob = _blobs()
    taught = np.r_[np.flatnonzero(blob == 0)[:8], 9]  # blob 0 covered, one member left free
    pick = _cover(X, taught, 4)  # k = 9 + 4 = 13 clusters: blobs split, covered parts skipped
    assert not np.isin(pick.index, taught).any()
    assert np.unique(pick.index).size == pick.index.size


def test_above_max_cover_rows_a_seeded_sample_is_clustered(monkeypatch):
    X, blob = _blobs()
    monkeypatch.setattr(sel, "MAX_COVER_ROWS", 30)
    taught = np.array([9, 30])
    rng = np.random.default_rng(3)
    pick = _cover(X, taught, 3, rng=rng)
    sample = np.sort(np.random.default_rng(3).choice(len(X), size=30, replace=False))
    assert pick.n_candidates == 30
    assert np.isin(pick.index, sample).all()
    # the taught items outside the sample still cover their blobs (nearest centre)
    assert not np.isin(blob[pick.index], blob[taught]).any()


@pytest.mark.parametrize("max_rows", [None, 30])
def test_taught_rows_read_in_blocks_give_the_same_batch(monkeypatch, max_rows):
    # the taught rows are measured against the centres block by block (TAUGHT_BLOCK rows at a
    # time): the covered clusters and each centre's nearest taught item must not depend on it
    X, blob = _blobs()
    if max_rows is not None:
        monkeypatch.setattr(sel, "MAX_COVER_ROWS", max_rows)
    taught = [9, 30, 2, 41, 31]  # blobs 1, 3, 0, 4, 3: blob 2 alone is uncovered
    ref = _cover(X, taught, 3, rng=np.random.default_rng(5))
    for block in (1, 2, 3):
        monkeypatch.setattr(sel, "TAUGHT_BLOCK", block)
        got = _cover(X, taught, 3, rng=np.random.default_rng(5))
        assert got.index.tolist() == ref.index.tolist()
        assert got.score.tolist() == ref.score.tolist()
    # the uncovered blob comes first, the second pick (a split-off part of a covered blob,
    # nearer a taught item) scores far lower: the blocks' minimum is each centre's nearest
    assert ref.index.size >= 2 and blob[ref.index[0]] == 2 and ref.score[1] < 0.01


def test_every_chunk_pass_runs_on_the_given_backend_and_chunk_size(
    monkeypatch, recording_backend, forbid_default_backend
):
    # a Ray backend must carry all of a coverage batch's work: no pass may fall back to the
    # default local backend (get_backend(None)) or to the default chunk size
    X, _ = _blobs()
    monkeypatch.setattr(sel, "MAX_COVER_ROWS", 30)  # the sampled case: taught rows find centres
    taught = np.array([9, 30, 2, 41, 31])
    ref = _cover(X, taught, 3, rng=np.random.default_rng(1))
    rec = recording_backend
    forbid_default_backend()
    got = pick_cover(
        X, taught, 3, costs=np.ones(len(X)), duplicate_cosine=0.99, center=X.mean(axis=0),
        rng=np.random.default_rng(1), backend=rec, chunk_size=1,
    )  # fmt: skip
    assert got.index.tolist() == ref.index.tolist()
    assert got.score.tolist() == pytest.approx(ref.score.tolist(), rel=1e-12)
    # k-means (its seeding measures squared distances), the centres, the clusters' kNN graphs
    assert set(rec.fns) == {"_sqdist_chunk", "_nearest_chunk", "_exact_knn_chunk"}
    assert max(rec.chunk_rows) == 1


def test_the_edge_runs_on_the_given_backend_and_chunk_size(
    recording_backend, forbid_default_backend
):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 5))
    items = rng.choice(40, size=24, replace=False)
    codes = rng.integers(0, 3, size=24)
    folds = np.arange(24) % 4
    oof_pred = np.where(rng.random(24) < 0.6, codes, (codes + 1) % 3)
    center = X.mean(axis=0)
    expect = _edge_oracle(X, items, codes, folds, oof_pred, center)
    forbid_default_backend()
    got = neighbour_edge(X, items, codes, folds, oof_pred, center=center,
                         rng=np.random.default_rng(0), backend=recording_backend, chunk_size=1)  # fmt: skip
    assert got == expect
    assert (
        set(recording_backend.fns) == {"_nearest_chunk"} and max(recording_backend.chunk_rows) == 1
    )


def _edge_oracle(X, items, codes, folds, oof_pred, center):
    u = X[items] - center
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    b = c = 0
    for i in range(items.size):
        if oof_pred[i] < 0:
            continue
        out = np.flatnonzero((folds != folds[i]) & (oof_pred >= 0))
        nn = codes[out[np.argmax(u[out] @ u[i])]] if out.size else -1
        b += oof_pred[i] == codes[i] and nn != codes[i]
        c += nn == codes[i] and oof_pred[i] != codes[i]
    return b, c


@pytest.mark.parametrize("seed", range(4))
def test_edge_counts_where_model_and_nearest_neighbour_disagree(seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(40, 5))
    items = rng.choice(40, size=24, replace=False)
    codes = rng.integers(0, 3, size=24)
    folds = np.arange(24) % 4
    oof_pred = np.where(rng.random(24) < 0.6, codes, (codes + 1) % 3)
    oof_pred[[3, 7]] = -1  # their folds were not left out
    center = X.mean(axis=0)
    got = neighbour_edge(X, items, codes, folds, oof_pred, center=center,
                         rng=np.random.default_rng(0), backend=None, chunk_size=None)  # fmt: skip
    assert got == _edge_oracle(X, items, codes, folds, oof_pred, center)
    assert sum(got) > 0


def test_edge_pinned_on_a_line():
    # items at 0, 1, 10, 11 (codes 0, 0, 1, 0), folds 0, 1, 0, 1: left out, each one's nearest
    # outside its fold is its neighbour on the line -> nn says 0, 0, 0, 1; right: 1, 1, 0, 0.
    # The model (oof) says 0, 1, 1, 1: right on items 0, 2. b = model right & nn wrong = {2},
    # c = nn right & model wrong = {1}.
    X = np.array([[0.0, 1.0], [1.0, 1.0], [10.0, 1.0], [11.0, 1.0]])
    got = neighbour_edge(X, np.arange(4), np.array([0, 0, 1, 0]), np.array([0, 1, 0, 1]),
                         np.array([0, 1, 1, 1]), center=np.array([5.5, 0.0]),
                         rng=np.random.default_rng(0), backend=None, chunk_size=None)  # fmt: skip
    assert got == (1, 1)


def test_a_fold_holding_every_item_gives_no_neighbour():
    X = np.array([[0.0, 1.0], [1.0, 1.0], [2.0, 1.0]])
    got = neighbour_edge(X, np.arange(3), np.array([0, 1, 0]), np.zeros(3, dtype=np.int64),
                         np.array([0, 0, 0]), center=np.zeros(2),
                         rng=np.random.default_rng(0), backend=None, chunk_size=None)  # fmt: skip
    assert got == (2, 0)  # the model is right on items 0 and 2; no neighbour is right


def test_above_max_edge_items_a_seeded_sample_is_compared(monkeypatch):
    monkeypatch.setattr(sel, "MAX_EDGE_ITEMS", 10)
    rng = np.random.default_rng(5)
    X = rng.normal(size=(60, 4))
    items = np.arange(30)
    codes = rng.integers(0, 2, size=30)
    folds = np.arange(30) % 3
    oof_pred = np.where(rng.random(30) < 0.5, codes, 1 - codes)
    oof_pred[0] = -1
    center = X.mean(axis=0)
    got = neighbour_edge(X, items, codes, folds, oof_pred, center=center,
                         rng=np.random.default_rng(9), backend=None, chunk_size=None)  # fmt: skip
    keep = np.sort(np.random.default_rng(9).choice(np.arange(1, 30), size=10, replace=False))
    assert got == _edge_oracle(X, items[keep], codes[keep], folds[keep], oof_pred[keep], center)


# ---------------------------------------------------------------- the switch in ActiveLearner
def _learner(n_classes=12, seed=0, **kw):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 4, (n_classes, 6))
    X = np.vstack([rng.normal(c, 0.6, (30, 6)) for c in centres]).astype(np.float32)
    y = np.repeat(np.arange(n_classes), 30)
    taught = np.r_[[np.flatnonzero(y == k)[:2] for k in range(n_classes)]].ravel()
    return ActiveLearner(X, random_state=seed, **kw).teach(taught, y[taught]), X, y


def _covers(df) -> bool:
    starts = df["reason"].str.startswith("coverage: ")
    assert starts.all() or not starts.any()
    return bool(starts.all())


@pytest.mark.parametrize(
    ("edge", "n_classes", "m", "covers"),
    [
        ((3, 3), 12, 5, True),  # the model no better than the nearest taught item
        ((4, 3), 12, 5, False),  # the model better by one disagreement
        ((2, 9), 12, 5, True),
        ((0, 0), 11, 5, True),  # more than COVER_MIN_CLASSES = 10 classes
        ((0, 0), 10, 5, False),  # ... not 10
        ((0, 0), 10, 3, False),  # whatever the batch: 10 classes outnumber a batch of 3
        ((0, 0), 12, 12, True),  # a batch holding one item per class still covers
        ((0, 0), 12, 30, True),
    ],
)
def test_coverage_with_many_classes_while_the_model_is_no_better(
    monkeypatch, edge, n_classes, m, covers
):
    calls = []

    def fake_cover(X, taught, n, **kw):  # n rows past the taught ones: the switch alone
        calls.append(n)
        rows = np.setdiff1d(np.arange(len(X)), taught)[:n]
        return Pick(rows, np.ones(n), np.full(n, 7, dtype=np.int64), len(X))

    monkeypatch.setattr(lrn, "neighbour_edge", lambda *a, **k: edge)
    monkeypatch.setattr(lrn, "pick_cover", fake_cover)
    al, _, _ = _learner(n_classes)
    df = al.suggest(m)
    assert len(df) == m and _covers(df) is covers
    assert calls == ([m] if covers else [])
    assert (df["action"] == "label").all()


def test_the_switch_does_not_depend_on_the_batch_size(monkeypatch):
    # the same labels and pool: a batch of 1 or 3 covers exactly when one of 8 does (10 or
    # 11 blobs, 2 taught in each: larger batches run out of uncovered clusters and fall back)
    monkeypatch.setattr(lrn, "neighbour_edge", lambda *a, **k: (0, 0))
    for n_classes, covers in [(11, True), (10, False)]:
        for m in (1, 3, 8):
            al, _, _ = _learner(n_classes)
            assert _covers(al.suggest(m)) is covers, (n_classes, m)


def test_coverage_reason_in_full(monkeypatch):
    monkeypatch.setattr(lrn, "neighbour_edge", lambda *a, **k: (2, 5))
    al, X, _ = _learner()
    df = al.suggest(3)
    assert (df["action"] == "label").all()
    sizes = [int(r.split("a cluster of ")[1].split(" ")[0]) for r in df["reason"]]
    assert df["reason"].iloc[0] == (
        "coverage: with 12 classes (more than 10), and on left-out labels the model doing no "
        "better than the nearest taught item (right where it is wrong 2 times, the reverse 5 "
        "times), picks cover the pool's clusters; the most typical item of a cluster of "
        f"{sizes[0]} of the {len(X)} pool items clustered, none of them labeled (such clusters "
        "taken by size x squared distance to the nearest labeled item, largest first)"
    )
    score = df["score"].to_numpy()  # the uncovered mass over the first pick's (best first)
    assert score[0] == 1.0 and (np.diff(score) <= 0).all() and (score > 0).all()


def test_too_few_uncovered_clusters_fall_back_to_the_policy(monkeypatch):
    monkeypatch.setattr(lrn, "neighbour_edge", lambda *a, **k: (0, 0))
    short = Pick(np.array([0]), np.ones(1), np.ones(1, dtype=np.int64), 1)
    monkeypatch.setattr(lrn, "pick_cover", lambda *a, **k: short)
    al, _, _ = _learner()
    df = al.suggest(4)
    assert len(df) == 4 and not _covers(df)


def test_the_edge_is_measured_on_the_learner_folds():
    # well-separated blobs: both the model and the nearest taught item get the left-out labels
    # right, so nothing separates them and the batch covers the pool
    al, X, y = _learner()
    assert al._refit().edge == (0, 0)
    df = al.suggest(5)
    assert _covers(df)
    assert not np.isin(df["item_id"], np.r_[[np.flatnonzero(y == k)[:2] for k in range(12)]]).any()
    assert np.unique(y[df["item_id"]]).size == 5  # each pick from another blob


def test_a_model_better_than_the_nearest_neighbour_switches_coverage_off():
    # six classes by intervals of the first feature (a linear model learns them), nineteen
    # noise features (the nearest taught item is often of another class)

    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 20))
    X[:, 0] *= 6
    y = np.digitize(X[:, 0], [-6, -2, 0, 2, 6])
    taught = rng.choice(600, 80, replace=False)
    al = ActiveLearner(X.astype(np.float32), random_state=0).teach(taught, y[taught])
    b, c = al._refit().edge
    assert b > c
    assert not _covers(al.suggest(5))


def test_coverage_batches_identical_for_any_backend_and_chunk_size():
    ref = None
    for be, cs in [(LocalBackend(1), None), (LocalBackend(2), 7), (LocalBackend(2), 100)]:
        al, _, _ = _learner(backend=be, chunk_size=cs)
        out = al.suggest(6)
        assert _covers(out)
        if ref is None:
            ref = out
        else:
            pd.testing.assert_frame_equal(out, ref)


@pytest.mark.parametrize("n_classes", [12, 6])  # a coverage batch; an uncertainty batch
def test_a_learner_runs_every_chunk_pass_on_its_backend(
    recording_backend, forbid_default_backend, n_classes
):
    ref = _learner(n_classes)[0].suggest(6)
    forbid_default_backend()
    al, _, _ = _learner(n_classes, backend=recording_backend, chunk_size=1)
    out = al.suggest(6)
    assert _covers(out) is (n_classes == 12)
    pd.testing.assert_frame_equal(out, ref)
    # pool probabilities run in whole 2,048-row blocks (_model.BLOCK), every other pass in
    # chunks of the size given
    others = [
        n
        for name, n in zip(recording_backend.fns, recording_backend.chunk_rows, strict=True)
        if name != "_proba_chunk"
    ]
    assert max(others) == 1 and "_proba_chunk" in set(recording_backend.fns)


def test_a_coverage_batch_draws_no_progress_bar_per_cluster(capsys, monkeypatch):
    monkeypatch.setenv("TRUELABEL_PROGRESS", "1")  # bars wherever not switched off
    X, _ = _blobs()
    with progress_enabled(True):
        pick = _cover(X, [9, 30], 3)
    assert pick.index.size == 3
    out = capsys.readouterr()
    assert "kNN graph" not in out.out + out.err


def test_a_pool_of_exactly_max_cover_rows_is_not_sampled(monkeypatch):
    X, _ = _blobs()
    rng_ref, rng = np.random.default_rng(4), np.random.default_rng(4)
    ref = _cover(X, [9, 30], 3, rng=rng_ref)
    monkeypatch.setattr(sel, "MAX_COVER_ROWS", len(X))  # drawing a sample would move the rng
    got = _cover(X, [9, 30], 3, rng=rng)
    assert got.index.tolist() == ref.index.tolist()
    assert rng.random() == rng_ref.random()  # the same draws: no sample was taken
    monkeypatch.setattr(sel, "MAX_COVER_ROWS", len(X) - 1)
    assert _cover(X, [9, 30], 3, rng=np.random.default_rng(4)).n_candidates == len(X) - 1


def test_a_sampled_pool_skips_the_clusters_its_taught_items_fall_in(monkeypatch):
    # four distinct points, ten copies each; a sample of 20 rows is clustered into 1 + 4 = 5
    # clusters: the four points and an empty one. The taught copy of point 0 covers point 0's
    # cluster (its nearest centre), so three picks come back, none a copy of point 0.
    X = np.repeat(np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [-10.0, -10.0]]), 10, axis=0)
    monkeypatch.setattr(sel, "MAX_COVER_ROWS", 20)
    pick = _cover(X, [0], 4, duplicate_cosine=1.0 + 1e-9, rng=np.random.default_rng(2))
    assert pick.n_candidates == 20
    assert sorted(int(i) // 10 for i in pick.index) == [1, 2, 3]


def test_fewer_distinct_items_than_clusters_leave_empty_clusters_and_short_batches():
    # three distinct points, twice each; one taught: k = 1 + 4 = 5 clusters, two of them empty
    X = np.repeat(np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]]), 2, axis=0)
    pick = _cover(X, [0], 4, duplicate_cosine=1.0 + 1e-9)
    assert sorted(pick.index.tolist()) == [2, 4]  # each open cluster's first (tied) member
    assert pick.cluster_size.tolist() == [2, 2] and pick.score.tolist() == [1.0, 1.0]
    # every non-empty cluster covered: nothing to pick
    empty = _cover(X[:4], [0, 2], 2)
    assert empty.index.size == 0 and empty.index.dtype == np.int64
    assert empty.score.size == 0 and empty.cluster_size.size == 0


def test_the_near_duplicate_bound_is_inclusive():
    # two plus-shaped blobs whose centres are the most typical items, orthogonal about the
    # origin: centred cosine exactly 0
    plus = np.array([[0.0, 0.0], [1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    X = np.r_[plus + np.array([10.0, 0.0]), plus * 1.5 + np.array([0.0, 10.0]), [[-10.0, -10.0]]]
    args = dict(costs=np.ones(len(X)), center=np.zeros(2), backend=None, chunk_size=None)
    at = pick_cover(X, np.array([10]), 2, duplicate_cosine=0.0,
                    rng=np.random.default_rng(0), **args)  # fmt: skip
    above = pick_cover(X, np.array([10]), 2, duplicate_cosine=1e-12,
                       rng=np.random.default_rng(0), **args)  # fmt: skip
    assert sorted(above.index.tolist()) == [0, 5]
    assert at.index.size == 1


# ------------------------------------------------------- a declared class with no label yet
def _five_blobs(seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3, (5, 8))
    X = np.vstack([rng.normal(c, 0.5, (30, 8)) for c in centres]).astype(np.float32)
    return X, np.repeat(np.arange(5), 30)


def test_a_class_with_no_label_yet_makes_the_batch_cover_the_pool():
    X, y = _five_blobs()
    taught = [0, 1, 30, 31, 60, 61, 90, 91]  # classes a-d, two each; e (rows 120-149) none
    al = ActiveLearner(X, random_state=0, classes=["a", "b", "c", "d", "e"])
    df = al.teach(taught, np.array(list("abcde"))[y[taught]]).suggest(5)
    assert len(df) == 5 and not np.isin(df["item_id"], taught).any()
    lead = (
        "coverage: 1 of the 5 classes ('e') has no label yet, and the model never predicts a "
        "class it has not seen, so picks cover the pool's clusters; the most typical item of "
    )
    covered = df["reason"].str.startswith(lead)
    assert covered.iloc[0] and covered.sum() >= 1
    assert (y[df["item_id"][covered]] == 4).any()  # the unlabeled blob is reached
    # fewer uncovered clusters than the batch: the usual policy fills the rest
    assert df["reason"][~covered].str.startswith("leaving out a fold").all()
    assert df["item_id"].is_unique


def test_once_every_class_has_a_label_the_usual_policy_returns():
    X, y = _five_blobs()
    taught = [0, 1, 30, 31, 60, 61, 90, 91, 120]
    al = ActiveLearner(X, random_state=0, classes=["a", "b", "c", "d", "e"])
    df = al.teach(taught, np.array(list("abcde"))[y[taught]]).suggest(5)
    assert not df["reason"].str.startswith("coverage").any()


def test_the_fill_never_repeats_a_coverage_pick(monkeypatch):
    # coverage finds two items, exactly the two the usual policy ranks first: the fill must
    # take others, so the batch holds five distinct items
    X, y = _five_blobs()
    taught = [0, 1, 30, 31, 60, 61, 90, 91]
    names = np.array(list("abcde"))
    usual = ActiveLearner(X, random_state=0, classes=list("abcde"))
    usual.teach(taught, names[y[taught]])
    monkeypatch.setattr(
        lrn,
        "pick_cover",
        lambda *a, **k: Pick(
            np.array([], dtype=np.int64), np.zeros(0), np.zeros(0, dtype=np.int64), len(X)
        ),
    )
    first = usual.suggest(2)["item_id"].to_numpy()  # no coverage found: the usual policy
    assert first.size == 2
    monkeypatch.setattr(
        lrn,
        "pick_cover",
        lambda *a, **k: Pick(first, np.ones(2), np.full(2, 9, dtype=np.int64), len(X)),
    )
    al = ActiveLearner(X, random_state=0, classes=list("abcde")).teach(taught, names[y[taught]])
    df = al.suggest(5)
    assert df["item_id"].tolist()[:2] == first.tolist()
    assert df["item_id"].is_unique and len(df) == 5


def test_the_reason_names_at_most_five_unlabeled_classes():
    X, y = _five_blobs()
    classes = list("abcdefgh")  # f, g, h are in no blob; only a and b get labels
    al = ActiveLearner(X, random_state=0, classes=classes).teach([0, 30], ["a", "b"])
    reason = al.suggest(2)["reason"].iloc[0]
    assert reason.startswith(
        "coverage: 6 of the 8 classes ('c', 'd', 'e', 'f', 'g', ...) have no label yet, and "
    )
