"""Conformal classification: scores, quantile, split / Mondrian / CV+ sets, metrics."""

from __future__ import annotations

import math
import pickle
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone

from truelabel.conformal import (
    CrossConformalClassifier,
    SplitConformalClassifier,
    conformal_quantile,
    conformity_scores,
    coverage,
    coverage_per_class,
    label_scores,
    min_calibration_size,
    set_size_distribution,
    set_sizes,
    singleton_rate,
    summarize_sets,
)
from truelabel.exceptions import NotFittedError, ValidationError

FAST = settings(max_examples=25, deadline=None)
METHODS = [
    ("lac", False),
    ("aps", True),
    ("aps", False),
    ("raps", True),
    ("raps", False),
]


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _sample_labels(rng: np.random.Generator, p: np.ndarray) -> np.ndarray:
    """Labels drawn from the probabilities themselves, so the model is calibrated."""
    u = rng.random(p.shape[0])
    return np.minimum((p.cumsum(axis=1) < u[:, None]).sum(axis=1), p.shape[1] - 1)


def _problem(rng: np.random.Generator, n: int, k: int, scale: float = 2.0):
    p = _softmax(scale * rng.normal(size=(n, k)))
    return p, _sample_labels(rng, p)


# ---------------------------------------------------------------- scores


def _naive_scores(p: np.ndarray, method: str, u: np.ndarray | None, lam: float, k_reg: int):
    n, k = p.shape
    out = np.empty((n, k))
    for i in range(n):
        order = list(np.argsort(-p[i], kind="stable"))
        for y in range(k):
            if method == "lac":
                out[i, y] = 1 - p[i, y]
                continue
            rank = order.index(y) + 1
            above = sum(p[i, c] for c in order[: rank - 1])
            s = above + (p[i, y] if u is None else u[i] * p[i, y])
            if method == "raps":
                s += lam * max(0, rank - k_reg)
            out[i, y] = s
    return out


@FAST
@given(
    seed=st.integers(0, 2**32 - 1),
    k=st.integers(2, 6),
    method=st.sampled_from(["lac", "aps", "raps"]),
    randomized=st.booleans(),
    lam=st.floats(0, 1),
    k_reg=st.integers(0, 4),
)
def test_scores_match_naive_loop(seed, k, method, randomized, lam, k_reg):
    rng = np.random.default_rng(seed)
    p, y = _problem(rng, 7, k)
    got = conformity_scores(
        p, method=method, randomized=randomized, lam=lam, k_reg=k_reg, random_state=3
    )
    u = np.random.default_rng(3).random(7) if randomized and method != "lac" else None
    np.testing.assert_allclose(got, _naive_scores(p, method, u, lam, k_reg), atol=1e-12)
    true = label_scores(
        p, y, method=method, randomized=randomized, lam=lam, k_reg=k_reg, random_state=3
    )
    np.testing.assert_array_equal(true, got[np.arange(7), y])


# ---------------------------------------------------------------- quantile


@settings(max_examples=60, deadline=None)
@given(
    scores=st.lists(st.floats(0, 1), min_size=1, max_size=60),
    alpha=st.sampled_from(["0.01", "0.05", "0.1", "0.2", "0.25", "0.3", "0.5", "0.75", "0.9"]),
)
def test_quantile_matches_brute_force(scores, alpha):
    a = Fraction(alpha)  # exact decimal arithmetic for the reference
    n = len(scores)
    # brute force: the smallest score t with #{s <= t} >= (1 - alpha)(n + 1)
    need = (1 - a) * (n + 1)
    feasible = [t for t in sorted(scores) if sum(s <= t for s in scores) >= need]
    if not feasible:
        assert n < min_calibration_size(float(a))
        with pytest.raises(ValidationError, match=f"calibration set has {n} items"):
            conformal_quantile(scores, float(a))
        return
    assert n >= min_calibration_size(float(a))
    assert conformal_quantile(scores, float(a)) == min(feasible)
    assert min_calibration_size(float(a)) == max(1, math.ceil(1 / a - 1))


def test_quantile_rank_is_not_fooled_by_float_error():
    # (99 + 1) * (1 - 0.1) is 90 exactly; a float rounding up would pick the 91st score
    assert conformal_quantile(np.arange(99.0), 0.1) == 89.0
    assert conformal_quantile(np.arange(19.0), 0.05) == 18.0


