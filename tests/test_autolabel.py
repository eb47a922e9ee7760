from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from truelabel import CertifiedAutoLabeler, NotFittedError, ValidationError
from truelabel.autolabel import clopper_pearson_upper, min_items_to_certify


def _calibrated(n, rng, low=0.5):
    """Binary model whose confidence c is exactly P(correct | c); c ~ U(low, 1)."""
    conf = rng.uniform(low, 1.0, n)
    pred = rng.integers(0, 2, n)
    p = np.where(pred[:, None] == 0, np.c_[conf, 1 - conf], np.c_[1 - conf, conf])
    correct = rng.random(n) < conf
    y = np.where(correct, pred, 1 - pred)
    return p, y


def _risk_above(t, low=0.5):
    """Population error among items with confidence >= t (c ~ U(low, 1), error 1 - c)."""
    t = max(t, low)
    return (1.0 - t) / 2.0


def test_certificate_holds_on_many_seeds():
    """The population error at the certified threshold exceeds max_error in <= delta of draws."""
    max_error, delta, failures, runs = 0.05, 0.1, 0, 300
    for seed in range(runs):
        rng = np.random.default_rng(seed)
        p, y = _calibrated(800, rng)
        lab = CertifiedAutoLabeler(max_error=max_error, delta=delta).fit(p, y)
        if lab.threshold_ is not None and _risk_above(lab.threshold_) > max_error:
            failures += 1
    assert failures / runs <= delta + 0.03


def _pool(n, rng, low=0.5):
    """Pool drawn like the calibration set, with its true labels."""
    return _calibrated(n, rng, low)


def test_realised_pool_error_guarantee_holds_on_many_seeds():
    """Error among the accepted items of *this* pool exceeds max_error in <= delta of draws."""
    max_error, delta, failures, runs = 0.05, 0.1, 0, 300
    for seed in range(runs):
        rng = np.random.default_rng(10_000 + seed)
        p, y = _calibrated(800, rng)
        pool, pool_y = _pool(300, rng)
        out = CertifiedAutoLabeler(max_error=max_error, delta=delta).fit(p, y).decide(pool)
        acc = out["accepted"].to_numpy()
        if acc.any() and (out["label"].to_numpy()[acc] != pool_y[acc]).mean() > max_error:
            failures += 1
    assert failures / runs <= delta + 0.03


def test_rate_guarantee_uses_the_fitted_threshold():
    rng = np.random.default_rng(0)
    p, y = _calibrated(5000, rng)
    lab = CertifiedAutoLabeler(max_error=0.05, guarantee="rate").fit(p, y)
    pool, _ = _pool(300, np.random.default_rng(1))
    out = lab.decide(pool)
    assert lab.pool_threshold_ == lab.threshold_
    assert (out["accepted"] == (pool.max(axis=1) >= lab.threshold_)).all()
    with pytest.raises(ValidationError, match="guarantee: got 'both'"):
        CertifiedAutoLabeler(guarantee="both").fit(p, y)


def test_pool_pvalue_is_valid_under_exchangeability():
    from truelabel.autolabel import pool_error_pvalue

    rng = np.random.default_rng(0)
    n, m, rate, pv = 200, 100, 0.1, []
    for _ in range(2000):
        wrong = rng.random(n + m) < rate
        e, true_pool = wrong[:n].sum(), wrong[n:].sum()
        pv.append(float(pool_error_pvalue(e, n, m, true_pool)))
    pv = np.asarray(pv)
    for a in (0.05, 0.1, 0.2):
        assert (pv <= a).mean() <= a + 0.015


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), max_error=st.sampled_from([0.01, 0.02, 0.05, 0.1]))
def test_certified_bound_covers_population_risk(seed, max_error):
    rng = np.random.default_rng(seed)
    p, y = _calibrated(3000, rng)
    lab = CertifiedAutoLabeler(max_error=max_error, delta=0.05).fit(p, y)
    if lab.threshold_ is not None:
        assert lab.bound_ <= max_error + 1e-9 or lab.bound_ >= _risk_above(lab.threshold_)
        # the certified threshold is never looser than needed by the truth by much
        assert _risk_above(lab.threshold_) <= max_error * 1.6


def test_decide_accepts_by_threshold_and_reports():
    rng = np.random.default_rng(0)
    p, y = _calibrated(5000, rng)
    lab = CertifiedAutoLabeler(max_error=0.05, classes=["neg", "pos"]).fit(p, y)
    pool, _ = _calibrated(1000, np.random.default_rng(1))
    out = lab.decide(pool)
    conf = pool.max(axis=1)
    assert lab.pool_threshold_ is not None
    assert (out["accepted"] == (conf >= lab.pool_threshold_)).all()
    assert out.attrs["bound"] == lab.pool_bound_ <= 0.05
    assert set(out["label"]) <= {"neg", "pos"}
    assert out.attrs["coverage"] == pytest.approx(out["accepted"].mean())
    assert out.loc[out["accepted"], "reason"].str.startswith("accepted").all()
    assert out.loc[~out["accepted"], "reason"].str.startswith("review").all()


