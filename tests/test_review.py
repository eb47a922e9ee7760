"""The review queue: exact merge, dedup and order; sources plug in without changes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from truelabel.exceptions import ValidationError
from truelabel.review import (
    AuditIssueSource,
    AutoLabelReviewSource,
    DisagreementSource,
    ReviewQueue,
    ReviewSource,
)


class FakeSource:
    """A source the queue has never heard of (e.g. active learning)."""

    def __init__(self, name, rows, suggested=True):
        self.name = name
        cols = ["item_id", "reason", "priority"] + (["suggested_label"] if suggested else [])
        self.rows = pd.DataFrame(rows, columns=cols)

    def candidates(self):
        return self.rows


def _sources():
    audit = FakeSource(
        "audit",
        [(7, "label looks wrong", 0.8, "b"), (3, "outlier", 0.2, None), (5, "dup", 0.4, None)],
    )
    active = FakeSource("active", [(3, "uncertain", 0.9, "a"), (9, "uncertain", 0.4, "c")])
    votes = FakeSource("votes", [(7, "2 of 3 chose c", 0.33), (3, "split", 0.9)], suggested=False)
    return [audit, active, votes]


def test_queue_merges_dedups_and_orders_exactly():
    queue = ReviewQueue(_sources()).build()
    # item 3: max(0.2, 0.9, 0.9) = 0.9; item 7: 0.8; items 5 and 9 tie at 0.4 -> by item id
    assert queue["item_id"].tolist() == [3, 7, 5, 9]
    assert queue["priority"].tolist() == [0.9, 0.8, 0.4, 0.4]
    assert queue["n_reasons"].tolist() == [3, 2, 1, 1]
    assert queue["sources"].tolist() == [
        ["active", "audit", "votes"],
        ["audit", "votes"],
        ["audit"],
        ["active"],
    ]
    # every reason kept, highest priority first; equal priorities in source order
    assert queue["reasons"][0] == [
        {"source": "active", "reason": "uncertain", "priority": 0.9, "suggested_label": "a"},
        {"source": "votes", "reason": "split", "priority": 0.9, "suggested_label": None},
        {"source": "audit", "reason": "outlier", "priority": 0.2, "suggested_label": None},
    ]
    # suggestion: from the highest-priority reason that has one
    assert queue["suggested_label"].tolist() == ["a", "b", None, "c"]


def test_a_suggestion_comes_from_a_lower_reason_when_the_top_one_has_none():
    top = FakeSource("top", [(1, "x", 0.9)], suggested=False)
    low = FakeSource("low", [(1, "y", 0.1, "k")])
    assert ReviewQueue([top, low]).build()["suggested_label"].tolist() == ["k"]


def test_source_order_does_not_change_the_queue_but_ties_within_an_item():
    a = ReviewQueue(_sources()).build()
    b = ReviewQueue(_sources()[::-1]).build()
    assert a["item_id"].tolist() == b["item_id"].tolist()
    assert a["priority"].tolist() == b["priority"].tolist()
    assert a["suggested_label"].tolist() == b["suggested_label"].tolist()


def test_batches_cover_the_queue_in_order():
    queue = ReviewQueue(_sources())
    batches = list(queue.batches(3))
    assert [b["item_id"].tolist() for b in batches] == [[3, 7, 5], [9]]
    with pytest.raises(ValidationError, match="size: got 0; pass an int >= 1"):
        list(queue.batches(0))


def test_fake_sources_satisfy_the_protocol_and_bad_ones_are_named():
    assert isinstance(FakeSource("x", []), ReviewSource)
    bad = FakeSource("broken", [(1, "r", 1.5, None)])
    with pytest.raises(ValidationError, match=r"source 'broken' gave priority 1.5 \(row 0\)"):
        ReviewQueue([bad]).build()

    class NoReason:
        name = "noreason"

        def candidates(self):
            return pd.DataFrame({"item_id": [1], "priority": [0.5]})

    with pytest.raises(
        ValidationError, match=r"source 'noreason' gave candidates without the columns \['reason'\]"
    ):
        ReviewQueue([NoReason()]).build()
    with pytest.raises(ValidationError, match="sources: names repeat"):
        ReviewQueue([FakeSource("a", []), FakeSource("a", [])])
    empty = ReviewQueue([FakeSource("a", [])]).build()
    assert list(empty.columns) == [
        "item_id",
        "priority",
        "suggested_label",
        "reasons",
        "n_reasons",
        "sources",
    ]
    assert len(empty) == 0 and len(ReviewQueue([]).build()) == 0


def test_audit_issue_source_priorities_by_hand():
    issues = pd.DataFrame(
        {
            "is_label_issue": [True, False, True, False],
            "label_score": [0.1, 0.9, 0.3, 0.8],
            "given_label": ["a", "b", "b", "a"],
            "suggested_label": ["b", "b", "a", "a"],
            "is_outlier_issue": [False, False, True, True],
            "outlier_score": [0.5, 0.5, 0.2, 0.0],
        }
    )
    rows = AuditIssueSource(issues, item_ids=[10, 11, 12, 13]).candidates()
    assert rows["item_id"].tolist() == [10, 12, 12, 13]
    # label: 1.0 x (1 - score); outlier: 0.5 x (1 - score)
    np.testing.assert_allclose(rows["priority"], [0.9, 0.7, 0.4, 0.5])
    assert rows["suggested_label"].tolist() == ["b", "a", None, None]
    assert (
        rows["reason"][0]
        == "the given label looks wrong: given 'a', the model suggests 'b' (score 0.100)"
    )
    queue = ReviewQueue([AuditIssueSource(issues, item_ids=[10, 11, 12, 13])]).build()
    assert queue["item_id"].tolist() == [10, 12, 13]
    assert queue["n_reasons"].tolist() == [1, 2, 1]
    weighted = AuditIssueSource(issues, weights={"label": 0.5, "outlier": 1.0}).candidates()
    np.testing.assert_allclose(weighted["priority"], [0.45, 0.35, 0.8, 1.0])
    with pytest.raises(ValidationError, match="item_ids: has 2 ids, expected 4"):
        AuditIssueSource(issues, item_ids=[1, 2])


def test_autolabel_source_sends_the_unaccepted_items():
    decisions = pd.DataFrame(
        {
            "label": ["a", "b", "c"],
            "confidence": [0.99, 0.6, 0.7],
            "accepted": [True, False, False],
            "reason": ["certified", "below threshold", "below threshold"],
        }
    )
    rows = AutoLabelReviewSource(decisions, item_ids=["x", "y", "z"]).candidates()
    assert rows["item_id"].tolist() == ["y", "z"]
    np.testing.assert_allclose(rows["priority"], [0.4, 0.3])
    assert rows["suggested_label"].tolist() == ["b", "c"]
    with pytest.raises(ValidationError, match="decisions: has no 'accepted' column"):
        AutoLabelReviewSource(decisions.drop(columns="accepted"))


def test_disagreement_source_by_hand():
    votes = pd.DataFrame(
        {
            "item_id": [1, 1, 1, 2, 2, 3, 3, 3, 3],
            "annotator_id": ["a", "b", "c", "a", "b", "a", "b", "c", "d"],
            "label": ["x", "y", "y", "x", "x", "z", "x", "x", "z"],
        }
    )
    rows = DisagreementSource(votes).candidates()
    assert rows["item_id"].tolist() == [1, 3]  # item 2 agrees
    np.testing.assert_allclose(rows["priority"], [1 - 2 / 3, 0.5])
    assert rows["suggested_label"].tolist() == ["y", "x"]  # 3: tie x/z -> smallest
    assert rows["reason"].tolist() == [
        "annotators disagree: 2 of 3 chose 'y'",
        "annotators disagree: 2 of 4 chose 'x'",
    ]
    with pytest.raises(
        ValidationError, match=r"annotations: has no column\(s\) \['annotator_id'\]"
    ):
        DisagreementSource(votes.drop(columns="annotator_id"))


def test_review_never_imports_a_database():
    import ast
    from pathlib import Path

    import truelabel.review as review

    for path in Path(review.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text())
        names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        names += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        assert not [m for m in names if m.startswith(("sqlalchemy", "store", "truelabel.store"))]
