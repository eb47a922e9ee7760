"""Multi-label conformal: FWER / FDR label states and label-powerset sets."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from truelabel.conformal import (
    MultiLabelConformal,
    PowersetConformal,
    multilabel_coverage,
    powerset_prediction_sets,
    powerset_scores,
)
from truelabel.conformal._powerset import _count_bounds, _count_within
from truelabel.exceptions import NotFittedError, ValidationError


def _problem(rng: np.random.Generator, n: int, k: int, a: float = 0.3, b: float = 0.8):
    """Independent per-label probabilities; labels drawn from them (a calibrated model)."""
    p = rng.beta(a, b, size=(n, k))
    return p, (rng.random((n, k)) < p).astype(np.int8)


# ---------------------------------------------------------------- FWER / FDR


def test_fwer_joint_coverage_averaged_over_seeds():
    alpha, covs = 0.1, []
    for seed in range(25):
        p, y = _problem(np.random.default_rng(seed), 2000, 8)
        mlc = MultiLabelConformal(alpha=alpha, mode="fwer").fit(p[:500], y[:500])
        pred = mlc.predict(p[500:])
        assert pred.dtype == np.int8 and set(np.unique(pred)) <= {-1, 0, 1}
        covs.append(multilabel_coverage(pred, y[500:]))
    # two-sided: at least 1 - alpha, and not much more (a quantile of 1 would cover all)
    assert 1 - alpha - 0.02 <= np.mean(covs) <= 1 - alpha + 0.02


def test_fwer_quantile_is_the_conformal_rank_of_the_worst_label():
    """Naive loop: q = the ceil((n + 1)(1 - alpha))-th smallest max_k (1 - p(true state))."""
    import math

    p, y = _problem(np.random.default_rng(4), 40, 3)
    mlc = MultiLabelConformal(alpha=0.2).fit(p, y)
    worst = [max(1 - p[i, j] if y[i, j] else p[i, j] for j in range(3)) for i in range(40)]
    assert mlc.quantile_ == sorted(worst)[math.ceil(41 * 0.8) - 1]  # the 33rd of 40


def test_fwer_states_follow_the_threshold():
    p, y = _problem(np.random.default_rng(1), 600, 5)
    mlc = MultiLabelConformal(alpha=0.2).fit(p[:300], y[:300])
    states = mlc.predict_state_sets(p[300:])
    assert states.shape == (300, 5, 2)
    np.testing.assert_array_equal(states[..., 0], p[300:] <= mlc.quantile_)
    np.testing.assert_array_equal(states[..., 1], 1 - p[300:] <= mlc.quantile_)
    pred = mlc.predict(p[300:])
    np.testing.assert_array_equal(pred == 1, states[..., 1] & ~states[..., 0])
    np.testing.assert_array_equal(pred == 0, states[..., 0] & ~states[..., 1])


def test_fdr_per_label_false_discovery_rate_averaged_over_seeds():
    alpha, fdp_present, fdp_absent, n_present = 0.1, [], [], 0
    for seed in range(25):
        p, y = _problem(np.random.default_rng(seed), 1000, 6)
        mlc = MultiLabelConformal(alpha=alpha, mode="fdr").fit(p[:500], y[:500])
        pred, truth = mlc.predict(p[500:]), y[500:]
        for value, share in ((1, fdp_present), (0, fdp_absent)):
            declared = (pred == value).sum(axis=0)
            wrong = ((pred == value) & (truth != value)).sum(axis=0)
            share.extend(wrong / np.maximum(declared, 1))
        n_present += int((pred == 1).sum())
    assert n_present > 0  # the procedure does certify labels
    assert np.mean(fdp_present) <= alpha + 0.02
    assert np.mean(fdp_absent) <= alpha + 0.02


def test_fdr_p_values_are_conformal_ranks():
    p = np.array([[0.1, 0.9], [0.5, 0.5], [0.9, 0.2], [0.3, 0.7]])
    y = np.array([[0, 1], [0, 0], [1, 0], [1, 1]])
    mlc = MultiLabelConformal(alpha=0.2, mode="fdr").fit(p, y)
    pv = mlc.p_values(np.array([[0.6, 0.8]]))
    # label 0: negatives {0.1, 0.5} -> none >= 0.6 -> (1 + 0) / 3; positives {0.9, 0.3}
    # -> one <= 0.6 -> (1 + 1) / 3
    np.testing.assert_allclose(pv[0, 0], [1 / 3, 2 / 3])
    np.testing.assert_allclose(pv[0, 1], [1 / 3, 2 / 3])
    assert np.isnan(mlc.quantile_)


def test_multilabel_error_paths():
    p, y = _problem(np.random.default_rng(2), 50, 4)
    with pytest.raises(NotFittedError, match="MultiLabelConformal is not fitted"):
        MultiLabelConformal().predict(p)
    with pytest.raises(ValidationError, match=r"mode: got 'fdrr'.*did you mean 'fdr'"):
        MultiLabelConformal(mode="fdrr").fit(p, y)
    with pytest.raises(ValidationError, match=r"alpha: got 1.2"):
        MultiLabelConformal(alpha=1.2).fit(p, y)
    with pytest.raises(ValidationError, match=r"labels: expected shape \(50, 4\)"):
        MultiLabelConformal().fit(p, y[:, :3])
    with pytest.raises(ValidationError, match=r"labels: holds the value 2"):
        MultiLabelConformal().fit(p, y * 2)
    with pytest.raises(ValidationError, match="calibration set has 5 items; alpha=0.1"):
        MultiLabelConformal(alpha=0.1).fit(p[:5], y[:5])
    with pytest.raises(ValidationError, match=r"pred_probs: value .* at row 0 is outside \[0, 1\]"):
        MultiLabelConformal().fit(p + 1, y)
    fitted = MultiLabelConformal().fit(p, y)
    with pytest.raises(ValidationError, match=r"pred_probs: has 3 columns but there are 4"):
        fitted.predict(p[:, :3])
    with pytest.raises(ValidationError, match=r"mode: p_values needs mode='fdr'"):
        fitted.p_values(p)
    with pytest.raises(ValidationError, match=r"predictions: shape \(50, 4\) does not match"):
        multilabel_coverage(fitted.predict(p), y[:, :2])


# ---------------------------------------------------------------- powerset


def _brute_force(p_row: np.ndarray, threshold: float):
    k = p_row.shape[0]
    vectors = np.array(list(itertools.product([0, 1], repeat=k)))
    scores = powerset_scores(np.repeat(p_row[None], len(vectors), axis=0), vectors)
    return vectors, scores, scores <= threshold


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    k=st.integers(2, 10),
    level=st.floats(0.0, 1.0),
    max_sets=st.sampled_from([1, 3, 10, 5000]),
)
def test_powerset_enumeration_equals_brute_force(seed, k, level, max_sets):
    rng = np.random.default_rng(seed)
    p_row = rng.uniform(0.01, 0.99, size=k)
    vectors, scores, _ = _brute_force(p_row, np.inf)
    ordered = np.sort(scores)
    i = int(level * (len(ordered) - 1))
    gap = ordered[i + 1] - ordered[i] if i + 1 < len(ordered) else 1.0
    if gap < 1e-6:  # a threshold between two near-equal scores is ill-posed in floats
        return
    threshold = (ordered[i] + ordered[i + 1]) / 2 if i + 1 < len(ordered) else ordered[i] + 1
    inside = scores <= threshold
    res = powerset_prediction_sets(p_row[None], threshold, max_sets=max_sets)
    expected = {tuple(np.flatnonzero(v).tolist()) for v in vectors[inside]}
    assert res.counts[0] == res.count_upper[0] == len(expected)
    assert bool(res.count_exact[0])
    listed = res.sets[0]
    assert len(listed) == min(len(expected), max_sets)
    assert bool(res.truncated[0]) == (len(expected) > max_sets)
    assert set(listed) <= expected and len(set(listed)) == len(listed)
    # listed vectors are the most probable ones, most probable first
    by_vector = {tuple(np.flatnonzero(v).tolist()): s for v, s in zip(vectors, scores)}
    listed_scores = [by_vector[v] for v in listed]
    assert listed_scores == sorted(listed_scores)
    np.testing.assert_allclose(listed_scores, ordered[: len(listed)], atol=1e-9)


def test_powerset_threshold_below_best_vector_gives_empty_set():
    res = powerset_prediction_sets(np.array([[0.9, 0.2]]), threshold=0.0)
    assert res.sets == [[]] and res.counts == [0] and not res.truncated[0]


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), k=st.integers(1, 14), frac=st.floats(0, 1))
def test_subset_counting_and_bounds_match_brute_force(seed, k, frac):
    rng = np.random.default_rng(seed)
    costs = rng.exponential(size=k)
    budget = frac * costs.sum() + 1e-9
    sums = np.array([sum(c) for r in range(k + 1) for c in itertools.combinations(costs, r)])
    exact = int((sums <= budget).sum())
    assert _count_within(np.sort(costs)[::-1], budget, 10**7) == (exact, True)
    lower, upper = _count_bounds(costs, budget)
    assert lower <= exact <= upper


def test_powerset_k300_is_bounded():
    # speed lives in benchmarks/, not in a timed unit test: here only the bounded search
    rng = np.random.default_rng(0)
    p, y = _problem(rng, 520, 300, a=0.2, b=2.0)
    pc = PowersetConformal(alpha=0.1).fit(p[:500], y[:500])
    res = pc.predict_sets(p[500:], max_sets=1000)
    assert len(res) == 20 and all(len(s) <= 1000 for s in res.sets)
    assert all(lo <= hi for lo, hi in zip(res.counts, res.count_upper))
    assert res.truncated.all() and min(res.counts) > 1000
    # the listed vectors really are inside the set
    for i in (0, 7):
        listed = np.zeros((len(res.sets[i]), 300), dtype=np.int8)
        for row, vec in enumerate(res.sets[i]):
            listed[row, list(vec)] = 1
        assert (powerset_scores(np.repeat(p[500 + i][None], len(listed), 0), listed)).max() <= (
            pc.threshold_ + 1e-6
        )


def test_powerset_coverage_averaged_over_seeds():
    alpha, covs = 0.1, []
    for seed in range(25):
        p, y = _problem(np.random.default_rng(seed), 1500, 12)
        pc = PowersetConformal(alpha=alpha).fit(p[:500], y[:500])
        covs.append(pc.contains(p[500:], y[500:]).mean())
    assert 1 - alpha - 0.02 <= np.mean(covs) <= 1 - alpha + 0.03


def test_powerset_error_paths():
    p, y = _problem(np.random.default_rng(3), 40, 5)
    with pytest.raises(NotFittedError, match="PowersetConformal is not fitted"):
        PowersetConformal().predict_sets(p)
    with pytest.raises(ValidationError, match="calibration set has 5 items; alpha=0.1"):
        PowersetConformal(alpha=0.1).fit(p[:5], y[:5])
    with pytest.raises(ValidationError, match=r"alpha: got 0"):
        PowersetConformal(alpha=0).fit(p, y)
    with pytest.raises(ValidationError, match=r"max_sets: got 0, expected an integer >= 1"):
        powerset_prediction_sets(p, 1.0, max_sets=0)
    with pytest.raises(ValidationError, match=r"threshold: got nan"):
        powerset_prediction_sets(p, float("nan"))
    with pytest.raises(ValidationError, match=r"labels: expected shape \(40, 5\)"):
        powerset_scores(p, y[:10])
    fitted = PowersetConformal().fit(p, y)
    with pytest.raises(ValidationError, match=r"pred_probs: has 4 columns but there are 5"):
        fitted.predict_sets(p[:, :4])