def test_class_conditional_protects_a_weak_class():
    rng = np.random.default_rng(0)
    n = 6000
    pred = rng.integers(0, 2, n)
    conf = rng.uniform(0.9, 1.0, n)
    # class 1 predictions are wrong 20% of the time whatever their confidence
    err = np.where(pred == 1, 0.2, 1.0 - conf)
    correct = rng.random(n) > err
    y = np.where(correct, pred, 1 - pred)
    p = np.where(pred[:, None] == 0, np.c_[conf, 1 - conf], np.c_[1 - conf, conf])
    cc = CertifiedAutoLabeler(max_error=0.1, class_conditional=True).fit(p, y)
    assert not np.isnan(cc.threshold_[0]) and np.isnan(cc.threshold_[1])
    out = cc.decide(p)
    assert not out.loc[p.argmax(axis=1) == 1, "accepted"].any()
    assert "could not be certified" in out.loc[p.argmax(axis=1) == 1, "reason"].iloc[0]
    assert "certified 1 of 2 predicted classes; at 10.00% each class needs at least" in cc.message


def test_too_small_calibration_says_how_many_more():
    rng = np.random.default_rng(0)
    p, y = _calibrated(60, rng, low=0.97)
    lab = CertifiedAutoLabeler(max_error=0.02).fit(p, y)
    assert not lab.certified_ and lab.threshold_ is None
    assert "about" in lab.message and "more reviewed items" in lab.message
    assert lab.certificates_["all"].n_more_needed > 0
    out = lab.decide(p)
    assert not out["accepted"].any()
    assert out["reason"].str.contains("too few").all()


def test_hopeless_model_says_so():
    p = np.full((500, 2), 0.5)
    p[:, 0] = 0.6
    p[:, 1] = 0.4
    y = np.r_[np.zeros(250, int), np.ones(250, int)]
    lab = CertifiedAutoLabeler(max_error=0.02).fit(p, y)
    assert lab.certificates_["all"].n_more_needed is None
    assert "improve the model" in lab.message


def test_label_noise_correction_is_more_conservative():
    rng = np.random.default_rng(3)
    p, y = _calibrated(20000, rng)
    plain = CertifiedAutoLabeler(max_error=0.05).fit(p, y)
    noisy = CertifiedAutoLabeler(max_error=0.05, calibration_label_error=0.02).fit(p, y)
    assert noisy.threshold_ >= plain.threshold_


def test_bounds_helpers():
    assert clopper_pearson_upper(0, 149, 0.05) == pytest.approx(0.0199, abs=2e-4)
    assert min_items_to_certify(0.0, 0.02, 0.05) == 149
    assert min_items_to_certify(0.03, 0.02, 0.05) is None


def test_errors():
    p = np.array([[0.9, 0.1], [0.2, 0.8]])
    with pytest.raises(ValidationError, match=r"max_error: got 0, expected a value in \(0, 1\)"):
        CertifiedAutoLabeler(max_error=0).fit(p, [0, 1])
    with pytest.raises(ValidationError, match=r"delta: got 1.5"):
        CertifiedAutoLabeler(delta=1.5).fit(p, [0, 1])
    with pytest.raises(ValidationError, match=r"calibration_label_error: got 1"):
        CertifiedAutoLabeler(calibration_label_error=1).fit(p, [0, 1])
    with pytest.raises(ValidationError, match="labels_cal: has 3 items, expected 2"):
        CertifiedAutoLabeler().fit(p, [0, 1, 1])
    with pytest.raises(NotFittedError, match="call fit"):
        CertifiedAutoLabeler().decide(p)
    lab = CertifiedAutoLabeler().fit(p, [0, 1])
    with pytest.raises(ValidationError, match="pred_probs: has 3 columns but there are 2 classes"):
        lab.decide(np.full((2, 3), 1 / 3))


def test_simultaneous_class_guarantee_needs_more_data():
    rng = np.random.default_rng(0)
    k, n = 10, 1500
    pred = rng.integers(0, k, n)
    conf = rng.uniform(0.97, 1.0, n)
    correct = rng.random(n) < conf
    y = np.where(correct, pred, (pred + 1) % k)
    p = np.full((n, k), 0.0)
    p[np.arange(n), pred] = conf
    p[np.arange(n), (pred + 1) % k] = 1 - conf
    per_class = CertifiedAutoLabeler(max_error=0.05, class_conditional=True).fit(p, y)
    both = CertifiedAutoLabeler(max_error=0.05, class_conditional=True, simultaneous=True)
    both.fit(p, y)
    assert (~np.isnan(per_class.threshold_)).sum() > (~np.isnan(both.threshold_)).sum()
    assert "delta is shared" in both.message
