"""``Audit.run(annotations=...)`` and ``truelabel audit --annotations``: the consensus issue
type, the annotator table, the report, errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from truelabel import Audit
from truelabel.cli import app
from truelabel.detect import available_detectors
from truelabel.detect._consensus_detector import disagreeing_annotators
from truelabel.exceptions import ValidationError

runner = CliRunner()

ROWS = [
    ("i1", "a", "x"),
    ("i1", "b", "x"),
    ("i1", "c", "y"),
    ("i2", "a", "y"),
    ("i2", "b", "y"),
    ("i3", "a", "x"),
    ("i4", "a", "<script>"),
    ("i4", "b", "x"),
    ("i4", "c", "<script>"),
]
DF = pd.DataFrame(ROWS, columns=["item_id", "annotator_id", "label"])


def test_consensus_issue_type_on_the_hand_worked_table():
    assert "consensus" in available_detectors()
    res = Audit({"consensus": {"method": "majority", "doubtful_below": 0.7}}).run(annotations=DF)
    issues = res.issues
    assert list(issues.index) == ["i1", "i2", "i3", "i4"]
    assert issues["is_consensus_issue"].tolist() == [True, False, False, True]
    np.testing.assert_allclose(issues["consensus_score"], [2 / 3, 1, 1, 2 / 3])
    assert issues["consensus_label"].tolist() == ["x", "y", "x", "<script>"]
    assert issues["n_labels"].tolist() == [3, 2, 1, 3]
    assert res.summary["issue_counts"] == {"consensus": 2}
    ann = res.info["consensus"]["annotators"]
    np.testing.assert_allclose(ann["quality"], [5 / 6, 2 / 3, 1 / 2])
    # a stricter threshold flags nothing: the setting is read
    loose = Audit({"consensus": {"method": "majority", "doubtful_below": 0.6}}).run(annotations=DF)
    assert not loose.issues["is_consensus_issue"].any()


def test_disagreeing_annotators_rule():
    q = pd.DataFrame(
        {
            "quality": [0.9, 0.85, 0.8, 0.4, 0.9],
            "ci_high": [0.95, 0.9, 0.71, 0.69, 0.99],
            "is_spammer": [False, False, False, False, True],
        }
    )
    # median quality 0.85, typical error 0.15: disagrees when 1 - ci_high > 0.3; spammers too
    assert disagreeing_annotators(q).tolist() == [False, False, False, True, True]


def test_synthetic_crowd_finds_the_bad_annotators():
    rng = np.random.default_rng(0)
    n, k = 400, 3
    truth = rng.integers(0, k, n)
    acc = np.array([0.9, 0.9, 0.85, 0.85, 0.9, 0.35, 0.3])  # the last two are bad
    rows = []
    for j, a in enumerate(acc):
        right = rng.random(n) < a
        lab = np.where(right, truth, (truth + rng.integers(1, k, n)) % k)
        asked = rng.random(n) < 3 / 7  # about three answers per item
        rows += [(i, f"w{j}", int(lab[i])) for i in np.flatnonzero(asked)]
    df = pd.DataFrame(rows, columns=["item_id", "annotator_id", "label"])
    res = Audit(random_state=0).run(annotations=df)
    ann = res.info["consensus"]["annotators"]
    assert ann["disagrees"].tolist() == [False] * 5 + [True] * 2
    flagged = res.issues["is_consensus_issue"].to_numpy()
    wrong = res.issues["consensus_label"].astype(int).to_numpy() != truth[res.issues.index]
    assert 0.03 < wrong.mean() < 0.2  # some items (about 3 answers each) are wrong
    assert wrong[flagged].mean() > 5 * wrong[~flagged].mean()  # doubtful = where errors are


def test_consensus_needs_annotations_and_checks_settings():
    y = np.arange(30) % 2
    X = np.random.default_rng(0).normal(size=(30, 2)) + 4.0 * y[:, None]
    res = Audit().run(labels=y, features=X)
    assert "is_consensus_issue" not in res.issues  # not run without annotations
    with pytest.raises(ValidationError, match=r"'consensus' needs annotations"):
        Audit({"consensus": {}}).run(labels=np.arange(30) % 2, features=X)
    with pytest.raises(ValidationError, match=r"unknown setting 'methd'; did you mean 'method'"):
        Audit({"consensus": {"methd": "mace"}}).run(annotations=DF)
    with pytest.raises(ValidationError, match=r"\['method'\]: got 'glad'"):
        Audit({"consensus": {"method": "glad"}}).run(annotations=DF)
    with pytest.raises(ValidationError, match=r"annotations: has 4 items, expected 3"):
        Audit().run(annotations=DF, labels=[0, 1, 0])


def test_cli_audit_annotations_writes_the_report_with_annotators(tmp_path):
    path = tmp_path / "answers.csv"
    DF.rename(columns={"item_id": "doc", "annotator_id": "rater"}).to_csv(path, index=False)
    out = tmp_path / "out"
    res = runner.invoke(
        app,
        ["audit", str(path), "--annotations", "--id-col", "doc", "--method", "majority",
         "--out", str(out)],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "3 annotators, 9 answers, method majority" in res.output
    assert "warning: 3 of 3 annotators gave fewer than 10 answers" in res.output
    issues = pd.read_csv(out / "issues.csv", index_col="id")
    assert issues.index.tolist() == ["i1", "i4", "i2", "i3"]  # most doubtful first
    ann = pd.read_csv(out / "annotators.csv", index_col="annotator")
    assert ann.index.tolist() == ["a", "b", "c"] and "disagrees" in ann
    summary = json.loads((out / "summary.json").read_text())
    assert summary["details"]["consensus"]["annotators"] == "annotators.csv"
    assert summary["issue_counts"] == {"consensus": 2}
    html = (out / "report.html").read_text()
    assert 'id="annotators"' in html and 'id="agreement"' in html and 'id="warnings"' in html
    assert "&lt;script&gt;" in html and html.count("<script>") == 1
    assert "is_consensus_issue" in html  # the glossary explains the column
    res = runner.invoke(app, ["audit", str(path), "--annotations", "--out", str(tmp_path / "x")])
    assert res.exit_code == 2 and "error: --id-col: not given and answers.csv has no" in res.output
    res = runner.invoke(
        app, ["audit", str(path), "--annotations", "--id-col", "doc", "--features", "e.npy",
              "--out", str(tmp_path / "x")],
    )  # fmt: skip
    assert res.exit_code == 2 and "error: --features: is not used with --annotations" in res.output
