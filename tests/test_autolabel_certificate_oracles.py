"""Certificates, bounds and messages of the certified auto-labeler against plain
computations (mutants that survived a mutmut sample of autolabel/)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from truelabel.autolabel import CertifiedAutoLabeler
from truelabel.autolabel._bounds import pool_error_pvalue, pool_error_upper
from truelabel.autolabel._search import certificate, search_pool
from truelabel.exceptions import NotFittedError, ValidationError


def _naive_pool_upper(e, n, m, delta):
    """Largest pool error count not rejected at delta, over m, by a plain scan."""
    if m == 0:
        return 0.0
    k = 0
    while k <= m and float(pool_error_pvalue(e, n, m, k)) > delta:
        k += 1
    return min(1.0, max(k - 1, 0) / m)


@pytest.mark.parametrize(
    ("e", "n", "m"), [(0, 5, 3), (0, 40, 10), (2, 40, 10), (1, 200, 50), (9, 30, 7)]
)
def test_pool_error_upper_equals_a_plain_scan(e, n, m):
    assert pool_error_upper(e, n, m, 0.05) == _naive_pool_upper(e, n, m, 0.05)


def test_pool_error_upper_edges():
    assert pool_error_upper(0, 10, 0, 0.05) == 0.0  # nothing accepted, nothing wrong
    assert pool_error_upper(0, 2, 4, 0.05) == 1.0  # two calibration items prove nothing


def test_certificate_fields_when_nothing_is_certified():
    grid_n = np.zeros(1001)
    assert certificate(np.zeros(0), np.zeros(0), 0.02, 0.05) == certificate(
        grid_n, grid_n, 0.02, 0.05
    )
    empty = certificate(grid_n, grid_n, 0.02, 0.05)
    assert (empty.threshold, empty.bound, empty.n_calibration) == (None, None, 0)
    assert (empty.n_accepted_calibration, empty.errors_accepted_calibration) == (0, 0)
    assert (empty.n_more_needed, empty.message) == (None, "no calibration items")
    n = np.full(1001, 30.0)  # 30 items, all at every threshold, none wrong: too few at 2%
    few = certificate(n, np.zeros(1001), 0.02, 0.05, estimate_more=False)
    assert (few.threshold, few.bound, few.n_calibration) == (None, None, 30)
    assert (few.n_accepted_calibration, few.errors_accepted_calibration) == (0, 0)
    assert few.n_more_needed is None  # not estimated
    assert few.message.startswith("nothing certified: the model errs too often")


def test_search_pool_bound_is_the_pool_upper_bound_at_the_found_level():
    n = np.linspace(2000, 100, 1001).round()
    e = np.zeros(1001)
    m = np.linspace(500, 20, 1001).round()
    found = search_pool(n, e, m, 0.02, 0.05)
    assert found is not None
    j = found.index
    assert found.bound == pool_error_upper(int(e[j]), int(n[j]), int(m[j]), found.level)
    assert 0.0 <= found.bound <= 0.02


def _two_class_problem():
    rng = np.random.default_rng(0)
    n = 3000
    y = rng.integers(0, 2, n)
    conf = rng.uniform(0.9, 1.0, n)
    wrong = rng.random(n) < 0.01
    pred = np.where(wrong, 1 - y, y)
    p = np.empty((n, 2))
    p[np.arange(n), pred] = conf
    p[np.arange(n), 1 - pred] = 1 - conf
    return p, y


def test_class_conditional_bound_is_the_worst_certified_class():
    p, y = _two_class_problem()
    lab = CertifiedAutoLabeler(max_error=0.05, class_conditional=True).fit(p, y)
    bounds = [c.bound for c in lab.certificates_.values() if c.threshold is not None]
    assert len(bounds) == 2
    assert lab.bound_ == max(bounds)


def test_decisions_columns_and_reason_text():
    p, y = _two_class_problem()
    lab = CertifiedAutoLabeler(max_error=0.05, delta=0.1, classes=["no", "yes"]).fit(p, y)
    res = lab.decide(p[:50])
    d = res.decisions
    assert list(d.columns) == ["label", "confidence", "accepted", "reason", "threshold"]
    assert d["label"].tolist() == [["no", "yes"][k] for k in p[:50].argmax(axis=1)]
    np.testing.assert_array_equal(d["confidence"].to_numpy(), p[:50].max(axis=1))
    want = (
        "accepted: confidence at or above the certified threshold (error rate <= 5.0% at "
        "90% confidence)"
    )
    assert set(d.loc[d["accepted"], "reason"]) == {want}


def test_parameter_errors_name_the_fix():
    with pytest.raises(ValidationError, match=re.escape("expected a value in (0, 1); e.g. 0.02")):
        CertifiedAutoLabeler(max_error=1.5).fit(np.full((4, 2), 0.5), np.array([0, 1, 0, 1]))
    with pytest.raises(ValidationError, match=re.escape("expected a value in [0, 1); e.g. 0.01")):
        CertifiedAutoLabeler(calibration_label_error=1.0).fit(
            np.full((4, 2), 0.5), np.array([0, 1, 0, 1])
        )


def test_decide_before_fit_names_the_fix():
    with pytest.raises(
        NotFittedError,
        match=re.escape(
            "CertifiedAutoLabeler is not fitted; call fit(pred_probs, labels) with the "
            "calibration set first"
        ),
    ):
        CertifiedAutoLabeler().decide(np.full((3, 2), 0.5))