@pytest.mark.parametrize("alpha", [0, 1, -0.1, 1.5, float("nan"), True, "0.1", None])
def test_alpha_outside_unit_interval_is_rejected(alpha):
    with pytest.raises(ValidationError, match=r"alpha: got .* strictly between 0 and 1"):
        conformal_quantile([0.1, 0.2], alpha)
    p, y = _problem(np.random.default_rng(0), 50, 3)
    with pytest.raises(ValidationError, match="alpha: got"):
        SplitConformalClassifier(alpha=alpha).fit(p, y)
    with pytest.raises(ValidationError, match="alpha: got"):
        CrossConformalClassifier(alpha=alpha).fit(p, y, np.arange(50) % 5)


def test_quantile_input_errors():
    with pytest.raises(ValidationError, match=r"scores: expected a non-empty 1-D array"):
        conformal_quantile([], 0.1)
    with pytest.raises(ValidationError, match=r"scores: expected a non-empty 1-D array"):
        conformal_quantile(np.zeros((3, 3)), 0.1)
    with pytest.raises(ValidationError, match="scores: item 1 is NaN"):
        conformal_quantile([0.1, float("nan")] * 10, 0.1)


# ---------------------------------------------------------------- split conformal


@pytest.mark.parametrize(("method", "randomized"), METHODS)
def test_split_marginal_coverage_averaged_over_seeds(method, randomized):
    alpha, covs = 0.1, []
    for seed in range(25):
        rng = np.random.default_rng(seed)
        p, y = _problem(rng, 2500, 5)
        cp = SplitConformalClassifier(
            method=method, alpha=alpha, randomized=randomized, random_state=seed
        ).fit(p[:500], y[:500])
        covs.append(coverage(cp.predict_set(p[500:]), y[500:]))
    assert 1 - alpha - 0.02 <= np.mean(covs) <= 1 - alpha + 0.03


@pytest.mark.parametrize(("method", "randomized"), [("lac", False), ("aps", True)])
def test_mondrian_per_class_coverage_averaged_over_seeds(method, randomized):
    alpha, k, covs = 0.1, 3, []
    for seed in range(20):
        rng = np.random.default_rng(100 + seed)
        p, y = _problem(rng, 3000, k)
        cp = SplitConformalClassifier(
            method=method,
            alpha=alpha,
            class_conditional=True,
            randomized=randomized,
            random_state=seed,
        ).fit(p[:1200], y[:1200])
        assert cp.quantile_.shape == (k,)
        covs.append(coverage_per_class(cp.predict_set(p[1200:]), y[1200:]))
    per_class = np.mean(covs, axis=0)
    assert (per_class >= 1 - alpha - 0.02).all() and (per_class <= 1 - alpha + 0.03).all()


@FAST
@given(
    seed=st.integers(0, 2**32 - 1),
    a1=st.floats(0.05, 0.5),
    a2=st.floats(0.05, 0.5),
    method=st.sampled_from(["lac", "aps", "raps"]),
)
def test_smaller_alpha_gives_supersets(seed, a1, a2, method):
    lo, hi = min(a1, a2), max(a1, a2)
    rng = np.random.default_rng(seed)
    p, y = _problem(rng, 120, 4)
    big = SplitConformalClassifier(method=method, alpha=lo, random_state=1).fit(p[:80], y[:80])
    small = SplitConformalClassifier(method=method, alpha=hi, random_state=1).fit(p[:80], y[:80])
    assert (big.predict_set(p[80:]) >= small.predict_set(p[80:])).all()


@pytest.mark.parametrize("method", ["aps", "raps"])
def test_randomized_sets_reproducible_with_seed(method):
    p, y = _problem(np.random.default_rng(5), 600, 6)

    def fit(seed: int) -> SplitConformalClassifier:
        return SplitConformalClassifier(method=method, random_state=seed).fit(p[:300], y[:300])

    a, b, c = fit(7), fit(7), fit(8)
    assert a.quantile_ == b.quantile_
    np.testing.assert_array_equal(a.predict_set(p[300:]), b.predict_set(p[300:]))
    np.testing.assert_array_equal(a.predict_set(p[300:]), a.predict_set(p[300:]))
    assert not np.array_equal(a.predict_set(p[300:]), c.predict_set(p[300:]))


