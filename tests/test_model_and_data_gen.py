from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.naive_bayes import GaussianNB

from truelabel import ValidationError, out_of_fold_pred_probs
from truelabel.datasets import make_noisy_labels


def test_oof_shapes_folds_and_rows_sum_to_one():
    X, y = load_iris(return_X_y=True)
    p, folds = out_of_fold_pred_probs(X, y, cv=5, random_state=0)
    assert p.shape == (150, 3)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    assert set(np.bincount(folds).tolist()) == {30}
    assert (p.argmax(axis=1) == y).mean() > 0.85


def test_oof_is_reproducible_and_accepts_any_estimator():
    X, y = load_iris(return_X_y=True)
    a, _ = out_of_fold_pred_probs(X, y, estimator=GaussianNB(), random_state=3)
    b, _ = out_of_fold_pred_probs(X, y, estimator=GaussianNB(), random_state=3)
    np.testing.assert_array_equal(a, b)


def test_oof_handles_classes_smaller_than_folds():
    X, y = load_iris(return_X_y=True)
    y = y.copy()
    y[:2] = 3  # class 3 has two items, fewer than 5 folds
    p, folds = out_of_fold_pred_probs(X, y, cv=5, random_state=0)
    assert p.shape == (150, 4)
    assert len(set(folds[:2].tolist())) == 2  # spread over folds
    np.testing.assert_allclose(p.sum(axis=1), 1.0)


def test_oof_errors():
    X, y = load_iris(return_X_y=True)
    with pytest.raises(ValidationError, match="cv: got 1"):
        out_of_fold_pred_probs(X, y, cv=1)
    with pytest.raises(ValidationError, match="labels: contain a single class"):
        out_of_fold_pred_probs(X, np.zeros(150, dtype=int))
    with pytest.raises(ValidationError, match="labels: has 10 items, expected 150"):
        out_of_fold_pred_probs(X, y[:10])


@pytest.mark.parametrize("noise_type", ["uniform", "pairwise", "class_conditional"])
def test_make_noisy_labels_exact_count_and_seeded(noise_type):
    y = np.arange(1000) % 7
    a, fa = make_noisy_labels(y, noise_rate=0.2, noise_type=noise_type, random_state=5)
    b, fb = make_noisy_labels(y, noise_rate=0.2, noise_type=noise_type, random_state=5)
    np.testing.assert_array_equal(a, b)
    assert fa.sum() == 200
    assert ((a != y) == fa).all()  # every flip changes the label
    if noise_type == "pairwise":
        assert ((a[fa] - y[fa]) % 7 == 1).all()


def test_make_noisy_labels_errors():
    with pytest.raises(ValidationError, match=r"noise_rate: got 1.5, expected a value in \[0, 1\)"):
        make_noisy_labels([0, 1], noise_rate=1.5)
    with pytest.raises(ValidationError, match="noise_type: .*did you mean 'uniform'"):
        make_noisy_labels([0, 1], noise_rate=0.1, noise_type="unifrom")
