from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.naive_bayes import GaussianNB

from truelabel import TruelabelWarning, ValidationError, out_of_fold_pred_probs
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
    with pytest.warns(TruelabelWarning, match="1 of 4 classes have fewer labelled items"):
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


def test_oof_uses_the_given_estimator_value_by_value():
    """A prior-only model predicts, for every item, the class shares of its fold's training
    part: an exact oracle that the default model (or an ignored estimator) cannot meet."""
    from sklearn.dummy import DummyClassifier

    X, y = load_iris(return_X_y=True)
    y = np.where(np.arange(150) % 7 == 0, (y + 1) % 3, y)  # unequal class shares per fold
    p, folds = out_of_fold_pred_probs(
        X, y, estimator=DummyClassifier(strategy="prior"), cv=4, random_state=1
    )
    for i in range(150):
        train = y[folds != folds[i]]
        np.testing.assert_allclose(p[i], np.bincount(train, minlength=3) / train.size)


def test_oof_small_classes_warning_names_classes_counts_and_minimum():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(4), [30, 30, 2, 1])
    X = rng.normal(size=(63, 3)) + y[:, None]
    with pytest.warns(TruelabelWarning) as record:
        out_of_fold_pred_probs(X, y, cv=3, random_state=0, class_names=["ant", "bee", "cat", "dog"])
    assert len(record) == 1
    assert str(record[0].message).startswith(
        "2 of 4 classes have fewer labelled items than the 3 folds ('dog': 1, 'cat': 2): a "
        "fold's model sees at most n - 1 items of such a class (none when it has a single "
        "item)"
    )
    assert "Give every class at least 3 labelled items" in str(record[0].message)
    many = np.repeat(np.arange(15), 2)
    with pytest.warns(
        TruelabelWarning, match=r"15 of 15 classes .* the 3 folds \(0: 2, 1: 2, .*9: 2 and 5 more\)"
    ):
        out_of_fold_pred_probs(rng.normal(size=(30, 2)), many, cv=3, random_state=0)
    out_of_fold_pred_probs(rng.normal(size=(30, 2)), many, cv=2, random_state=0)  # 2 >= 2 folds


def test_oof_translates_estimator_warnings_once_and_drops_convergence():
    import warnings

    from sklearn.linear_model import LogisticRegression
    from sklearn.naive_bayes import GaussianNB

    class Noisy(GaussianNB):
        def fit(self, X, y):
            warnings.warn("watch out", RuntimeWarning, stacklevel=2)
            return super().fit(X, y)

    X, y = load_iris(return_X_y=True)
    with pytest.warns(TruelabelWarning) as record:
        out_of_fold_pred_probs(X, y, estimator=Noisy(), cv=3, random_state=0)
    assert [str(r.message) for r in record] == [
        "the estimator warned while fitting the out-of-fold models (3 time(s) over 3 folds): "
        "RuntimeWarning: watch out"
    ]
    # max_iter=1 raises ConvergenceWarning in every fold: dropped on purpose (warnings are
    # errors in this test run, so any leak fails here)
    out_of_fold_pred_probs(X, y, estimator=LogisticRegression(max_iter=1), cv=3, random_state=0)


def test_oof_checks_estimator_and_class_names():
    X, y = load_iris(return_X_y=True)
    with pytest.raises(ValidationError, match="estimator: str has no fit or predict_proba"):
        out_of_fold_pred_probs(X, y, estimator="logistic")
    from sklearn.svm import SVC

    with pytest.raises(ValidationError, match="estimator: SVC has no predict_proba"):
        out_of_fold_pred_probs(X, y, estimator=SVC())
    with pytest.raises(ValidationError, match="class_names: 2 names for 3 classes"):
        out_of_fold_pred_probs(X, y, class_names=["a", "b"])
