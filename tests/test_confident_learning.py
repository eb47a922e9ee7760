from __future__ import annotations

import numpy as np
import pytest

from truelabel import (
    ValidationError,
    compute_confident_joint,
    estimate_noise_matrices,
    find_label_issues,
    get_label_quality_scores,
)
from truelabel.detect import FILTER_METHODS, QUALITY_METHODS


def test_confident_joint_counts_by_hand():
    p = np.array([[0.9, 0.1], [0.8, 0.2], [0.2, 0.8], [0.7, 0.3]])
    labels = np.array([0, 0, 1, 1])
    # thresholds: t0 = 0.85, t1 = 0.55; item 3 (given 1) is confident in neither? p0=.7<.85,
    # p1=.3<.55 -> not counted; item 2 confident in 1; items 0 confident in 0; item 1 in none
    cj = compute_confident_joint(labels, p, calibrate=False)
    assert cj.tolist() == [[1, 0], [0, 1]]
    cal = compute_confident_joint(labels, p)
    assert cal.sum(axis=1).tolist() == [2, 2]


def test_calibrated_joint_rows_match_label_counts(noisy_problem):
    labels, p, _, _ = noisy_problem
    cj = compute_confident_joint(labels, p)
    assert (cj.sum(axis=1) == np.bincount(labels)).all()


def test_noise_matrices_are_stochastic_and_close_to_truth(noisy_problem):
    labels, p, flipped, _ = noisy_problem
    est = estimate_noise_matrices(labels, p)
    np.testing.assert_allclose(est.noise_matrix.sum(axis=0), 1.0, atol=1e-9)
    np.testing.assert_allclose(est.inverse_noise_matrix.sum(axis=0), 1.0, atol=1e-9)
    np.testing.assert_allclose(est.joint.sum(), 1.0)
    assert abs(est.noise_rate - flipped.mean()) < 0.04
    np.testing.assert_allclose(est.py, 0.2, atol=0.03)


@pytest.mark.parametrize("filter_by", FILTER_METHODS)
def test_every_filter_finds_injected_errors(noisy_problem, filter_by):
    labels, p, flipped, _ = noisy_problem
    mask = find_label_issues(labels, p, filter_by=filter_by)
    assert mask.dtype == bool and mask.shape == labels.shape
    precision = (mask & flipped).sum() / max(mask.sum(), 1)
    recall = (mask & flipped).sum() / flipped.sum()
    assert precision > 0.6, precision
    assert recall > 0.5, recall


def test_both_is_intersection(noisy_problem):
    labels, p, _, _ = noisy_problem
    both = find_label_issues(labels, p, filter_by="both")
    assert not (both & ~find_label_issues(labels, p, filter_by="prune_by_class")).any()
    assert not (both & ~find_label_issues(labels, p, filter_by="prune_by_noise_rate")).any()


def test_ranked_output_is_worst_first(noisy_problem):
    labels, p, _, _ = noisy_problem
    ranked = find_label_issues(labels, p, return_ranked=True)
    scores = get_label_quality_scores(labels, p)  # both default to noise_aware
    assert np.all(np.diff(scores[ranked]) >= 0)
    assert set(ranked.tolist()) == set(np.flatnonzero(find_label_issues(labels, p)).tolist())


def test_float32_and_float64_agree(noisy_problem):
    labels, p, _, _ = noisy_problem
    m64 = find_label_issues(labels, p)
    m32 = find_label_issues(labels, p.astype(np.float32))
    assert (m64 != m32).sum() <= 2


def test_chunked_topn_matches_unchunked(noisy_problem, monkeypatch):
    import truelabel.detect._filter as f

    labels, p, _, _ = noisy_problem
    full = find_label_issues(labels, p, filter_by="prune_by_noise_rate")
    default = find_label_issues(labels, p)
    monkeypatch.setattr(f, "CHUNK_ROWS", 37)
    monkeypatch.setattr(f, "_BLOCK_ELEMENTS", 37)
    assert (find_label_issues(labels, p, filter_by="prune_by_noise_rate") == full).all()
    assert (find_label_issues(labels, p) == default).all()
    assert (
        find_label_issues(labels, p, filter_by="both")
        == find_label_issues(labels, p, filter_by="prune_by_class") & full
    ).all()


def _reference_prune_by_noise_rate(labels, p, counts):
    """Textbook version: rank every column of every class in full."""
    mask = np.zeros(labels.shape[0], dtype=bool)
    for s in range(p.shape[1]):
        rows = np.flatnonzero(labels == s)
        for y in np.flatnonzero(counts[s]):
            margin = p[rows, y] - p[rows, s]
            mask[rows[np.argsort(-margin, kind="stable")[: counts[s, y]]]] = True
    return mask & (p.argmax(axis=1) != labels)


