"""active/: exact oracles for every acquisition score and pick, and chunk invariance."""

from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest

import truelabel
from truelabel.active import (
    _distance,
    badge_select,
    entropy_scores,
    k_center_greedy,
    least_confidence_scores,
    margin_scores,
    typicality_scores,
    typiclust_select,
    uncertainty_scores,
)
from truelabel.active._distance import nearest_center
from truelabel.active._diversity import _grad_sqdist_chunk, gradient_factors, kmeans
from truelabel.backend import Chunk, LocalBackend
from truelabel.exceptions import ValidationError

P = np.array(
    [
        [0.6, 0.3, 0.1],
        [0.2, 0.2, 0.6],
        [1 / 3, 1 / 3, 1 / 3],
        [1.0, 0.0, 0.0],
        [0.45, 0.45, 0.1],
    ]
)


def test_least_confidence_hand_values():
    # (1 - max p) * K / (K - 1), K = 3
    expected = [0.4 * 1.5, 0.4 * 1.5, 1.0, 0.0, 0.55 * 1.5]
    np.testing.assert_allclose(least_confidence_scores(P), expected, atol=1e-12)


def test_margin_hand_values():
    expected = [1 - 0.3, 1 - 0.4, 1.0, 0.0, 1.0]
    np.testing.assert_allclose(margin_scores(P), expected, atol=1e-12)


def test_entropy_naive_loop():
    expected = []
    for row in P.tolist():
        h = -sum(p * math.log(p) for p in row if p > 0)
        expected.append(h / math.log(3))
    got = entropy_scores(P)
    np.testing.assert_allclose(got, expected, atol=1e-12)
    assert got[3] == 0.0 and not np.signbit(got[3])


def test_scores_rank_differently():
    # the three formulas are not the same ranking: a guard against a swapped method
    lc, mg, en = least_confidence_scores(P), margin_scores(P), entropy_scores(P)
    assert mg[4] == 1.0 and lc[4] < 1.0  # two tied classes: margin maximal, confidence not
    assert en[0] != en[1] and lc[0] == lc[1]


def test_uncertainty_method_dispatch_and_typo():
    for method, fn in (
        ("least_confidence", least_confidence_scores),
        ("margin", margin_scores),
        ("entropy", entropy_scores),
    ):
        np.testing.assert_array_equal(uncertainty_scores(P, method=method), fn(P))
    with pytest.raises(ValidationError, match=r"method: got 'margn'.*did you mean 'margin'"):
        uncertainty_scores(P, method="margn")
    with pytest.raises(ValidationError, match=r"pred_probs.*sum"):
        margin_scores(np.array([[0.5, 0.2], [0.5, 0.5]]))


@pytest.fixture(scope="module")
def pool():
    rng = np.random.default_rng(3)
    return np.r_[rng.normal(0, 1, (120, 5)), rng.normal(3, 1, (80, 5))].astype(np.float32)


BACKENDS = [
    (LocalBackend(1), None),
    (LocalBackend(2), 7),
    (LocalBackend(2), 1),
    (LocalBackend(1), 64),
]


def test_uncertainty_identical_for_any_backend_and_chunk():
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(4), size=301)
    for method in ("least_confidence", "margin", "entropy"):
        ref = uncertainty_scores(p, method=method, backend=LocalBackend(1))
        for be, cs in BACKENDS:
            np.testing.assert_array_equal(
                uncertainty_scores(p, method=method, backend=be, chunk_size=cs), ref
            )


def test_typicality_hand_values():
    X = np.array([[0.0], [1.0], [2.0], [10.0]])
    np.testing.assert_allclose(typicality_scores(X, n_neighbors=1), [0.5, 0.5, 0.5, 1 / 9])
    # k = 2: mean distances 1.5, 1, 1.5, 8.5
    np.testing.assert_allclose(
        typicality_scores(X, n_neighbors=2), [1 / 2.5, 1 / 2, 1 / 2.5, 1 / 9.5], rtol=1e-6
    )
    with pytest.raises(ValidationError, match="n_neighbors: got 0"):
        typicality_scores(X, n_neighbors=0)


