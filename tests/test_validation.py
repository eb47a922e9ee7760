from __future__ import annotations

import numpy as np
import pytest

from truelabel import ValidationError, find_label_issues, get_label_quality_scores

P = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
Y = np.array([0, 1, 1])


def test_validation_error_is_value_error():
    assert issubclass(ValidationError, ValueError)


def test_pred_probs_wrong_ndim():
    with pytest.raises(ValidationError, match=r"pred_probs: expected shape \(n_items, n_classes\)"):
        find_label_issues(Y, P[:, 0])


def test_pred_probs_nan_names_row():
    bad = P.copy()
    bad[1, 0] = np.nan
    with pytest.raises(ValidationError, match=r"pred_probs: contains nan at row 1, column 0"):
        find_label_issues(Y, bad)


def test_pred_probs_inf():
    bad = P.copy()
    bad[2, 1] = np.inf
    with pytest.raises(ValidationError, match="contains inf at row 2"):
        get_label_quality_scores(Y, bad)


def test_rows_must_sum_to_one():
    bad = P.copy()
    bad[1] = [0.3, 0.32]
    with pytest.raises(
        ValidationError, match=r"rows must sum to 1 \(row 1 sums to 0.62\).*softmax"
    ):
        find_label_issues(Y, bad)


def test_values_outside_unit_interval():
    bad = np.array([[1.5, -0.5], [0.2, 0.8], [0.6, 0.4]])
    with pytest.raises(ValidationError, match=r"outside \[0, 1\]"):
        find_label_issues(Y, bad)


def test_label_outside_class_set():
    with pytest.raises(
        ValidationError, match=r"labels: label 2 at item 1 is outside the class set \[0, 2\)"
    ):
        find_label_issues(np.array([0, 2, 1]), P)


def test_negative_label():
    with pytest.raises(ValidationError, match="label -1 at item 0"):
        find_label_issues(np.array([-1, 0, 1]), P)


def test_length_mismatch():
    with pytest.raises(ValidationError, match="labels: has 2 items, expected 3"):
        find_label_issues(np.array([0, 1]), P)


def test_string_labels_explain_encoding():
    with pytest.raises(
        ValidationError, match=r"labels: dtype .* is not integer.*truelabel.Dataset"
    ):
        find_label_issues(np.array(["a", "b", "a"]), P)


def test_missing_label_in_float_labels():
    with pytest.raises(ValidationError, match="item 1 has a missing label"):
        find_label_issues(np.array([0.0, np.nan, 1.0]), P)


def test_single_column_pred_probs():
    with pytest.raises(ValidationError, match="at least two classes"):
        find_label_issues(np.array([0, 0, 0]), np.ones((3, 1)))