@pytest.mark.parametrize("strength", [0.5, 2.0, 6.0])
def test_prune_by_noise_rate_equals_full_ranking(strength):
    import truelabel.detect._filter as f
    from truelabel.detect._confident_learning import _compute_stats

    rng = np.random.default_rng(int(strength * 10))
    n, k = 4000, 7
    true = rng.integers(0, k, n)
    labels = np.where(rng.random(n) < 0.2, rng.integers(0, k, n), true)
    z = rng.normal(size=(n, k)) + strength * np.eye(k)[true]
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    counts = f._prune_counts(_compute_stats(labels, p), 1, 1.0)
    expected = _reference_prune_by_noise_rate(labels, p, counts)
    got = find_label_issues(labels, p, filter_by="prune_by_noise_rate")
    assert (got == expected).all()


def test_min_examples_per_class_keeps_items():
    labels = np.array([0, 0, 1, 1, 1])
    p = np.array([[0.1, 0.9]] * 2 + [[0.9, 0.1]] * 3)
    mask = find_label_issues(labels, p, min_examples_per_class=1)
    assert (~mask[labels == 0]).sum() >= 1 and (~mask[labels == 1]).sum() >= 1


@pytest.mark.parametrize("method", QUALITY_METHODS)
def test_quality_scores_in_unit_interval_and_rank_errors_low(noisy_problem, method):
    labels, p, flipped, _ = noisy_problem
    s = get_label_quality_scores(labels, p, method=method)
    assert s.min() >= 0 and s.max() <= 1
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(flipped, -s) > 0.9


def test_quality_scores_hand_values():
    p = np.array([[0.6, 0.3, 0.1]])
    assert get_label_quality_scores([1], p, method="self_confidence")[0] == pytest.approx(0.3)
    assert get_label_quality_scores([1], p, method="normalized_margin")[0] == pytest.approx(0.35)


def test_bad_filter_name_suggests_closest(noisy_problem):
    labels, p, _, _ = noisy_problem
    with pytest.raises(ValidationError, match=r"filter_by: .*did you mean 'prune_by_class'"):
        find_label_issues(labels, p, filter_by="prune_by_clas")


def test_bad_quality_method(noisy_problem):
    labels, p, _, _ = noisy_problem
    with pytest.raises(ValidationError, match="method: got 'margin'"):
        get_label_quality_scores(labels, p, method="margin")


def test_frac_noise_out_of_range(noisy_problem):
    labels, p, _, _ = noisy_problem
    with pytest.raises(ValidationError, match=r"frac_noise: got 0, expected a value in \(0, 1\]"):
        find_label_issues(labels, p, frac_noise=0)


def test_noise_aware_score_is_the_posterior_of_the_given_label():
    from truelabel.detect._confident_learning import _compute_stats
    from truelabel.detect._rank import _score_noise_matrix

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 500)
    p = rng.dirichlet(np.ones(3), size=500)
    T = _score_noise_matrix(_compute_stats(labels, p))
    np.testing.assert_allclose(T.sum(axis=0), 1.0)
    s = get_label_quality_scores(labels, p)
    i = 7
    expected = T[labels[i], labels[i]] * p[i, labels[i]] / (T[labels[i]] @ p[i])
    assert s[i] == pytest.approx(expected)


def test_noise_aware_beats_self_confidence_on_structured_noise():
    """Pairwise noise (k -> k+1) on digits: the noise-aware score expects that confusion."""
    from sklearn.datasets import load_digits
    from sklearn.metrics import average_precision_score

    from truelabel import out_of_fold_pred_probs
    from truelabel.datasets import make_noisy_labels

    X, y = load_digits(return_X_y=True)
    noisy, flipped = make_noisy_labels(y, noise_rate=0.2, noise_type="pairwise", random_state=0)
    p, _ = out_of_fold_pred_probs(X, noisy, random_state=0)
    ap = {
        m: average_precision_score(flipped, -get_label_quality_scores(noisy, p, method=m))
        for m in ("noise_aware", "self_confidence")
    }
    assert ap["noise_aware"] > ap["self_confidence"] + 0.03
    f1 = {}
    for m in ("noise_aware", "prune_by_noise_rate"):
        mask = find_label_issues(noisy, p, filter_by=m)
        f1[m] = 2 * (mask & flipped).sum() / (mask.sum() + flipped.sum())
    assert f1["noise_aware"] > f1["prune_by_noise_rate"]


def test_default_score_keeps_up_with_self_confidence_on_real_errors(shared_datasets):
    """labelerrors_mnist: the estimated noise looks uniform (D < 1), where the full-matrix
    posterior lost 0.049 AUPRC to self-confidence; the default now ranks as self-confidence."""
    from sklearn.metrics import average_precision_score

    from truelabel.detect._confident_learning import _compute_stats
    from truelabel.detect._rank import _structure_dispersion

    d = shared_datasets / "labelerrors_mnist"
    p = np.load(d / "pred_probs.npy")
    labels = np.load(d / "labels.npy").astype(np.int64)
    truth = np.zeros(labels.shape[0], dtype=bool)
    truth[np.load(d / "label_error_indices.npy")] = True
    assert _structure_dispersion(_compute_stats(labels, p).confident_joint) < 1.0
    ap = {
        m: average_precision_score(truth, -get_label_quality_scores(labels, p, method=m))
        for m in ("noise_aware", "self_confidence")
    }
    assert ap["noise_aware"] >= ap["self_confidence"] - 0.001, ap