def test_k_center_greedy_hand_values():
    X = np.array([[0.0], [1.0], [5.0], [9.0], [10.0]])
    assert k_center_greedy(X, 2, labeled=[0]).tolist() == [4, 2]
    # nothing labeled: the item nearest the mean (5.0), then the farthest (0 and 10 tie: 0)
    assert k_center_greedy(X, 3).tolist() == [2, 0, 4]
    with pytest.raises(ValidationError, match=r"n: asks for 5 items but only 4"):
        k_center_greedy(X, 5, labeled=[1])
    with pytest.raises(ValidationError, match=r"labeled: holds"):
        k_center_greedy(X, 1, labeled=[7])


def test_badge_gradient_distance_matches_explicit_kron():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(6, 3))
    p = rng.dirichlet(np.ones(4), size=6)
    A = gradient_factors(p)
    G = np.stack([np.kron(A[i], X[i]) for i in range(6)])
    c = 2
    got = _grad_sqdist_chunk(Chunk(0, 0, 6), (X, A, X[c], A[c], float((G[c] ** 2).sum())))
    np.testing.assert_allclose(got, ((G - G[c]) ** 2).sum(axis=1), atol=1e-12)
    # the factor is p - onehot(argmax p)
    expected = p.copy()
    expected[np.arange(6), p.argmax(axis=1)] -= 1
    np.testing.assert_allclose(A, expected)


def test_badge_select_matches_naive_kmeanspp_on_explicit_embeddings():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(30, 4))
    p = rng.dirichlet(np.ones(3) * 0.7, size=30)
    A = gradient_factors(p)
    G = np.stack([np.kron(A[i], X[i]) for i in range(30)])
    # naive BADGE: first the largest gradient, then D^2 sampling
    r = np.random.default_rng(5)
    picks = [int(np.argmax((G**2).sum(axis=1)))]
    d2 = ((G - G[picks[0]]) ** 2).sum(axis=1)
    for _ in range(4):
        d2[picks] = 0
        picks.append(int(r.choice(30, p=d2 / d2.sum())))
        d2 = np.minimum(d2, ((G - G[picks[-1]]) ** 2).sum(axis=1))
    assert badge_select(X, p, 5, random_state=5).tolist() == picks
    lab = [picks[0]]
    assert picks[0] not in badge_select(X, p, 5, labeled=lab, random_state=5).tolist()


def test_typiclust_covers_uncovered_clusters_with_their_most_typical_item():
    blob = np.array([-0.2, -0.1, 0.0, 0.1, 0.2])
    X = np.r_[blob, blob + 10, blob + 20][:, None]
    typ = typicality_scores(X, n_neighbors=4)  # the neighbours inside each blob
    picks = typiclust_select(X, 3, typicality=typ, random_state=0)
    assert sorted(picks.tolist()) == [2, 7, 12]  # each blob's centre
    # blob 0 is covered by a label: one pick goes to each other blob, never blob 0
    picks = typiclust_select(X, 2, labeled=[0], typicality=typ, random_state=0)
    assert sorted(picks.tolist()) == [7, 12]


