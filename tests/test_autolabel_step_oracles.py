"""Exact oracles for the certify step's extras: prediction sets, the JSON summary and the
"how many calibration items per class" message (mutants that survived mutmut on autolabel/)."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest

from truelabel.autolabel import CertifiedAutoLabeler
from truelabel.autolabel._step import certify_pool
from truelabel.exceptions import ValidationError


def _naive_lac_sets(cal, y, pool, alpha):
    """Split-conformal LAC sets by hand: scores 1 - p_y, the ceil((n+1)(1-alpha))-th
    smallest as the quantile (every class when that rank exceeds n), the top class when a
    set is empty."""
    n = len(y)
    scores = sorted(1.0 - cal[i, y[i]] for i in range(n))
    rank = math.ceil((n + 1) * (1 - alpha))
    q = scores[rank - 1] if rank <= n else math.inf
    out = []
    for row in pool:
        members = [k for k in range(len(row)) if 1.0 - row[k] <= q]
        out.append(members or [int(np.argmax(row))])
    return out


def _cal_and_pool():
    cal = np.array(
        [
            [0.9, 0.05, 0.05],
            [0.7, 0.2, 0.1],
            [0.2, 0.6, 0.2],
            [0.1, 0.8, 0.1],
            [0.3, 0.3, 0.4],
            [0.05, 0.15, 0.8],
            [0.5, 0.4, 0.1],
            [0.2, 0.2, 0.6],
        ]
    )
    y = np.array([0, 0, 1, 1, 2, 2, 1, 2])
    pool = np.array(
        [
            [0.95, 0.03, 0.02],
            [0.45, 0.45, 0.1],
            [0.34, 0.33, 0.33],
            [0.1, 0.3, 0.6],
            [0.6, 0.38, 0.02],
        ]
    )
    return cal, y, pool


@pytest.mark.parametrize("alpha", [0.2, 0.35, 0.5])
def test_prediction_sets_match_a_hand_lac(alpha):
    cal, y, pool = _cal_and_pool()
    names = ["ant", "bee", "cat"]
    out = certify_pool(pool, cal, y, classes=names, set_alpha=alpha, max_error=0.3)
    want = ["|".join(names[k] for k in members) for members in _naive_lac_sets(cal, y, pool, alpha)]
    assert out.decisions["prediction_set"].tolist() == want
    # the sets really differ between rows (so a constant answer cannot pass)
    assert len(set(want)) > 1


def test_prediction_sets_fall_back_to_every_class_with_too_few_items():
    cal, y, pool = _cal_and_pool()
    # 8 items at alpha 0.05: rank ceil(9 * 0.95) = 9 > 8, so no quantile exists
    out = certify_pool(pool, cal, y, classes=["a", "b", "c"], set_alpha=0.05, max_error=0.3)
    assert out.decisions["prediction_set"].tolist() == ["a|b|c"] * len(pool)


def test_empty_lac_set_shows_the_top_class():
    cal, y, pool = _cal_and_pool()
    # at alpha 0.5 the quantile is the 5th smallest score, 0.3 (1 - 0.7): a pool row whose
    # largest probability is below 0.7 has an empty LAC set
    assert _naive_lac_sets(cal, y, pool, 0.5)[2] == [0]
    out = certify_pool(pool, cal, y, classes=["a", "b", "c"], set_alpha=0.5, max_error=0.3)
    assert out.decisions["prediction_set"].iloc[2] == "a"


def test_summary_rate_thresholds_are_json_with_none_for_uncertified_classes():
    # 400 items of class 0 predicted 0 at 0.99; 40 of class 1 predicted 1 at 0.8 (too few to
    # certify class 1 at 5%: zero errors need 59); 10 of class 1 predicted 0 at 0.6
    pred = np.r_[np.zeros(400, dtype=int), np.ones(40, dtype=int), np.zeros(10, dtype=int)]
    y = np.r_[np.zeros(400, dtype=int), np.ones(50, dtype=int)]
    conf = np.r_[np.full(400, 0.99), np.full(40, 0.8), np.full(10, 0.6)]
    n = len(y)
    p = np.empty((n, 2))
    p[np.arange(n), pred] = conf
    p[np.arange(n), 1 - pred] = 1 - conf
    out = certify_pool(p, p, y, class_conditional=True, max_error=0.05, guarantee="rate")
    thr = out.summary["calibration_rate_threshold"]
    assert isinstance(thr, list) and len(thr) == 2
    assert thr[0] is not None and isinstance(thr[0], float)
    assert thr[1] is None  # not certified: None in JSON, not NaN
    json.dumps(out.summary, allow_nan=False)


def _zero_error_need(eps, level):
    """Smallest n with (1 - eps)^n <= level, by a plain loop."""
    n = 1
    while (1 - eps) ** n > level:
        n += 1
    return n


@pytest.mark.parametrize(("simultaneous", "label_error"), [(False, 0.0), (True, 0.0), (False, 0.5)])
def test_per_class_message_names_the_exact_need(simultaneous, label_error):
    # 3 classes with 20 clean, confident items each: no class can certify at 2%
    p = np.full((60, 3), 0.005)
    y = np.repeat(np.arange(3), 20)
    p[np.arange(60), y] = 0.99
    lab = CertifiedAutoLabeler(
        max_error=0.02,
        delta=0.05,
        class_conditional=True,
        simultaneous=simultaneous,
        calibration_label_error=label_error,
    ).fit(p, y)
    res = lab.decide(p)
    assert res.n_accepted == 0
    eps = 0.02 * (1 - label_error)
    need = _zero_error_need(eps, 0.05 / (3 if simultaneous else 1))
    assert f"each class needs at least {need} calibration items" in res.message
    assert ("delta is shared by the classes" in res.message) == simultaneous


def _clean_problem(n=400, k=3, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    p = rng.dirichlet(np.full(k, 0.3), size=n) * 0.05
    p[np.arange(n), y] += 0.95
    return p / p.sum(axis=1, keepdims=True), y


def test_certify_pool_summary_is_exactly_the_result():
    cal, y = _clean_problem()
    pool, _ = _clean_problem(n=50, seed=1)
    out = certify_pool(
        pool,
        cal,
        y,
        max_error=0.05,
        delta=0.1,
        calibration_label_error=0.01,
        classes=["a", "b", "c"],
        index=[f"r{i}" for i in range(50)],
    )
    res, lab = out.result, out.labeler
    assert res.n_accepted > 0 and lab.max_error == 0.05 and lab.classes == ["a", "b", "c"]
    assert out.summary == {
        "certified": res.certified,
        "n_pool": 50,
        "n_accepted": res.n_accepted,
        "coverage": res.coverage,
        "threshold": res.threshold,
        "certified_error_bound": res.bound,
        "guarantee": "rate",
        "message": res.message,
        "n_more_needed": res.n_more_needed,
        "other_guarantee": "pool",
        "other_guarantee_accepted": res.other_guarantee_accepted,
        "n_calibration": 400,
        "max_error": 0.05,
        "confidence": 0.9,
        "class_conditional": False,
        "calibration_label_error": 0.01,
        "calibration_rate_threshold": lab.threshold_,
        "calibration_message": lab.message,
    }
    assert out.decisions.index.tolist() == [f"r{i}" for i in range(50)]
    assert out.decisions["accepted"].sum() == res.n_accepted


def test_certify_pool_defaults_are_the_documented_ones():
    cal, y = _clean_problem()
    pool, _ = _clean_problem(n=50, seed=1)
    plain = certify_pool(pool, cal, y)
    explicit = certify_pool(
        pool,
        cal,
        y,
        max_error=0.02,
        delta=0.05,
        class_conditional=False,
        calibration_label_error=0.0,
        set_alpha=0.1,
        guarantee="rate",
    )
    assert plain.summary == explicit.summary
    assert plain.decisions.equals(explicit.decisions)
    assert plain.decisions["label"].tolist() == [str(c) for c in pool.argmax(axis=1)]


def test_certify_pool_class_conditional_thresholds_by_name():
    cal, y = _clean_problem(n=900)
    pool, _ = _clean_problem(n=60, seed=2)
    out = certify_pool(
        pool, cal, y, class_conditional=True, max_error=0.05, classes=["x", "y", "z"]
    )
    assert set(out.summary["threshold"]) <= {"x", "y", "z"}
    assert out.summary["threshold"] == {
        ["x", "y", "z"][k]: v for k, v in out.result.threshold.items()
    }
    assert out.summary["class_conditional"] is True


def test_certify_pool_refuses_pools_from_another_model():
    cal, y = _clean_problem()
    with pytest.raises(
        ValidationError,
        match=re.escape(
            "pred_probs: has 4 classes but calibration_pred_probs has 3; "
            "use probabilities from the same model for both"
        ),
    ):
        certify_pool(np.full((5, 4), 0.25), cal, y)
    with pytest.raises(ValidationError, match="calibration_pred_probs"):
        certify_pool(np.full((5, 3), 1 / 3), np.full((5, 3), 0.5), y[:5])
    with pytest.raises(ValidationError, match="calibration_labels"):
        certify_pool(np.full((5, 3), 1 / 3), cal[:5], np.array([0, 1, 2, 3, 0]))