def test_lac_sets_can_be_empty_and_include_labels_above_threshold():
    rng = np.random.default_rng(1)
    scale = np.where(rng.random(2000) < 0.8, 8.0, 0.0)[:, None]  # sure and unsure items
    p = _softmax(scale * rng.normal(size=(2000, 3)))
    y = _sample_labels(rng, p)
    cp = SplitConformalClassifier(method="lac", alpha=0.3).fit(p[:1000], y[:1000])
    sets = cp.predict_set(p[1000:])
    np.testing.assert_array_equal(sets, 1 - p[1000:] <= cp.quantile_)
    assert (set_sizes(sets) == 0).any()


def test_estimator_contract():
    p, y = _problem(np.random.default_rng(2), 300, 3)
    params = {"method": "raps", "alpha": 0.2, "lam": 0.1, "k_reg": 2, "random_state": 0}
    est = SplitConformalClassifier(**params)
    assert est.get_params()["lam"] == 0.1
    assert est.fit(p, y) is est
    assert est.get_params() == clone(est).get_params()
    assert est.n_classes_ == 3 and est.n_calibration_ == 300
    again = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(again.predict_set(p), est.predict_set(p))
    with pytest.raises(TypeError):
        SplitConformalClassifier("lac")  # type: ignore[misc]


def test_split_error_paths():
    p, y = _problem(np.random.default_rng(3), 200, 3)
    with pytest.raises(NotFittedError, match="SplitConformalClassifier is not fitted"):
        SplitConformalClassifier().predict_set(p)
    with pytest.raises(
        ValidationError,
        match=r"calibration set has 5 items; alpha=0.1 needs at least 9 .*"
        r"pass more calibration items or a larger alpha",
    ):
        SplitConformalClassifier(alpha=0.1).fit(p[:5], y[:5])
    with pytest.raises(ValidationError, match=r"method: got 'apss'.*did you mean 'aps'"):
        SplitConformalClassifier(method="apss").fit(p, y)
    with pytest.raises(ValidationError, match=r"lam: got -1"):
        SplitConformalClassifier(method="raps", lam=-1).fit(p, y)
    with pytest.raises(ValidationError, match=r"k_reg: got 1.5"):
        SplitConformalClassifier(method="raps", k_reg=1.5).fit(p, y)
    with pytest.raises(ValidationError, match=r"randomized: got 'yes'"):
        SplitConformalClassifier(method="aps", randomized="yes").fit(p, y)
    with pytest.raises(ValidationError, match=r"class_conditional: got 1"):
        SplitConformalClassifier(class_conditional=1).fit(p, y)
    with pytest.raises(ValidationError, match=r"labels: has 199 items, expected 200"):
        SplitConformalClassifier().fit(p, y[:-1])
    with pytest.raises(ValidationError, match=r"pred_probs: expected shape"):
        SplitConformalClassifier().fit(p[0], y)
    fitted = SplitConformalClassifier().fit(p, y)
    with pytest.raises(ValidationError, match=r"pred_probs: has 4 columns but there are 3"):
        fitted.predict_set(np.full((2, 4), 0.25))


def test_mondrian_missing_class_is_an_error():
    p, y = _problem(np.random.default_rng(4), 300, 4)
    keep = y != 2
    with pytest.raises(
        ValidationError,
        match=r"labels: class\(es\) \[2\] have no calibration items.*class_conditional=False",
    ):
        SplitConformalClassifier(class_conditional=True).fit(p[keep], y[keep])


def test_mondrian_small_class_warns_and_is_always_included():
    rng = np.random.default_rng(6)
    p, y = _problem(rng, 400, 3)
    rare = np.flatnonzero(y == 1)[:4]
    keep = np.concatenate([np.flatnonzero(y != 1), rare])
    with pytest.warns(RuntimeWarning, match=r"class\(es\) \[1\] have fewer than 9"):
        cp = SplitConformalClassifier(class_conditional=True, alpha=0.1).fit(p[keep], y[keep])
    assert np.isinf(cp.quantile_[1]) and np.isfinite(cp.quantile_[[0, 2]]).all()
    assert cp.predict_set(p)[:, 1].all()


# ---------------------------------------------------------------- cross-conformal (CV+)


def _cv_problem(rng: np.random.Generator, n_cal: int, n_test: int, k: int, n_folds: int):
    """True probabilities plus one slightly perturbed model per fold."""
    z_cal = 2.0 * rng.normal(size=(n_cal, k))
    z_test = 2.0 * rng.normal(size=(n_test, k))
    y_cal = _sample_labels(rng, _softmax(z_cal))
    y_test = _sample_labels(rng, _softmax(z_test))
    folds = rng.permutation(np.arange(n_cal) % n_folds)
    bias = 0.3 * rng.normal(size=(n_folds, k))  # each fold model is off in its own way
    oof = _softmax(z_cal + bias[folds])
    per_fold = np.stack([_softmax(z_test + bias[f]) for f in range(n_folds)])
    return oof, y_cal, folds, per_fold, y_test


