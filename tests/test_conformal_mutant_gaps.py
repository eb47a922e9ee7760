"""Conformal pieces against plain computations and exact messages (mutants that survived
a mutmut sample of conformal/)."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from truelabel.conformal import (
    CrossConformalClassifier,
    MultiLabelConformal,
    SplitConformalClassifier,
    conformal_quantile,
    min_calibration_size,
)
from truelabel.conformal._powerset import powerset_prediction_sets, powerset_scores
from truelabel.conformal._quantile import check_calibration_size, quantile_rank
from truelabel.exceptions import ValidationError


@pytest.mark.parametrize("n", [10, 257, 1000])
def test_conformal_quantile_is_the_rank_th_smallest(n):
    rng = np.random.default_rng(n)
    for alpha in (0.05, 0.1, 0.2, 0.5):
        scores = rng.random(n)
        rank = math.ceil((n + 1) * (1 - alpha))
        if rank > n:  # too few items for this alpha: refused
            with pytest.raises(ValidationError, match="calibration set has"):
                conformal_quantile(scores, alpha)
            continue
        assert conformal_quantile(scores, alpha) == np.sort(scores)[rank - 1]


def test_min_calibration_size_is_the_smallest_finite_size():
    for alpha in np.r_[np.linspace(0.011, 0.9, 300), [0.1, 0.05, 0.2, 1 / 3, 0.25]]:
        m = min_calibration_size(float(alpha))
        assert int(quantile_rank(m, alpha)) <= m
        assert m == 1 or int(quantile_rank(m - 1, alpha)) > m - 1


def test_calibration_size_error_names_the_fix():
    with pytest.raises(
        ValidationError,
        match=re.escape(
            "calibration set has 5 items; alpha=0.1 needs at least 9 (ceil(1/alpha - 1)) for a "
            "finite conformal quantile; pass more calibration items or a larger alpha"
        ),
    ):
        check_calibration_size(5, 0.1)


def test_small_class_warning_names_the_fix():
    p = np.array([[0.9, 0.1]] * 30 + [[0.2, 0.8]] * 3)
    y = np.array([0] * 30 + [1] * 3)
    with pytest.warns(RuntimeWarning, match=re.escape("Add calibration items of these classes")):
        SplitConformalClassifier(alpha=0.1, class_conditional=True).fit(p, y)


def test_cross_conformal_names_pred_probs_in_errors():
    with pytest.raises(ValidationError, match=r"^pred_probs"):
        CrossConformalClassifier().fit(np.full((6, 2), 0.7), np.zeros(6, int), np.arange(6) % 2)


def test_multilabel_label_matrix_error_names_the_only_bad_value():
    p = np.full((12, 2), 0.5)
    y = np.zeros((12, 2), dtype=int)
    y[3, 1] = 7
    with pytest.raises(ValidationError, match="holds the value 7"):
        MultiLabelConformal(alpha=0.2).fit(p, y)


def test_p_values_outside_fdr_mode_names_the_fix():
    rng = np.random.default_rng(0)
    p = rng.random((40, 2))
    y = (rng.random((40, 2)) < p).astype(int)
    ml = MultiLabelConformal(alpha=0.2, mode="fwer").fit(p, y)
    with pytest.raises(ValidationError, match=re.escape("fit MultiLabelConformal(mode='fdr')")):
        ml.p_values(p)


def test_powerset_scores_stay_finite_at_certain_probabilities():
    p = np.array([[1.0, 0.0], [0.3, 1.0]])
    y = np.array([[0, 1], [1, 0]])
    s = powerset_scores(p, y)
    assert np.isfinite(s).all() and (s > 20).all()


def test_powerset_truncated_flags_are_booleans():
    rng = np.random.default_rng(0)
    out = powerset_prediction_sets(rng.random((4, 3)), 5.0)
    assert out.truncated.dtype == bool