def test_picks_identical_for_any_backend_and_chunk(pool):
    p = np.random.default_rng(4).dirichlet(np.ones(3), size=pool.shape[0])
    ref_t = typicality_scores(pool, backend=LocalBackend(1))
    ref_k = k_center_greedy(pool, 6, labeled=[0, 150], backend=LocalBackend(1))
    ref_b = badge_select(pool, p, 6, random_state=1, backend=LocalBackend(1))
    ref_c = typiclust_select(pool, 5, labeled=[3], random_state=1, backend=LocalBackend(1))
    ref_n = nearest_center(pool, pool[:9], backend=LocalBackend(1))
    for be, cs in BACKENDS:
        np.testing.assert_array_equal(typicality_scores(pool, backend=be, chunk_size=cs), ref_t)
        kw = {"backend": be, "chunk_size": cs}
        assert k_center_greedy(pool, 6, labeled=[0, 150], **kw).tolist() == ref_k.tolist()
        assert badge_select(pool, p, 6, random_state=1, **kw).tolist() == ref_b.tolist()
        assert typiclust_select(pool, 5, labeled=[3], random_state=1, **kw).tolist() == (
            ref_c.tolist()
        )
        idx, dist = nearest_center(pool, pool[:9], **kw)
        np.testing.assert_array_equal(idx, ref_n[0])
        np.testing.assert_array_equal(dist, ref_n[1])


def test_nearest_center_exact_and_ties_to_lowest_index():
    X = np.array([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0]])
    C = np.array([[2.0, 0.0], [0.0, 0.0], [2.0, 0.0]])
    idx, d = nearest_center(X, C)
    assert idx.tolist() == [1, 0, 0]  # item 1 is at distance 1 of all three: lowest index
    np.testing.assert_allclose(d, [0.0, 1.0, 1.0])


def test_nearest_center_row_blocks_change_nothing(monkeypatch):
    # a chunk is measured in blocks of MAX_CELLS // n_centres rows; ties (duplicated centres)
    # still go to the lowest index
    rng = np.random.default_rng(3)
    X = rng.normal(size=(301, 6))
    C = np.r_[rng.normal(size=(40, 6)), X[:5], X[:5]]
    ref = nearest_center(X, C)
    assert (ref[0][:5] == np.arange(40, 45)).all() and (ref[1][:5] == 0).all()
    for cells in (1, 7, 50 * 13, 50 * 301):
        monkeypatch.setattr(_distance, "MAX_CELLS", cells)
        for cs in (None, 64):
            idx, dist = nearest_center(X, C, chunk_size=cs)
            np.testing.assert_array_equal(idx, ref[0])
            np.testing.assert_array_equal(dist, ref[1])


def test_nearest_center_memory_is_bounded_by_max_cells(monkeypatch):
    # 3,000 rows x 2,000 centres: one proposal matrix would be 48 MB (and its products as
    # much again); in blocks of 2**16 cells the peak stays a few MB
    rng = np.random.default_rng(0)
    X, C = rng.normal(size=(3000, 4)), rng.normal(size=(2000, 4))

    def peak() -> float:
        tracemalloc.start()
        try:
            nearest_center(X, C, backend=LocalBackend(1))
            return tracemalloc.get_traced_memory()[1] / 2**20
        finally:
            tracemalloc.stop()

    monkeypatch.setattr(_distance, "MAX_CELLS", 1 << 40)  # unbounded: the test can see it
    assert peak() > 40
    monkeypatch.setattr(_distance, "MAX_CELLS", 1 << 16)
    assert peak() < 8


def test_kmeans_finds_separated_blobs():
    rng = np.random.default_rng(0)
    X = np.r_[rng.normal(0, 0.1, (20, 2)), rng.normal(5, 0.1, (20, 2))]
    centers, assign = kmeans(X, 2, np.random.default_rng(1))
    assert len(set(assign[:20])) == 1 and len(set(assign[20:])) == 1
    assert assign[0] != assign[20]
    np.testing.assert_allclose(np.sort(centers[:, 0]), [X[:20, 0].mean(), X[20:, 0].mean()])


def test_exported_by_name():
    for name in (
        "ActiveLearner",
        "StopEstimate",
        "least_confidence_scores",
        "margin_scores",
        "entropy_scores",
        "uncertainty_scores",
        "typicality_scores",
        "typiclust_select",
        "badge_select",
        "k_center_greedy",
    ):
        assert name in truelabel.__all__
        assert getattr(truelabel, name) is getattr(truelabel.active, name)
