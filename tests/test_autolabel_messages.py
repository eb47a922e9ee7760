"""Exact wording of the certification messages and an oracle for "how many more reviewed
items would certify" (mutants that survived mutmut on autolabel/)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from truelabel.autolabel import CertifiedAutoLabeler
from truelabel.autolabel._result import accepted_message, nothing_message
from truelabel.autolabel._search import Found, more_items_needed, why
from truelabel.exceptions import NotFittedError


def test_nothing_message_exact_for_both_guarantees():
    assert nothing_message("rate", 40, None, "too few calibration items", 0) == (
        "nothing certified: auto-labeled 0 of 40 items; too few calibration items; "
        "guarantee='pool' would not accept any either"
    )
    assert nothing_message("rate", 40, 0.987, "R", 7) == (
        "nothing certified: auto-labeled 0 of 40 items; the certified threshold 0.987 is "
        "above every pool item's confidence; R; guarantee='pool' would auto-label 7 items "
        "now (it bounds this pool's realised error)"
    )
    assert nothing_message("pool", 5, None, "R", 3) == (
        "nothing certified: auto-labeled 0 of 5 items; R; guarantee='rate' would auto-label "
        "3 items now (it bounds the error rate, not this pool's realised error)"
    )


def test_accepted_message_exact_for_both_guarantees_and_per_class():
    assert accepted_message("rate", 0.05, 30, 40, {"all": 0.9123}, 0.0175) == (
        "certified: auto-labeled 30 of 40 items (75.0%) with confidence >= 0.912; "
        "error rate <= 1.75% at 95% confidence"
    )
    assert accepted_message("pool", 0.1, 1, 8, {"all": 0.5}, 0.02) == (
        "certified: auto-labeled 1 of 8 items (12.5%) with confidence >= 0.5; "
        "error among these items <= 2.00% at 90% confidence"
    )
    per_class = {0: 0.8, 1: None, 2: 0.95}
    assert accepted_message("rate", 0.05, 12, 20, per_class, 0.03) == (
        "certified: auto-labeled 12 of 20 items (60.0%) in 2 of 3 predicted classes; "
        "error rate <= 3.00% per class at 95% confidence"
    )


def test_unfitted_attribute_names_the_fix():
    lab = CertifiedAutoLabeler()
    with pytest.raises(
        NotFittedError,
        match=re.escape(
            "CertifiedAutoLabeler.threshold_ is set by fit; call fit(pred_probs, labels) "
            "with the calibration set first"
        ),
    ):
        _ = lab.threshold_
    with pytest.raises(AttributeError, match="no attribute 'nonsense'"):
        _ = lab.nonsense


def _needs(target: int, index: int = 1):
    """A search that certifies grid index ``index`` once the scaled calibration set holds
    at least ``target`` items."""

    def search(n: np.ndarray, e: np.ndarray) -> Found | None:
        return Found(index, 0.05, 0.01) if n[-1] >= target else None

    return search


@pytest.mark.parametrize("target", [150, 537, 2_000, 123_457])
def test_more_items_needed_is_the_smallest_size_within_two_percent(target):
    n = np.array([10.0, 40.0, 100.0])  # cumulative counts: 100 calibration items
    e = np.array([0.0, 1.0, 3.0])
    m = np.array([0, 4, 9])
    got = more_items_needed(n, e, m, _needs(target))
    assert got is not None
    # the exact answer is target - 100; the bisection stops within 2% above it
    assert target - 100 <= got <= target - 100 + max(1, int(0.02 * target) + 1)


def test_more_items_needed_requires_a_pool_item_at_the_certified_threshold():
    n = np.array([10.0, 40.0, 100.0])
    e = np.zeros(3)
    assert more_items_needed(n, e, np.array([0, 1, 5]), _needs(300, index=1)) is not None
    # no pool item reaches the certified threshold: more items never help
    assert more_items_needed(n, e, np.array([0, 0, 5]), _needs(300, index=1)) is None


def test_more_items_needed_without_calibration_items_is_none():
    assert more_items_needed(np.zeros(3), np.zeros(3), np.ones(3), _needs(1)) is None
    assert more_items_needed(np.zeros(0), np.zeros(0), np.zeros(0), _needs(1)) is None


def test_why_nothing_certified_exact():
    assert why(120, 480) == (
        "120 calibration items are too few; about 480 more reviewed items (at the observed "
        "error rates) would certify"
    )
    assert why(120, None) == (
        "the model errs too often even on its most confident calibration items; improve the "
        "model or raise max_error"
    )
