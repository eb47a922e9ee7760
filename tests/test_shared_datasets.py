"""Checks on the real label-error benchmarks (skipped where ../shared is absent)."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score

from truelabel import find_label_issues, get_label_quality_scores


def _load(root, name):
    d = root / name
    labels = np.load(d / "labels.npy")
    pred_probs = np.load(d / "pred_probs.npy")
    errors = np.zeros(labels.shape[0], dtype=bool)
    errors[np.load(d / "label_error_indices.npy")] = True
    return labels, pred_probs, errors


def test_20news_confirmed_errors_rank_first(shared_datasets):
    labels, p, errors = _load(shared_datasets, "labelerrors_20news")
    scores = get_label_quality_scores(labels, p, method="normalized_margin")
    # anchors/RESULTS.md: cleanlab 2.9 normalized_margin AUPRC 0.898 on these inputs
    assert average_precision_score(errors, -scores) >= 0.89
    top = np.argsort(scores, kind="stable")[: int(0.02 * labels.shape[0])]
    assert errors[top].sum() == errors.sum()  # every confirmed error within the worst 2%
    mask = find_label_issues(labels, p)
    assert (mask & errors).sum() / mask.sum() > 0.5


def test_mnist_flags_the_validated_errors(shared_datasets):
    labels, p, errors = _load(shared_datasets, "labelerrors_mnist")
    mask = find_label_issues(labels, p)
    # cleanlab 2.9 flags 15 items on these inputs, 7 of them validated errors
    assert 10 <= mask.sum() <= 25
    assert (mask & errors).sum() >= 7