@pytest.mark.parametrize(("method", "randomized"), [("lac", False), ("aps", True), ("raps", True)])
def test_cross_conformal_coverage_averaged_over_seeds(method, randomized):
    alpha, covs = 0.1, []
    for seed in range(20):
        oof, y, folds, per_fold, y_test = _cv_problem(np.random.default_rng(seed), 400, 1000, 4, 5)
        cc = CrossConformalClassifier(
            method=method, alpha=alpha, randomized=randomized, random_state=seed
        ).fit(oof, y, folds)
        covs.append(coverage(cc.predict_set(per_fold), y_test))
    assert np.mean(covs) >= 1 - alpha - 0.03


def test_cross_conformal_single_model_matches_split_rule():
    p, y = _problem(np.random.default_rng(9), 1400, 4)
    folds = np.arange(400) % 4
    cc = CrossConformalClassifier(method="lac", alpha=0.1).fit(p[:400], y[:400], folds)
    cp = SplitConformalClassifier(method="lac", alpha=0.1).fit(p[:400], y[:400])
    # with continuous scores and one model, CV+ equals split conformal
    np.testing.assert_array_equal(cc.predict_set(p[400:]), cp.predict_set(p[400:]))
    stacked = np.stack([p[400:]] * 4)
    np.testing.assert_array_equal(cc.predict_set(stacked), cp.predict_set(p[400:]))
    assert cc.n_folds_ == 4 and list(cc.folds_) == [0, 1, 2, 3]


def test_cross_conformal_error_paths():
    p, y = _problem(np.random.default_rng(10), 100, 3)
    folds = np.arange(100) % 5
    with pytest.raises(NotFittedError, match="CrossConformalClassifier is not fitted"):
        CrossConformalClassifier().predict_set(p)
    with pytest.raises(ValidationError, match=r"folds: expected shape \(100,\), got shape"):
        CrossConformalClassifier().fit(p, y, folds[:-1])
    with pytest.raises(ValidationError, match=r"folds: dtype float64 is not integer"):
        CrossConformalClassifier().fit(p, y, folds.astype(float))
    with pytest.raises(ValidationError, match="calibration set has 5 items"):
        CrossConformalClassifier(alpha=0.1).fit(p[:5], y[:5], folds[:5])
    cc = CrossConformalClassifier().fit(p, y, folds)
    with pytest.raises(ValidationError, match=r"pred_probs: expected shape \(n_folds=5"):
        cc.predict_set(np.stack([p] * 3))
    with pytest.raises(ValidationError, match=r"pred_probs\[0\]: has 2 columns"):
        cc.predict_set(np.full((5, 4, 2), 0.5))


# ---------------------------------------------------------------- metrics


def test_metrics():
    sets = np.array([[True, False, False], [True, True, False], [False, False, False]])
    labels = np.array([0, 2, 1])
    assert coverage(sets, labels) == pytest.approx(1 / 3)
    np.testing.assert_array_equal(coverage_per_class(sets, labels), [1.0, 0.0, 0.0])
    np.testing.assert_array_equal(coverage_per_class(sets, [0, 0, 0]), [2 / 3, np.nan, np.nan])
    np.testing.assert_array_equal(set_sizes(sets), [1, 2, 0])
    np.testing.assert_array_equal(set_size_distribution(sets), [1, 1, 1, 0])
    assert singleton_rate(sets) == pytest.approx(1 / 3)
    summary = summarize_sets(sets, labels)
    assert summary["coverage"] == pytest.approx(1 / 3)
    assert summary["empty_rate"] == pytest.approx(1 / 3)
    assert summary["singleton_accuracy"] == 1.0
    assert summary["size_distribution"] == [1, 1, 1, 0]
    with pytest.raises(ValidationError, match=r"sets: expected a boolean array of shape"):
        set_sizes(np.zeros(3, dtype=bool))
    with pytest.raises(ValidationError, match=r"sets: dtype int64 holds values other than 0/1"):
        coverage(np.full((3, 3), 2), labels)
    with pytest.raises(ValidationError, match=r"labels: label 3 at item 0 is outside"):
        coverage(sets, [3, 0, 0])
