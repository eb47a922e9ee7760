"""``truelabel audit ANNOTATIONS --annotations --items ITEMS --text-col COL``: model-assisted
consensus with a text classifier, on a synthetic crowd whose item texts carry the class."""

from __future__ import annotations

import json
import sys

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from truelabel import Audit
from truelabel._crowd_text import item_text_pred_probs, read_item_texts
from truelabel._text_vectors import text_pred_probs
from truelabel.aggregate import (
    Annotations,
    MajorityVote,
    ModelAssistedConsensus,
    OneCoinDawidSkene,
)
from truelabel.cli import app
from truelabel.data import Dataset
from truelabel.encode import TfidfEncoder
from truelabel.exceptions import ValidationError

runner = CliRunner()
CLASSES = ["bird", "fish", "tree"]
WORDS = {
    "bird": "wing feather beak nest sky fly song egg flock perch".split(),
    "fish": "fin scale gill river sea swim reef bait tank salmon".split(),
    "tree": "leaf bark root branch trunk forest oak pine seed twig".split(),
}
COMMON = "the a big small old new green near far seen".split()


def _crowd(seed=0, n=360, n_annot=30):
    """Texts of 8 words (6 from the class's words), 30 annotators of accuracy U(0.4, 0.85),
    errors uniform; 1 or 2 answers per item (about half the items have one)."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 3, n)
    texts = []
    for t in truth:
        own = rng.choice(WORDS[CLASSES[t]], 6)
        texts.append(" ".join(rng.permutation([*own, *rng.choice(COMMON, 2)])))
    acc = rng.uniform(0.4, 0.85, n_annot)
    rows = []
    for i in range(n):
        for j in rng.choice(n_annot, 1 + int(rng.random() < 0.5), replace=False):
            lab = truth[i] if rng.random() < acc[j] else (truth[i] + rng.integers(1, 3)) % 3
            rows.append((f"q{i}", f"w{j:02d}", CLASSES[lab]))
    ann = pd.DataFrame(rows, columns=["item", "worker", "label"])
    items = pd.DataFrame({"item": [f"q{i}" for i in range(n)], "body": texts})
    return ann, items, pd.Series(np.asarray(CLASSES)[truth], index=items["item"])


def _files(tmp_path, seed=0):
    ann, items, truth = _crowd(seed)
    a, it = tmp_path / "ann.csv", tmp_path / "items.csv"
    ann.to_csv(a, index=False)
    items.sample(frac=1.0, random_state=1).to_csv(it, index=False)  # rows in another order
    return a, it, truth


def _audit(*args):
    return runner.invoke(app, ["audit", *map(str, args), "--annotations", "--quiet"])


def _accuracy(out, truth):
    got = pd.read_csv(out / "issues.csv", dtype=str).set_index("id")["consensus_label"]
    return float((got.loc[truth.index] == truth).mean())


def test_texts_that_carry_the_class_lift_the_consensus(tmp_path):
    a, it, truth = _files(tmp_path)
    plain = _audit(a, "--out", tmp_path / "plain", "--method", "one-coin")
    assert plain.exit_code == 0, plain.output
    res = _audit(a, "--items", it, "--text-col", "body", "--encoder", "tfidf",
                 "--out", tmp_path / "m")  # fmt: skip
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "method one-coin" in text and "consensus: model-assisted (one-coin base" in text
    assert "logistic regression on TF-IDF), trained on the majority vote" in text
    assert "encoder: TF-IDF/LSA (tfidf-lsa)" in text
    summary = json.loads((tmp_path / "m" / "summary.json").read_text())
    model = summary["consensus_model"]
    assert model["base"] == "one-coin" and model["model_weight"] > 1.0
    assert 0.0 < model["model_accuracy"] < 1.0  # vs a noisy 1-2 answer crowd: low by design
    html = (tmp_path / "m" / "report.html").read_text()
    assert "model-assisted (one-coin base + a text classifier" in html
    # the texts carry the class: the model lifts the consensus well above the crowd alone
    crowd, assisted = _accuracy(tmp_path / "plain", truth), _accuracy(tmp_path / "m", truth)
    assert crowd < 0.7 and assisted > 0.8, (crowd, assisted)  # measured 0.65 -> 0.85


def test_the_consensus_is_model_assisted_consensus_on_the_majority_vote_classifier(tmp_path):
    """Oracle: the same fit done by hand from the public pieces, value by value."""
    a, it, _ = _files(tmp_path)
    table = Annotations(pd.read_csv(a, dtype=str), item="item", annotator="worker")
    texts = read_item_texts(it, table, text_col="body")
    items = pd.read_csv(it, dtype=str).set_index("item")
    assert texts == items.loc[list(table.items), "body"].tolist()  # the table's item order
    model = item_text_pred_probs(table, texts, encoder="tfidf", random_state=0)
    vote = MajorityVote(random_state=0).fit(table).labels_.to_numpy()
    ds = Dataset.from_pandas(pd.DataFrame({"t": texts, "y": vote}), label_col="y",
                             text_col="t", classes=CLASSES)  # fmt: skip
    sparse = TfidfEncoder(random_state=0).fit(texts).transform_sparse(texts)
    np.testing.assert_allclose(model.pred_probs, text_pred_probs(ds, sparse, 0))
    res = _audit(a, "--items", it, "--text-col", "body", "--encoder", "tfidf",
                 "--out", tmp_path / "m")  # fmt: skip
    assert res.exit_code == 0, res.output
    mac = ModelAssistedConsensus(base=OneCoinDawidSkene()).fit(table, pred_probs=model.pred_probs)
    got = pd.read_csv(tmp_path / "m" / "issues.csv", dtype={"id": str}).set_index("id")
    got = got.loc[list(mac.labels_.index)]  # issues.csv lists the worst first
    assert got["consensus_label"].tolist() == mac.labels_.tolist()
    np.testing.assert_allclose(got["consensus_score"], mac.probas_.max(axis=1), rtol=1e-9)
    assert got["is_consensus_issue"].tolist() == (mac.probas_.max(axis=1) < 0.8).tolist()


def test_without_the_text_extra_it_falls_back_to_tfidf_and_says_so(tmp_path, monkeypatch):
    a, it, truth = _files(tmp_path)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    res = _audit(a, "--items", it, "--text-col", "body", "--out", tmp_path / "m")
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "encoder: TF-IDF/LSA (tfidf-lsa)" in text and "fell back to TF-IDF/LSA" in text
    assert "pip install 'truelabel[text]'" in text
    assert "logistic regression on TF-IDF), trained on the majority vote" in text
    assert _accuracy(tmp_path / "m", truth) > 0.8


def test_detector_uses_pred_probs_only_when_asked():
    ann, items, _ = _crowd(n=120)
    table = Annotations(ann, item="item", annotator="worker")
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(3), table.n_items)
    on = Audit({"consensus": {"method": "one-coin"}}).run(annotations=table, pred_probs=probs)
    off = Audit({"consensus": {"method": "one-coin", "model_assisted": False}}).run(
        annotations=table, pred_probs=probs
    )
    plain = OneCoinDawidSkene().fit(table).probas_.max(axis=1).to_numpy()
    mac = ModelAssistedConsensus(model_weight="auto").fit(table, pred_probs=probs)
    np.testing.assert_allclose(off.issues["consensus_score"], plain)
    np.testing.assert_allclose(on.issues["consensus_score"], mac.probas_.max(axis=1))
    assert on.info["consensus"]["model_assisted"]["model_weight"] == mac.model_weight_
    assert off.info["consensus"]["model_assisted"] is None
    with pytest.raises(ValidationError, match=r"\['model_assisted'\]: got 'yes'"):
        Audit({"consensus": {"model_assisted": "yes"}}).run(annotations=table, pred_probs=probs)


def test_clear_errors(tmp_path):
    a, it, _ = _files(tmp_path)
    out = tmp_path / "o"
    res = _audit(a, "--text-col", "body", "--out", out)
    assert (
        res.exit_code == 2 and "error: --text-col: with --annotations needs --items" in res.output
    )
    res = _audit(a, "--items", it, "--text-col", "nope", "--out", out)
    assert res.exit_code == 2 and "error: --text-col: no column 'nope' in items.csv" in res.output
    res = _audit(a, "--items", it, "--out", out)
    assert (
        res.exit_code == 2
        and "error: --text-col: not given and items.csv has no text" in res.output
    )
    res = _audit(a, "--items", it, "--text-col", "body", "--method", "majority", "--out", out)
    assert res.exit_code == 2 and "error: --method: 'majority' with a classifier" in res.output
    short = tmp_path / "short.csv"
    pd.read_csv(it).iloc[:-3].to_csv(short, index=False)
    res = _audit(a, "--items", short, "--text-col", "body", "--out", out)
    assert (
        res.exit_code == 2 and "error: --items: short.csv has no row for 3 of the 360" in res.output
    )
    twice = tmp_path / "twice.csv"
    df = pd.read_csv(it)
    pd.concat([df, df.iloc[:1]]).to_csv(twice, index=False)
    res = _audit(a, "--items", twice, "--text-col", "body", "--out", out)
    assert res.exit_code == 2 and "error: --items: twice.csv lists item" in res.output
    other = tmp_path / "other.csv"
    df.rename(columns={"item": "key"}).to_csv(other, index=False)
    res = _audit(a, "--items", other, "--text-col", "body", "--out", out)
    assert (
        res.exit_code == 2 and "error: --items: other.csv has no item column 'item'" in res.output
    )
    res = runner.invoke(app, ["audit", str(a), "--label-col", "label", "--items", str(it),
                              "--out", str(out)])  # fmt: skip
    assert res.exit_code == 2 and "error: --items: is only used with --annotations" in res.output
    assert not out.exists()


@pytest.mark.shared
def test_crowd_rte_items_end_to_end(shared_datasets, tmp_path):
    src = shared_datasets / "crowd_rte"
    res = _audit(src / "annotations.csv", "--items", src / "items.csv", "--text-col",
                 "hypothesis", "--encoder", "tfidf", "--out", tmp_path / "o")  # fmt: skip
    assert res.exit_code == 0, res.output
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["consensus_model"]["base"] == "one-coin"
    assert summary["encoder"]["kind"] == "TF-IDF/LSA"
    got = pd.read_csv(tmp_path / "o" / "issues.csv", dtype=str).set_index("id")
    truth = pd.read_csv(src / "truth.csv", dtype=str).set_index("item")["label"]
    # 10 answers per item: the crowd decides; a near-chance text model must not spoil it
    assert (got.loc[truth.index, "consensus_label"] == truth).mean() > 0.91
