"""Defaults, fix texts and the calibrated joint of detect/ (mutants that survived a mutmut
sample of detect/)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from truelabel import ValidationError, compute_confident_joint, find_label_issues
from truelabel.detect import find_overlapping_classes, get_detector, multilabel_matrix


def _one_class_all_wrong():
    """Class 2 has 3 items, all predicted as class 0: min_examples_per_class decides how
    many of them may be flagged."""
    rng = np.random.default_rng(0)
    n = 90
    labels = np.r_[np.repeat([0, 1], 42), [2, 2, 2], [0, 1, 0]]
    p = rng.dirichlet(np.ones(3), size=n) * 0.1
    p[np.arange(n), labels] += 0.9
    p[84:87] = [0.9, 0.05, 0.05]
    return labels, p / p.sum(axis=1, keepdims=True)


def test_find_label_issues_default_keeps_one_example_per_class():
    labels, p = _one_class_all_wrong()
    for filter_by in ("noise_aware", "prune_by_class", "low_self_confidence"):
        default = find_label_issues(labels, p, filter_by=filter_by)
        np.testing.assert_array_equal(
            default, find_label_issues(labels, p, filter_by=filter_by, min_examples_per_class=1)
        )
    assert find_label_issues(labels, p, filter_by="low_self_confidence")[84:87].sum() == 2


def test_find_label_issues_min_examples_error_names_the_fix():
    labels, p = _one_class_all_wrong()
    with pytest.raises(
        ValidationError, match=re.escape("min_examples_per_class: got -1; pass a value >= 0")
    ):
        find_label_issues(labels, p, min_examples_per_class=-1)


def test_near_duplicate_threshold_error_names_the_fix():
    from truelabel.detect import AuditContext

    X = np.random.default_rng(0).normal(size=(20, 3))
    ctx = AuditContext(labels=None, pred_probs=None, features=X, n_classes=2, n_neighbors=3)
    with pytest.raises(ValidationError, match=re.escape("pass e.g. 0.13")):
        get_detector("near_duplicate", metric="euclidean", threshold=-1.0).detect(ctx)


def test_multilabel_matrix_column_mismatch_is_named():
    with pytest.raises(
        ValidationError,
        match=re.escape("labels: has 2 columns but pred_probs has 3; pass one column per class"),
    ):
        multilabel_matrix(np.array([[0, 1], [1, 0]]), n_classes=3)


def test_overlapping_classes_use_the_calibrated_joint():
    labels, p = _one_class_all_wrong()
    cj = compute_confident_joint(labels, p, calibrate=True).astype(float)
    joint = cj / cj.sum()
    want = find_overlapping_classes(joint=joint, n_items=len(labels))
    got = find_overlapping_classes(labels, p)
    np.testing.assert_allclose(got["joint_probability"], want["joint_probability"])
    assert (
        got[["class_a", "class_b"]].values.tolist() == want[["class_a", "class_b"]].values.tolist()
    )
    raw = compute_confident_joint(labels, p, calibrate=False)
    assert not np.allclose(raw / raw.sum(), joint)  # calibration matters on this data


def test_prune_by_noise_rate_with_an_unused_last_class():
    """A class nobody was given (the last one) leaves the per-class slices intact."""
    import truelabel.detect._filter as f
    from truelabel.detect._confident_learning import _compute_stats

    from .test_confident_learning import _reference_prune_by_noise_rate

    rng = np.random.default_rng(3)
    n, k = 600, 4
    true = rng.integers(0, k, n)
    labels = np.where(rng.random(n) < 0.2, rng.integers(0, k - 1, n), np.minimum(true, k - 2))
    z = rng.normal(size=(n, k)) + 2.0 * np.eye(k)[true]
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    assert labels.max() == k - 2
    counts = f._prune_counts(_compute_stats(labels, p), 1, 1.0)
    want = _reference_prune_by_noise_rate(labels, p, counts)
    got = find_label_issues(labels, p, filter_by="prune_by_noise_rate")
    np.testing.assert_array_equal(got, want)
    assert got.any()


def test_prune_counts_spread_the_kept_minimum_over_the_only_off_diagonal_cell():
    """All 3 items given class 2 are truly class 0: keeping one of them
    (min_examples_per_class=1) takes 1 from the single non-zero off-diagonal count."""
    from types import SimpleNamespace

    import truelabel.detect._filter as f

    stats = SimpleNamespace(calibrated=np.array([[40.0, 0, 0], [0, 40.0, 0], [3.0, 0, 0]]))
    assert f._prune_counts(stats, 1, 1.0)[2].tolist() == [2, 0, 0]
    assert f._prune_counts(stats, 0, 1.0)[2].tolist() == [3, 0, 0]
    assert f._prune_counts(stats, 3, 1.0)[2].tolist() == [0, 0, 0]


def test_raw_features_errors_name_the_fix():
    import scipy.sparse as sp

    from truelabel.detect._original_space import check_raw_features

    raw = sp.csr_matrix(np.eye(4))
    with pytest.raises(
        ValidationError,
        match=re.escape(
            "raw_features: were given without features; pass the features the kNN graph is "
            "built on too (e.g. the LSA vectors)"
        ),
    ):
        check_raw_features(raw, 4, has_features=False)
    bad = raw.copy()
    bad.data[0] = np.nan
    with pytest.raises(
        ValidationError, match=re.escape("contain NaN or inf; clean those rows first")
    ):
        check_raw_features(bad, 4, has_features=True)


def test_joint_errors_name_the_fix():
    with pytest.raises(
        ValidationError,
        match=re.escape("pass the (K, K) joint, e.g. truelabel.estimate_joint(labels, pred_probs)"),
    ):
        find_overlapping_classes(joint=np.ones((2, 3)) / 6, n_items=10)
    with pytest.raises(
        ValidationError,
        match=re.escape("pass P(given, true), not counts: divide the counts by their total"),
    ):
        find_overlapping_classes(joint=np.array([[5.0, 1.0], [2.0, 4.0]]), n_items=12)


def test_cosine_near_duplicates_report_their_settings():
    from truelabel.detect import AuditContext

    X = np.random.default_rng(0).normal(size=(30, 4))
    X[1] = X[0]
    X[2] = X[0] * 1.0001
    X = X / np.linalg.norm(X, axis=1, keepdims=True)
    ctx = AuditContext(labels=None, pred_probs=None, features=X, n_classes=2, n_neighbors=3)
    res = get_detector("near_duplicate", threshold=0.99).detect(ctx)
    assert res.info == {"metric": "cosine", "threshold": 0.99, "n_sets": 1}
