from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from truelabel.cli import app
from truelabel.datasets import make_noisy_labels

runner = CliRunner()


@pytest.fixture
def feature_csv(tmp_path):
    rng = np.random.default_rng(0)
    n, k = 600, 3
    centers = rng.normal(scale=5.0, size=(k, 4))
    y = rng.integers(0, k, n)
    X = centers[y] + rng.normal(size=(n, 4))
    noisy, flipped = make_noisy_labels(y, noise_rate=0.1, random_state=0)
    names = np.array(["cat", "dog", "<b>bird</b>"])
    df = pd.DataFrame(X, columns=[f"f_{i}" for i in range(4)])
    df.insert(0, "label", names[noisy])
    df.insert(0, "item", [f"id{i}" for i in range(n)])
    path = tmp_path / "data.csv"
    df.to_csv(path, index=False)
    return path, flipped


def test_audit_features_writes_three_files(feature_csv, tmp_path):
    path, flipped = feature_csv
    out = tmp_path / "out"
    res = runner.invoke(
        app,
        [
            "audit",
            str(path),
            "--label-col",
            "label",
            "--feature-cols",
            "f_*",
            "--id-col",
            "item",
            "--out",
            str(out),
            "--quiet",
        ],
    )
    assert res.exit_code == 0, res.output
    issues = pd.read_csv(out / "issues.csv")
    assert len(issues) == 600
    assert issues["label_score"].is_monotonic_increasing
    assert {"id", "given_label", "suggested_label", "is_label_issue"} <= set(issues)
    flagged = set(issues.loc[issues["is_label_issue"], "id"])
    truth = {f"id{i}" for i in np.flatnonzero(flipped)}
    assert len(flagged & truth) / len(flagged) > 0.8
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_items"] == 600 and summary["issue_counts"]["label"] == len(flagged)
    html = (out / "report.html").read_text()
    assert "<b>bird</b>" not in html and "&lt;b&gt;bird&lt;/b&gt;" in html
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temp files left


def test_audit_text_column(tmp_path):
    texts = (
        ["my card never arrived"] * 40
        + ["please refund my payment"] * 40
        + ["how do I change my pin"] * 40
    )
    labels = ["card"] * 40 + ["refund"] * 40 + ["pin"] * 40
    labels[3] = "refund"
    rng = np.random.default_rng(0)
    texts = [f"{t} {w}" for t, w in zip(texts, rng.choice(["now", "today", "asap", "thanks"], 120))]
    path = tmp_path / "t.jsonl"
    pd.DataFrame({"text": texts, "intent": labels}).to_json(path, orient="records", lines=True)
    out = tmp_path / "out"
    res = runner.invoke(
        app,
        [
            "audit",
            str(path),
            "--label-col",
            "intent",
            "--text-col",
            "text",
            "--out",
            str(out),
            "--quiet",
        ],
    )
    assert res.exit_code == 0, res.output
    issues = pd.read_csv(out / "issues.csv")
    assert issues.iloc[0]["id"] == 3 and issues.iloc[0]["suggested_label"] == "card"
    assert "text" in issues


def test_audit_pred_probs_file(feature_csv, tmp_path):
    path, _ = feature_csv
    df = pd.read_csv(path)
    classes = sorted(df["label"].unique())
    probs = np.full((len(df), 3), 0.1)
    probs[np.arange(len(df)), [classes.index(c) for c in df["label"]]] = 0.8
    npy = tmp_path / "p.npy"
    np.save(npy, probs)
    out = tmp_path / "out"
    res = runner.invoke(
        app,
        [
            "audit",
            str(path),
            "--label-col",
            "label",
            "--pred-probs",
            str(npy),
            "--out",
            str(out),
            "--quiet",
        ],
    )
    assert res.exit_code == 0, res.output
    assert pd.read_csv(out / "issues.csv")["is_label_issue"].sum() == 0


def test_audit_clear_errors(feature_csv, tmp_path):
    path, _ = feature_csv
    out = tmp_path / "out"
    res = runner.invoke(
        app,
        [
            "audit",
            str(path),
            "--label-col",
            "lable",
            "--feature-cols",
            "f_*",
            "--out",
            str(out),
            "--quiet",
        ],
    )
    assert res.exit_code == 2
    assert "no column named 'lable'" in res.output and "did you mean 'label'" in res.output
    assert not out.exists()
    npy = tmp_path / "bad.npy"
    np.save(npy, np.full((5, 3), 1 / 3))
    res = runner.invoke(
        app,
        [
            "audit",
            str(path),
            "--label-col",
            "label",
            "--pred-probs",
            str(npy),
            "--out",
            str(out),
            "--quiet",
        ],
    )
    assert res.exit_code == 2 and "pred_probs: has 5 rows" in res.output
    res = runner.invoke(
        app, ["audit", str(path), "--label-col", "label", "--out", str(out), "--quiet"]
    )
    assert res.exit_code == 2 and "--text-col, --feature-cols or --pred-probs" in res.output


def test_interrupted_write_keeps_previous_outputs(feature_csv, tmp_path, monkeypatch):
    path, _ = feature_csv
    out = tmp_path / "out"
    args = [
        "audit",
        str(path),
        "--label-col",
        "label",
        "--feature-cols",
        "f_*",
        "--out",
        str(out),
        "--quiet",
    ]
    assert runner.invoke(app, args).exit_code == 0
    before = (out / "report.html").read_bytes()

    import truelabel.report as report

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(report, "render_report", boom)
    monkeypatch.setattr("truelabel.report._html.render_report", boom)
    res = runner.invoke(app, [*args, "--overwrite"])
    assert res.exit_code == 130
    assert (out / "report.html").read_bytes() == before
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_demo_runs_and_scores(tmp_path):
    out = tmp_path / "demo"
    res = runner.invoke(app, ["demo", "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    assert "precision" in res.output
    assert (out / "report.html").stat().st_size > 1000
    from truelabel.demo import run_demo

    scores = run_demo(tmp_path / "d2", noise_rate=0.08, random_state=0)
    assert scores["precision"] > 0.85 and scores["recall"] > 0.75 and scores["auprc"] > 0.9
