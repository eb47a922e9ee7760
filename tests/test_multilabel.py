from __future__ import annotations

import numpy as np
import pytest

from truelabel import ValidationError, find_multilabel_issues, get_multilabel_quality_scores
from truelabel.datasets import make_noisy_multilabels
from truelabel.detect import multilabel_matrix


@pytest.fixture
def ml_problem():
    rng = np.random.default_rng(0)
    n, k = 4000, 6
    truth = (rng.random((n, k)) < 0.3).astype(int)
    noisy, flipped = make_noisy_multilabels(truth, noise_rate=0.02, random_state=1)
    z = rng.normal(size=(n, k)) + np.where(truth == 1, 2.5, -2.5)
    return noisy, 1 / (1 + np.exp(-z)), flipped


def test_lists_and_matrix_agree(ml_problem):
    noisy, p, _ = ml_problem
    lists = [list(np.flatnonzero(r)) for r in noisy]
    np.testing.assert_array_equal(multilabel_matrix(lists, 6), noisy)
    np.testing.assert_array_equal(
        find_multilabel_issues(lists, p), find_multilabel_issues(noisy, p)
    )


def test_finds_flipped_entries(ml_problem):
    noisy, p, flipped = ml_problem
    per_class = find_multilabel_issues(noisy, p, per_class=True)
    assert per_class.shape == noisy.shape
    tp = (per_class & flipped).sum()
    assert tp / per_class.sum() > 0.8 and tp / flipped.sum() > 0.8
    items = find_multilabel_issues(noisy, p)
    np.testing.assert_array_equal(items, per_class.any(axis=1))


def test_quality_scores_rank_flipped_items_low(ml_problem):
    from sklearn.metrics import roc_auc_score

    noisy, p, flipped = ml_problem
    s = get_multilabel_quality_scores(noisy, p)
    assert s.min() >= 0 and s.max() <= 1
    assert roc_auc_score(flipped.any(axis=1), -s) > 0.9
    assert get_multilabel_quality_scores(noisy, p, per_class=True).shape == noisy.shape


def test_multilabel_errors():
    p = np.full((3, 2), 0.5)
    with pytest.raises(ValidationError, match="labels: class 5 is outside"):
        find_multilabel_issues([[0], [5], []], p)
    with pytest.raises(ValidationError, match="labels: item 1 is 'b', not a list"):
        find_multilabel_issues([[0], "b", []], p)
    with pytest.raises(ValidationError, match="labels: a 2-D labels matrix must hold only 0 and 1"):
        find_multilabel_issues(np.array([[0, 2], [1, 0], [0, 0]]), p)
    with pytest.raises(ValidationError, match="temperature: got 0"):
        get_multilabel_quality_scores([[0], [1], []], p, temperature=0)
