"""`truelabel audit --judge-url` and `truelabel autolabel --llm-url` on the real SmolLM2 server."""

from __future__ import annotations

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from truelabel.cli import app

from .conftest import MODEL_ALIAS
from .test_real_server import REVIEWS

runner = CliRunner()


def _data(tmp_path):
    rows = [(f"{text} (seen {i})", label) for i in range(4) for text, label in REVIEWS]
    frame = pd.DataFrame(rows, columns=["text", "label"])
    frame.loc[[3, 12], "label"] = ["negative", "positive"]  # two wrong labels
    frame.to_csv(tmp_path / "reviews.csv", index=False)
    return tmp_path / "reviews.csv"


def _args(csv, out):
    return ["audit", str(csv), "--label-col", "label", "--out", str(out), "--encoder", "tfidf"]


def test_audit_judge_scores_the_top_doubtful_labels(llama_server, tmp_path):
    csv = _data(tmp_path)
    judge = ["--judge-url", llama_server, "--judge-model", MODEL_ALIAS, "--judge-top", "4",
             "--judge-method", "both"]  # fmt: skip
    res = runner.invoke(app, [*_args(csv, tmp_path / "out"), "--text-col", "text", *judge])
    assert res.exit_code == 0, res.output
    assert "LLM judge re-checked 4 of the most doubtful labels" in res.output
    issues = pd.read_csv(tmp_path / "out" / "issues.csv")
    judged = issues[issues["judge_score"].notna()]
    # exactly the 4 lowest label scores were asked about, and each answer is a probability
    lowest = issues.sort_values("label_score", kind="stable").head(4)["row"]
    assert sorted(judged["row"]) == sorted(lowest)
    assert ((judged["judge_score"] >= 0) & (judged["judge_score"] <= 1)).all()
    summary = (tmp_path / "out" / "summary.json").read_text()
    assert f"{MODEL_ALIAS} at {llama_server}, method both" in summary


def test_audit_judge_refusals(tmp_path):
    csv = _data(tmp_path)
    url = ["--judge-url", "http://127.0.0.1:9/v1"]
    res = runner.invoke(app, [*_args(csv, tmp_path / "a"), *url])
    assert res.exit_code == 2 and "--judge-url: given without --text-col" in res.output
    res = runner.invoke(app, [*_args(csv, tmp_path / "b"), "--text-col", "text", *url])
    assert res.exit_code == 2 and "TRUELABEL_LLM_MODEL is not set" in res.output
    url += ["--judge-model", "m"]
    res = runner.invoke(app, [*_args(csv, tmp_path / "b"), "--text-col", "text", *url])
    assert res.exit_code != 0 and "127.0.0.1:9" in res.output  # unreachable: said, not hidden
    assert not (tmp_path / "b" / "issues.csv").exists()  # nothing half-written
    bad_top = [*url, "--judge-top", "0"]
    res = runner.invoke(app, [*_args(csv, tmp_path / "c"), "--text-col", "text", *bad_top])
    assert res.exit_code == 2 and "--judge-top: got 0" in res.output
    bad_method = [*url, "--judge-method", "vote"]
    res = runner.invoke(app, [*_args(csv, tmp_path / "d"), "--text-col", "text", *bad_method])
    assert res.exit_code == 2 and "--judge-method: got 'vote'; pass classify, verify" in res.output


def test_autolabel_with_the_llm(llama_server, tmp_path):
    csv = _data(tmp_path)
    frame = pd.read_csv(csv)
    frame.loc[8:, "label"] = None  # 8 labeled rows, 24 to label
    frame.to_csv(csv, index=False)
    (tmp_path / "classes.txt").write_text("positive\nnegative\n")
    args = ["autolabel", str(csv), "--text-col", "text", "--classes", str(tmp_path / "classes.txt")]
    llm = ["--llm-url", llama_server, "--llm-model", MODEL_ALIAS]
    res = runner.invoke(app, [*args, "--out", str(tmp_path / "o"), "--label-col", "label", *llm])
    assert res.exit_code == 0, res.output
    labels = pd.read_csv(tmp_path / "o" / "labels.csv")
    assert labels["method"].tolist() == ["given"] * 8 + ["llm"] * 24
    assert labels["label"].isin(["positive", "negative"]).all()
    probs = np.load(tmp_path / "o" / "pred_probs.npy")
    assert probs.shape == (32, 2) and np.allclose(probs.sum(axis=1), 1.0)
    again = runner.invoke(app, [*args, "--out", str(tmp_path / "z"), *llm])  # no labels
    assert again.exit_code == 0, again.output
    assert set(pd.read_csv(tmp_path / "z" / "labels.csv")["method"]) == {"llm zero-shot"}
    both = runner.invoke(app, [*args, "--out", str(tmp_path / "x"), *llm, "--encoder", "tfidf"])
    assert both.exit_code == 2 and "--encoder: given with --llm-url" in both.output
    alone = runner.invoke(app, [*args, "--out", str(tmp_path / "y"), "--llm-model", "m"])
    assert alone.exit_code == 2 and "--llm-model: given without --llm-url" in alone.output
