"""``truelabel consensus --multi-label``: the files against naive loops and hand-worked
values on a small table of set answers, and the errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from truelabel._consensus import run_multilabel_file
from truelabel.aggregate import DawidSkene, fleiss_kappa, krippendorff_alpha
from truelabel.cli import app
from truelabel.exceptions import ValidationError

runner = CliRunner()

# 5 items, 4 annotators, classes x, y, z; "" = the annotator chose no class; d ticks all
ROWS = [
    ("i1", "a", "x;y"), ("i1", "b", "x"), ("i1", "c", "x;y"), ("i1", "d", "x;y;z"),
    ("i2", "a", "y"), ("i2", "b", "y"), ("i2", "c", ""), ("i2", "d", "x;y;z"),
    ("i3", "a", ""), ("i3", "b", "z"), ("i3", "d", "x;y;z"),
    ("i4", "a", "z"), ("i4", "b", "z"), ("i4", "c", "z;x"), ("i4", "d", "x;y;z"),
    ("i5", "c", "y"),
]  # fmt: skip
CLASSES = ["x", "y", "z"]


@pytest.fixture
def table(tmp_path):
    path = tmp_path / "sets.csv"
    pd.DataFrame(ROWS, columns=["item", "worker", "tags"]).to_csv(path, index=False)
    return path


def _run(*args):
    return runner.invoke(app, ["consensus", *map(str, args)])


def _indicator(c):
    return pd.DataFrame(
        [(i, w, int(c in s.split(";"))) for i, w, s in ROWS],
        columns=["item_id", "annotator_id", "label"],
    )


def test_files_match_binary_dawid_skene_and_naive_loops(table, tmp_path):
    out = tmp_path / "out"
    res = _run(table, "--multi-label", "--label-sep", ";", "--label-col", "tags",
               "--doubtful-below", "0.9", "--out", out)  # fmt: skip
    assert res.exit_code == 0, res.output
    got = pd.read_csv(out / "consensus.csv", index_col="item", keep_default_na=False)
    assert list(got.columns) == [
        "label",
        "confidence",
        "n_labels",
        "is_doubtful",
        "p_x",
        "p_y",
        "p_z",
    ]
    # oracle 1: each class is the binary Dawid-Skene of its yes/no answers
    p = np.column_stack([DawidSkene().fit(_indicator(c)).probas_[1].to_numpy() for c in CLASSES])
    np.testing.assert_allclose(got[["p_x", "p_y", "p_z"]].to_numpy(), p, rtol=1e-5, atol=1e-9)
    # oracle 2: the set, its exact-set probability and the doubtful flag, item by item
    for r, item in enumerate(got.index):
        members = [c for k, c in enumerate(CLASSES) if p[r, k] >= 0.5]
        assert got.loc[item, "label"] == ";".join(members)
        conf = np.prod([max(v, 1 - v) for v in p[r]])
        assert got.loc[item, "confidence"] == pytest.approx(conf, rel=1e-5)
        assert got.loc[item, "is_doubtful"] == (conf < 0.9)
    assert got["n_labels"].tolist() == [4, 4, 3, 4, 1]
    assert got.loc["i5", "label"] == "y" and got.loc["i4", "label"] == "z"
    # oracle 3: quality / chance / kappa by a loop over answers and classes
    ann = pd.read_csv(out / "annotators.csv", index_col="annotator")
    pi = dict(zip(got.index, p, strict=True))
    for w in "abcd":
        mine = [(i, s) for i, ww, s in ROWS if ww == w]
        agree, rate, mass = 0.0, np.zeros(3), np.zeros(3)
        for i, s in mine:
            said = np.array([c in s.split(";") for c in CLASSES])
            agree += np.mean(np.where(said, pi[i], 1 - pi[i]))
            rate += said
            mass += pi[i]
        n = len(mine)
        q, rate, mass = agree / n, rate / n, mass / n
        chance = np.mean(rate * mass + (1 - rate) * (1 - mass))
        assert ann.loc[w, "n_answers"] == n
        assert ann.loc[w, "quality"] == pytest.approx(q, rel=1e-5)
        assert ann.loc[w, "chance"] == pytest.approx(chance, rel=1e-5)
        assert ann.loc[w, "kappa"] == pytest.approx((q - chance) / (1 - chance), rel=1e-4)
        assert ann.loc[w, "ci_low"] < q < ann.loc[w, "ci_high"]
    # d ticks every class on every item: agreement exactly at chance -> spammer
    assert ann.loc["d", "kappa"] == pytest.approx(0.0, abs=1e-9)
    assert ann["is_spammer"].to_dict() == {"a": False, "b": False, "c": False, "d": True}
    # agreement per class = the single-label metrics of the yes/no table
    agree = json.loads((out / "agreement.json").read_text())
    for c in CLASSES:
        assert agree["per_class"][c]["fleiss_kappa"] == pytest.approx(fleiss_kappa(_indicator(c)))
        alpha = krippendorff_alpha(_indicator(c))
        assert agree["per_class"][c]["krippendorff_alpha"] == pytest.approx(alpha)
    means = [agree["per_class"][c]["fleiss_kappa"] for c in CLASSES]
    assert agree["fleiss_kappa_mean"] == pytest.approx(np.mean(means))
    assert agree["per_class"]["x"]["n_pairs"] == 6  # every pair shares 3+ items
    html = (out / "report.html").read_text()
    assert "Per class, on the yes/no answers" in html and "mean over classes" in html
    assert "mean consensus set size" in res.output and "whole set is right" in res.output


def test_hand_worked_agreement_and_empty_set():
    # class x: every answer agrees -> 1; class y: (1/3 - 5/9) / (4/9) = -0.5 (Fleiss),
    # alpha 1 - 5 * 4 / (4 * 2 * 2) = -0.25 (coincidences worked by hand)
    df = pd.DataFrame({"item_id": [1, 1, 1, 2, 2, 2, 3], "annotator_id": list("abcabca"),
                       "label": ["x|y", "x", "x|y", "y", "y", "", ""]})  # fmt: skip
    from truelabel.aggregate._run_multilabel import run_multilabel_consensus

    res = run_multilabel_consensus(df)
    per = res.agreement["per_class"]
    assert per["x"]["fleiss_kappa"] == pytest.approx(1.0)
    assert per["y"]["fleiss_kappa"] == pytest.approx(-0.5)
    assert per["y"]["krippendorff_alpha"] == pytest.approx(-0.25)
    assert res.consensus["label"].tolist() == ["x|y", "y", ""]  # item 3: nothing chosen
    assert res.consensus.loc[1, "p_y"] == pytest.approx(0.661433, abs=1e-6)  # just above 0.5
    assert res.summary["n_items"] == 3 and res.summary["n_answers"] == 7


def test_doubtful_threshold_is_read(table, tmp_path):
    lo = run_multilabel_file(table, label_col="tags", sep=";", doubtful_below=0.01)[0]
    hi = run_multilabel_file(table, label_col="tags", sep=";", doubtful_below=1.0)[0]
    assert not lo.consensus["is_doubtful"].any() and hi.consensus["is_doubtful"].all()


def test_clear_errors(table, tmp_path):
    out = tmp_path / "out"
    res = _run(table, "--label-col", "tags", "--label-sep", ";", "--out", out)
    assert (
        res.exit_code == 2 and "error: --label-sep: is only used with --multi-label" in res.output
    )
    res = _run(table, "--multi-label", "--label-col", "tags", "--method", "mace", "--out", out)
    assert res.exit_code == 2 and "error: --method: 'mace' with --multi-label" in res.output
    gold = tmp_path / "g.csv"
    pd.DataFrame({"item": ["i1"], "tags": ["x"]}).to_csv(gold, index=False)
    res = _run(table, "--multi-label", "--label-col", "tags", "--gold", gold, "--out", out)
    assert res.exit_code == 2 and "error: --gold: is not supported with --multi-label" in res.output
    res = _run(table, "--multi-label", "--label-col", "tags", "--label-sep", "", "--out", out)
    assert res.exit_code == 2 and "error: --label-sep: got ''" in res.output
    assert not out.exists()
    with pytest.raises(ValidationError, match=r"--classes: row 3 names class 'z', which is not"):
        run_multilabel_file(table, label_col="tags", sep=";", classes=["x", "y"])
    dup = tmp_path / "dup.csv"
    rows = [*ROWS, ("i1", "a", "z")]
    pd.DataFrame(rows, columns=["item", "worker", "label"]).to_csv(dup, index=False)
    with pytest.raises(ValidationError, match=r"--duplicates: annotator 'a' labeled item 'i1'"):
        run_multilabel_file(dup, sep=";")
    last = run_multilabel_file(dup, sep=";", duplicates="last")[0]
    assert last.consensus.loc["i1", "n_labels"] == 4
    with pytest.raises(ValidationError, match=r"--label-col: not given and sets.csv has no label"):
        run_multilabel_file(table)
    with pytest.raises(ValidationError, match=r"--doubtful-below: got 0"):
        run_multilabel_file(table, label_col="tags", doubtful_below=0)
    # the default separator is '|': ';' answers are then whole class names, said in the classes
    res = _run(table, "--multi-label", "--label-col", "tags", "--out", out)
    assert res.exit_code == 0, res.output
    assert "p_x;y;z" in (out / "consensus.csv").read_text().splitlines()[0]
