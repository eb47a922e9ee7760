"""``truelabel consensus``: exact files on a hand-worked table, escaping, errors, real crowds."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from truelabel._consensus import read_annotations, run_consensus
from truelabel.cli import app
from truelabel.exceptions import ValidationError

runner = CliRunner()

# 4 items, 3 annotators; the class names sort as '<script>', 'x', 'y'
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


@pytest.fixture
def table(tmp_path):
    path = tmp_path / "ann.csv"
    pd.DataFrame(ROWS, columns=["item", "worker", "answer"]).to_csv(path, index=False)
    return path


def _run(*args):
    return runner.invoke(app, ["consensus", *map(str, args)])


def test_majority_files_match_the_hand_worked_table(table, tmp_path):
    out = tmp_path / "out"
    res = _run(table, "--label-col", "answer", "--method", "majority", "--out", out)
    assert res.exit_code == 0, res.output
    # vote shares: i1 x 2/3, i2 y 1, i3 x 1 (one answer), i4 <script> 2/3; doubtful < 0.8
    assert (out / "consensus.csv").read_text().splitlines() == [
        "item,label,confidence,n_labels,is_doubtful,is_gold",
        "i1,x,0.666667,3,True,False",
        "i2,y,1,2,False,False",
        "i3,x,1,1,False,False",
        "i4,<script>,0.666667,3,True,False",
    ]
    ann = pd.read_csv(out / "annotators.csv", index_col="annotator")
    # quality = mean P(consensus = own answer): a (2/3+1+1+2/3)/4, b (2/3+1+1/3)/3, c (1/3+2/3)/2
    assert ann["quality"].round(6).to_dict() == {"a": 0.833333, "b": 0.666667, "c": 0.5}
    assert ann["n_answers"].to_dict() == {"a": 4, "b": 3, "c": 2}
    assert ann["source"].eq("consensus").all() and ann["few_answers"].all()
    agree = json.loads((out / "agreement.json").read_text())
    assert agree["cohen_kappa_pairs"]["n_pairs"] == 3  # (a, b) share 3 items, (a, c) (b, c) 2
    assert "columns: item=item, annotator=worker, label=answer" in res.output
    assert "2 (50.0%)" in res.output  # doubtful
    assert "3 of 3 annotators gave fewer than 10 answers" in res.output
    assert "1 of 4 items have a single answer" in res.output
    assert "model's posterior" not in " ".join(res.output.split())  # vote shares: no model
    html = (out / "report.html").read_text()
    assert "<script>x" not in html and "&lt;script&gt;" in html
    assert html.count("<script>") == 1  # only the sorting script


def test_report_escapes_every_user_string(tmp_path):
    rows = [("<img src=x>", "<b>ann</b>", "<script>alert(1)</script>"), ("i2", "<b>ann</b>", "y")]
    rows += [("<img src=x>", "z", "y"), ("i2", "z", "y")]
    path = tmp_path / "a.csv"
    pd.DataFrame(rows, columns=["item_id", "annotator_id", "label"]).to_csv(path, index=False)
    res = _run(path, "--out", tmp_path / "o", "--method", "majority")
    assert res.exit_code == 0, res.output
    html = (tmp_path / "o" / "report.html").read_text()
    for raw in ("<img src=x>", "<b>ann</b>", "<script>alert(1)</script>"):
        assert raw not in html
    assert "&lt;img src=x&gt;" in html and "&lt;b&gt;ann&lt;/b&gt;" in html


def test_dawid_skene_default_and_gold(table, tmp_path):
    gold = tmp_path / "gold.csv"
    pd.DataFrame({"item": ["i1"], "answer": ["y"]}).to_csv(gold, index=False)
    t = read_annotations(table, label_col="answer", gold=gold)
    res = run_consensus(t)
    assert res.consensus.loc["i1", "label"] == "y" and res.consensus.loc["i1", "is_gold"]
    assert res.consensus.loc["i1", "confidence"] == 1.0
    q = res.annotators
    assert q.loc["c", "source"] == "gold" and q.loc["c", "quality"] == 1.0  # c said y on i1
    assert q.loc["a", "source"] == "gold" and q.loc["a", "quality"] == 0.0
    assert res.summary["n_gold"] == 1 and res.summary["method"] == "dawid-skene"


def test_clear_errors(table, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(ValidationError, match=r"--item-col: no column 'id' in ann.csv"):
        read_annotations(table, item_col="id", label_col="answer")
    value = tmp_path / "v.csv"
    pd.DataFrame(ROWS, columns=["item", "worker", "value"]).to_csv(value, index=False)
    with pytest.raises(ValidationError, match=r"--label-col: not given and v.csv has no label"):
        read_annotations(value)
    with pytest.raises(
        ValidationError, match=r"--classes: row 2 has label 'y', which is not in classes"
    ):
        read_annotations(table, label_col="answer", classes=["x", "<script>"])
    dup = tmp_path / "dup.csv"
    pd.DataFrame([*ROWS, ("i1", "a", "y")], columns=["item", "worker", "label"]).to_csv(
        dup, index=False
    )
    with pytest.raises(ValidationError, match=r"--duplicates: annotator 'a' labeled item 'i1'.*"
                       r"--duplicates last"):  # fmt: skip
        read_annotations(dup)
    last = run_consensus(read_annotations(dup, duplicates="last"), method="majority")
    assert last.consensus.loc["i1", "label"] == "y"  # a's latest answer: y, y vs x
    res = _run(dup, "--out", out)
    assert res.exit_code == 2 and "error: --duplicates:" in res.output
    assert "choose how to resolve them: --duplicates last" in res.output
    assert not out.exists()
    res = _run(table, "--label-col", "answer", "--out", out, "--method", "glad")
    assert res.exit_code == 2 and "error: --method: got 'glad'" in res.output
    res = _run(table, "--label-col", "answer", "--out", out, "--duplicates", "keep")
    assert res.exit_code == 2 and "error: --duplicates: got 'keep'" in res.output
    gold = tmp_path / "gold.csv"
    pd.DataFrame({"item": ["i1"], "truth": ["y"]}).to_csv(gold, index=False)
    with pytest.raises(ValidationError, match=r"--gold: gold.csv has no label column 'answer'"):
        read_annotations(table, label_col="answer", gold=gold)


@pytest.mark.shared
@pytest.mark.parametrize(
    "name, extra, accuracy",
    [
        ("crowd_duck", [], 0.88),
        ("crowd_rte", [], 0.92),
        ("crowd_wsd", [], 0.99),
        ("crowd_relevance", ["--duplicates", "last"], 0.60),
    ],
)
def test_real_crowds_end_to_end(shared_datasets, tmp_path, name, extra, accuracy):
    src = shared_datasets / name
    res = _run(src / "annotations.csv", "--out", tmp_path / "o", *extra)
    assert res.exit_code == 0, res.output
    got = pd.read_csv(tmp_path / "o" / "consensus.csv", dtype={"item": str, "label": str})
    truth = pd.read_csv(src / "truth.csv", dtype=str).set_index("item")["label"]
    pred = got.set_index("item")["label"].loc[truth.index]
    assert (pred == truth).mean() > accuracy
    if name == "crowd_relevance":
        assert _run(src / "annotations.csv", "--out", tmp_path / "p").exit_code == 2


def test_model_posteriors_come_with_their_caveat_unless_gold_measures_them(table, tmp_path):
    res = _run(table, "--label-col", "answer", "--out", tmp_path / "o")
    assert res.exit_code == 0, res.output
    assert "confidence is the model's posterior" in " ".join(res.output.split())
    gold = tmp_path / "gold.csv"
    pd.DataFrame({"item": ["i1"], "answer": ["y"]}).to_csv(gold, index=False)
    res = _run(table, "--label-col", "answer", "--gold", gold, "--out", tmp_path / "g")
    assert res.exit_code == 0, res.output
    assert "model's posterior" not in " ".join(res.output.split())


class _Bar:
    """Records what a ``progress`` bar was asked to show."""

    def __init__(self) -> None:
        self.bars: list[tuple[int | None, str]] = []
        self.steps = 0

    def __call__(self, total, description, **kw):
        from contextlib import contextmanager

        if kw.get("show", True):  # show=False: progress never draws a bar
            self.bars.append((total, description))

        @contextmanager
        def bar():
            def advance(n=1):
                self.steps += n

            yield advance

        return bar()


def test_the_em_bar_counts_every_iteration_of_every_start(table, monkeypatch):
    from truelabel.aggregate import DawidSkene, _em
    from truelabel.weak import LabelModel

    t = read_annotations(table, label_col="answer")
    for n_init in (1, 3):
        rec = _Bar()
        monkeypatch.setattr(_em, "progress", rec)
        ds = DawidSkene(n_init=n_init, random_state=0).fit(t)
        assert rec.bars == [(None, "DawidSkene: EM iterations")]
        if n_init == 1:
            assert rec.steps == ds.n_iter_ >= 2
        else:  # each start runs at least two iterations (the second can first converge)
            assert rec.steps >= 2 * n_init and rec.steps >= ds.n_iter_
    rec = _Bar()
    monkeypatch.setattr(_em, "progress", rec)
    votes = np.array([[0, 0, 1], [1, 1, 1], [1, -1, 0], [-1, 1, 0], [0, 0, -1]])
    LabelModel(random_state=0).fit(votes)
    assert rec.bars == []  # a label model's EM is one step of a longer run: no bar of its own


def test_em_iterations_show_on_a_progress_bar_unless_quiet(table, tmp_path):
    res = _run(table, "--label-col", "answer", "--out", tmp_path / "a")
    assert res.exit_code == 0, res.output
    assert "DawidSkene: EM iterations" in res.output
    quiet = _run(table, "--label-col", "answer", "--out", tmp_path / "b", "--quiet")
    assert quiet.exit_code == 0, quiet.output
    assert "EM iterations" not in quiet.output
    for name in ("consensus.csv", "annotators.csv"):
        assert (tmp_path / "a" / name).read_text() == (tmp_path / "b" / name).read_text()


def test_multi_label_consensus_counts_its_classes_not_each_class_em(monkeypatch):
    from truelabel.aggregate import MultiLabelDawidSkene, _em, _multilabel

    per_class, classes = _Bar(), _Bar()
    monkeypatch.setattr(_em, "progress", per_class)
    monkeypatch.setattr(_multilabel, "progress", classes)
    df = pd.DataFrame(
        {"item_id": ["i1", "i1", "i2", "i2", "i3"], "annotator_id": ["a", "b", "a", "b", "a"],
         "label": ["x|y", "x", "z", "y|z", ""]}
    )  # fmt: skip
    ml = MultiLabelDawidSkene().fit(df)
    assert classes.bars == [(3, "MultiLabelDawidSkene: classes")] and classes.steps == 3
    assert list(ml.classes_) == ["x", "y", "z"]
    assert per_class.bars == []  # one bar for the run, not one per class
