"""Out-of-fold probabilities run one task per fold on any backend, equal to a serial loop."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.linear_model import LogisticRegression

from truelabel.backend import LocalBackend
from truelabel.exceptions import TruelabelWarning
from truelabel.model import out_of_fold_pred_probs
from truelabel.model._oof import _fold_ids

from ._backends import PickleBackend, ProcessBackend


def _data(
    n: int = 240, k: int = 4, seed: int = 0, rare: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    X = rng.normal(size=(n, 6)) + 1.5 * np.eye(k, 6)[y]
    if rare:
        y[-2:] = k  # a rare class with fewer items than folds
    return X, y


def _serial(X: np.ndarray, y: np.ndarray, est: object, cv: int, seed: int) -> np.ndarray:
    """The oracle: one fold after the other in a plain loop."""
    folds = _fold_ids(y, cv, seed)
    out = np.zeros((len(y), y.max() + 1))
    for f in range(cv):
        test = folds == f
        model = clone(est).fit(X[~test], y[~test])
        out[np.ix_(np.flatnonzero(test), model.classes_)] = model.predict_proba(X[test])
    return out / out.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("name", ["local1", "local2", "local3", "pickle", "local", None])
def test_every_backend_gives_the_serial_result(name: str | None) -> None:
    backends = {"local1": LocalBackend(1), "local2": LocalBackend(2), "local3": LocalBackend(3)}
    backend = PickleBackend() if name == "pickle" else backends.get(str(name), name)
    X, y = _data()
    est = LogisticRegression(C=0.5, max_iter=500)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TruelabelWarning)  # the rare class
        got, folds = out_of_fold_pred_probs(
            X, y, estimator=est, cv=5, random_state=3, backend=backend
        )
    np.testing.assert_array_equal(got, _serial(X, y, est, 5, 3))
    np.testing.assert_array_equal(folds, _fold_ids(y, 5, 3))
    assert got[-2:, -1].max() < 0.5  # the rare class is unknown to its own fold's model
    if isinstance(backend, PickleBackend):
        assert len(backend.shared_bytes) == 1  # the folds ran on the backend given


def test_a_fold_per_task_in_other_processes_also_relays_warnings() -> None:
    X, y = _data(n=120, rare=False)
    est = _Warns()
    with pytest.warns(
        TruelabelWarning, match=r"\(5 time\(s\) over 5 folds\): UserWarning: fold fit"
    ):
        got, _ = out_of_fold_pred_probs(
            X, y, estimator=est, cv=5, random_state=0, backend=ProcessBackend()
        )
    with pytest.warns(
        TruelabelWarning, match=r"\(5 time\(s\) over 5 folds\): UserWarning: fold fit"
    ):
        ref, _ = out_of_fold_pred_probs(
            X, y, estimator=est, cv=5, random_state=0, backend=LocalBackend(2)
        )
    np.testing.assert_array_equal(got, ref)


class _Warns(ClassifierMixin, BaseEstimator):
    """A nearest-centroid classifier that warns once per fit."""

    def fit(self, X: np.ndarray, y: np.ndarray) -> _Warns:
        warnings.warn("fold fit", UserWarning, stacklevel=1)
        self.classes_ = np.unique(y)
        self.centres_ = np.stack([X[y == c].mean(axis=0) for c in self.classes_])
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        d = -((X[:, None, :] - self.centres_[None]) ** 2).sum(-1)
        e = np.exp(d - d.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
