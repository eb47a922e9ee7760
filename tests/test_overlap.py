from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import truelabel
from truelabel.detect import estimate_joint, find_overlapping_classes
from truelabel.exceptions import ValidationError

# Nine items, three classes, worked by hand. Thresholds (mean self-confidence per given
# class): t0 = (.9 + .8 + .1) / 3 = .6, t1 = (.8 + .9 + .1 + .05) / 4 = .4625,
# t2 = (.8 + .3) / 2 = .55. Every item is confident in exactly one class, so the
# calibrated confident joint equals the raw counts (rows sum to the label counts):
#   given 0: [2, 1, 0]   (item 2 is really a 1)
#   given 1: [0, 2, 2]   (items 5 and 8 are really 2s)
#   given 2: [1, 0, 1]   (item 7 is really a 0)
LABELS = np.array([0, 0, 0, 1, 1, 1, 2, 2, 1])
PRED_PROBS = np.array(
    [
        [0.9, 0.1, 0.0],
        [0.8, 0.2, 0.0],
        [0.1, 0.9, 0.0],
        [0.1, 0.8, 0.1],
        [0.0, 0.9, 0.1],
        [0.0, 0.1, 0.9],
        [0.0, 0.2, 0.8],
        [0.7, 0.0, 0.3],
        [0.0, 0.05, 0.95],
    ]
)
CONFIDENT_JOINT = np.array([[2, 1, 0], [0, 2, 2], [1, 0, 1]])


def test_hand_worked_joint():
    np.testing.assert_allclose(estimate_joint(LABELS, PRED_PROBS), CONFIDENT_JOINT / 9)


def test_symmetric_pairs_exact():
    table = find_overlapping_classes(LABELS, PRED_PROBS, classes=["a", "b", "c"])
    assert list(table.columns) == [
        "name_a",
        "name_b",
        "class_a",
        "class_b",
        "joint_probability",
        "n_overlapping",
    ]
    # (1, 2): 2 + 0; (0, 1): 1 + 0; (0, 2): 0 + 1 -- ties ordered by class index
    assert table[["class_a", "class_b"]].to_numpy().tolist() == [[1, 2], [0, 1], [0, 2]]
    np.testing.assert_allclose(table["joint_probability"], [2 / 9, 1 / 9, 1 / 9])
    assert table["n_overlapping"].tolist() == [2, 1, 1]
    assert table["name_a"].tolist() == ["b", "a", "a"]
    assert table["name_b"].tolist() == ["c", "b", "c"]


def test_asymmetric_pairs_exact():
    table = find_overlapping_classes(LABELS, PRED_PROBS, asymmetric=True)
    assert "name_a" not in table
    pairs = table[["class_a", "class_b"]].to_numpy().tolist()
    assert pairs == [[1, 2], [0, 1], [2, 0], [0, 2], [1, 0], [2, 1]]
    assert table["n_overlapping"].tolist() == [2, 1, 1, 0, 0, 0]
    np.testing.assert_allclose(table["joint_probability"], [2 / 9, 1 / 9, 1 / 9, 0, 0, 0])


def test_matches_naive_loop_on_random_joint():
    rng = np.random.default_rng(3)
    k = 7
    joint = rng.random((k, k)) ** 3
    joint /= joint.sum()
    n = 1234
    rows = []
    for a in range(k):
        for b in range(a + 1, k):
            rows.append((a, b, joint[a, b] + joint[b, a]))
    rows.sort(key=lambda r: (-r[2], r[0], r[1]))
    table = find_overlapping_classes(joint=joint, n_items=n)
    assert table[["class_a", "class_b"]].to_numpy().tolist() == [[a, b] for a, b, _ in rows]
    np.testing.assert_allclose(table["joint_probability"], [v for _, _, v in rows])
    assert table["n_overlapping"].tolist() == [round(v * n) for _, _, v in rows]
    directed = find_overlapping_classes(joint=joint, n_items=n, asymmetric=True)
    assert len(directed) == k * (k - 1)
    top = directed.iloc[0]
    off = joint - np.diag(np.diag(joint))
    assert (top["class_a"], top["class_b"]) == np.unravel_index(off.argmax(), off.shape)
    assert np.all(np.diff(directed["joint_probability"].to_numpy()) <= 0)


def test_joint_path_equals_labels_path_and_n_items_from_labels():
    via_probs = find_overlapping_classes(LABELS, PRED_PROBS)
    via_joint = find_overlapping_classes(LABELS, joint=CONFIDENT_JOINT / 9)
    pd.testing.assert_frame_equal(via_probs, via_joint)


def test_top_level_export():
    assert truelabel.find_overlapping_classes is find_overlapping_classes


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, r"labels, pred_probs: missing; pass labels and pred_probs, or joint and n_items"),
        ({"labels": LABELS}, r"labels, pred_probs: missing"),
        ({"joint": CONFIDENT_JOINT / 9}, r"n_items: missing; pass n_items with joint"),
        ({"joint": CONFIDENT_JOINT, "n_items": 9}, r"joint: sums to 9, expected 1"),
        ({"joint": np.ones((1, 1)), "n_items": 9}, r"joint: has shape \(1, 1\)"),
        ({"joint": -np.eye(2) + 0.5 * np.ones((2, 2)) + 0.25, "n_items": 9}, r"joint: has neg"),
        ({"joint": np.full((2, 2), 0.25), "n_items": -1}, r"n_items: got -1"),
        (
            {"joint": np.full((2, 2), 0.25), "pred_probs": PRED_PROBS},
            r"joint: given together with pred_probs",
        ),
        (
            {"labels": LABELS, "pred_probs": PRED_PROBS, "classes": ["a", "b"]},
            r"classes: 2 names for 3 classes",
        ),
        ({"labels": LABELS[:-1], "pred_probs": PRED_PROBS}, r"labels"),
    ],
)
def test_bad_input_is_named(kwargs, match):
    with pytest.raises(ValidationError, match=match):
        find_overlapping_classes(**kwargs)
