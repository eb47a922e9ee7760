from __future__ import annotations

import numpy as np
import pytest

from truelabel import Audit, ValidationError, calibrate_pred_probs
from truelabel.detect import CALIBRATION_METHODS


@pytest.fixture
def biased():
    rng = np.random.default_rng(0)
    n, k = 2000, 3
    y = rng.integers(0, k, n)
    z = 1.5 * np.eye(k)[y] + rng.normal(size=(n, k))
    z[:, 0] += 1.0  # the model over-predicts class 0
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    return y, p


def _nll(y, p):
    return -np.mean(np.log(p[np.arange(len(y)), y]))


@pytest.mark.parametrize("method", CALIBRATION_METHODS)
def test_calibration_keeps_rows_stochastic_and_lowers_log_loss(biased, method):
    y, p = biased
    q = calibrate_pred_probs(y, p, method=method)
    np.testing.assert_allclose(q.sum(axis=1), 1.0)
    assert _nll(y, q) <= _nll(y, p) + 1e-9


def test_prior_calibration_removes_class_bias(biased):
    y, p = biased
    q = calibrate_pred_probs(y, p, method="prior")
    assert abs(q.mean(axis=0)[0] - np.mean(y == 0)) < abs(p.mean(axis=0)[0] - np.mean(y == 0))


def test_temperature_sharpens_underconfident():
    p = np.array([[0.6, 0.4], [0.6, 0.4], [0.4, 0.6], [0.4, 0.6]])
    q = calibrate_pred_probs([0, 0, 1, 1], p)
    assert q[0, 0] > 0.9


def test_calibration_errors(biased):
    y, p = biased
    with pytest.raises(ValidationError, match="method: .*did you mean 'prior'"):
        calibrate_pred_probs(y, p, method="priors")
    with pytest.raises(ValidationError, match=r"issue_types\['label'\]\['calibrate'\]"):
        Audit({"label": {"calibrate": "platt"}}).run(labels=y, pred_probs=p)


def test_audit_records_calibration(biased):
    y, p = biased
    res = Audit({"label": {"calibrate": "temperature"}}).run(labels=y, pred_probs=p)
    assert res.info["label"]["calibration"] == "temperature"
