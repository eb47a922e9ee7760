"""Outlier and near-duplicate detectors against brute-force oracles on small data: each
setting changes the answer exactly as documented (mutants that survived the named list)."""

from __future__ import annotations

import numpy as np
import pytest

from truelabel.detect import AuditContext, get_detector


def _modified_z(values):
    med = np.median(values)
    mad = np.median(np.abs(values - med))
    if mad == 0:  # documented fallback: the mean absolute deviation
        mad = np.mean(np.abs(values - med))
    return 0.6745 * (values - med) / mad


def _pred_probs_only():
    rng = np.random.default_rng(0)
    n, k = 40, 3
    pred = np.arange(n) % k
    top = 0.9 + 0.02 * rng.random(n)
    top[[4, 17]] = [0.4, 0.55]  # far below their class's typical confidence
    p = np.empty((n, k))
    p[:] = ((1 - top) / (k - 1))[:, None]
    p[np.arange(n), pred] = top
    return p


def _oracle_pred_probs_scores(p):
    pred = p.argmax(axis=1)
    pmax = p.max(axis=1)
    typical = {c: pmax[pred == c].mean() for c in set(pred.tolist())}
    return np.array([min(1.0, pmax[i] / typical[pred[i]]) for i in range(len(p))])


@pytest.mark.parametrize("z", [3.5, 1.0, 50.0])
def test_pred_probs_outliers_match_the_documented_rule(z):
    p = _pred_probs_only()
    ctx = AuditContext(labels=None, pred_probs=p, features=None, n_classes=3)
    cols = get_detector("outlier", z=z).detect(ctx).columns
    score = _oracle_pred_probs_scores(p)
    np.testing.assert_allclose(cols["outlier_score"].to_numpy(), score, rtol=1e-12)
    flagged = _modified_z(-np.log(score)) > z
    np.testing.assert_array_equal(cols["is_outlier_issue"].to_numpy(), flagged)
    if z == 3.5:  # the two unsure items, and only they
        assert np.flatnonzero(flagged).tolist() == [4, 17]
    if z == 50.0:
        assert not flagged.any()


def _unit_blobs():
    rng = np.random.default_rng(1)
    centers = rng.normal(size=(3, 5))
    X = centers[np.arange(45) % 3] + 0.15 * rng.normal(size=(45, 5))
    X[7] = rng.normal(size=5)  # off every cluster
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def test_cosine_outlier_score_is_the_product_of_both_spaces():
    """With unit-norm features and no raw rows both spaces are the features, so the score
    is (mean cosine to the k nearest)^2: a score from one space alone is its square root."""
    X = _unit_blobs()
    k = 5
    ctx = AuditContext(labels=None, pred_probs=None, features=X, n_classes=3, n_neighbors=k)
    cols = get_detector("outlier").detect(ctx).columns
    cos = X @ X.T
    np.fill_diagonal(cos, -np.inf)
    top = -np.sort(-cos, axis=1)[:, :k]
    mean = np.clip(top.mean(axis=1), 0.0, 1.0)
    np.testing.assert_allclose(cols["outlier_score"].to_numpy(), mean**2, rtol=1e-5, atol=1e-6)
    assert cols["is_outlier_issue"].to_numpy()[7]


def _components(n, pairs):
    parent = list(range(n))

    def find(a):
        while parent[a] != a:
            a = parent[a]
        return a

    for a, b in pairs:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    roots = [find(i) for i in range(n)]
    sizes = {r: roots.count(r) for r in roots}
    return [frozenset(i for i in range(n) if roots[i] == r) for r in sizes if sizes[r] > 1]


@pytest.mark.parametrize("threshold", [0.13, 0.6, 1.5])
def test_euclidean_near_duplicates_follow_the_threshold(threshold):
    # 1-D points: nearest-neighbour gaps 0.01, 0.05, 0.3, 0.5, 1 and 2 (median 0.75)
    x = np.array([0.0, 0.01, 10.0, 10.05, 20.0, 20.3, 30.0, 30.5, 40, 41, 50, 52, 60, 62, 70, 72])
    X = np.c_[x, np.zeros_like(x)]
    ctx = AuditContext(labels=None, pred_probs=None, features=X, n_classes=2, n_neighbors=3)
    cols = (
        get_detector("near_duplicate", metric="euclidean", threshold=threshold).detect(ctx).columns
    )
    d = np.abs(x[:, None] - x[None, :])
    np.fill_diagonal(d, np.inf)
    d1 = d.min(axis=1)
    radius = threshold * np.median(d1)
    pairs = [(i, j) for i in range(len(x)) for j in range(i + 1, len(x)) if d[i, j] <= radius]
    want = set(_components(len(x), pairs))
    sets = cols["near_duplicate_set"].to_numpy()
    got = {frozenset(np.flatnonzero(sets == s).tolist()) for s in set(sets.tolist()) if s >= 0}
    assert got == want
    assert len(want) == {0.13: 2, 0.6: 3, 1.5: 5}[threshold]
