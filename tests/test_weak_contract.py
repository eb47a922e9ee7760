"""Estimator contract over every weak-supervision estimator (like sklearn's check_estimator)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.base import clone

from truelabel.exceptions import NotFittedError
from truelabel.weak import (
    ComplementaryLabelClassifier,
    LabelModel,
    LabelProportionClassifier,
    PartialLabelClassifier,
)

RNG = np.random.default_rng(0)
Y = RNG.integers(0, 3, 90)
X = RNG.normal(size=(90, 3)) + 2.5 * np.eye(3)[Y]
VOTES = np.where(
    RNG.random((90, 4)) < 0.7,
    np.where(RNG.random((90, 4)) < 0.8, Y[:, None], (Y[:, None] + 1) % 3),
    -1,
)
CANDS = (RNG.random((90, 3)) < 0.4) | (np.eye(3)[Y] == 1)
BAGS = np.repeat(np.arange(9), 10)
PROPS = np.stack([np.bincount(Y[BAGS == b], minlength=3) / 10 for b in range(9)])

CASES = {
    "LabelModel": (LabelModel(n_init=2), (VOTES,), VOTES),
    "PartialLabelClassifier": (PartialLabelClassifier(max_iter=3), (X, CANDS), X),
    "ComplementaryLabelClassifier": (ComplementaryLabelClassifier(max_iter=3), (X, (Y + 1) % 3), X),
    "LabelProportionClassifier": (LabelProportionClassifier(max_iter=3), (X, BAGS, PROPS), X),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_estimator_contract(name):
    est, fit_args, pred_in = CASES[name]
    est = clone(est)
    params = est.get_params()
    with pytest.raises(NotFittedError):
        est.predict_proba(pred_in)
    assert est.fit(*fit_args) is est
    assert est.get_params() == params  # settings stored untouched
    proba = est.predict_proba(pred_in)
    assert proba.shape == (len(pred_in), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(est.predict(pred_in), est.classes_[proba.argmax(axis=1)])
    again = clone(est).fit(*fit_args)  # reproducible
    np.testing.assert_array_equal(again.predict_proba(pred_in), proba)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(est)).predict_proba(pred_in), proba)
    with pytest.raises(ValueError, match="Invalid parameter 'n_iterr'"):
        est.set_params(n_iterr=3)
