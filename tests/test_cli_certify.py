from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from truelabel.cli import app

runner = CliRunner()


def _probs(n, rng, k=3):
    true = rng.integers(0, k, n)
    z = rng.normal(size=(n, k)) + 4.0 * np.eye(k)[true]
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    return p, true


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(0)
    cal, y = _probs(3000, rng)
    pool, pool_true = _probs(2000, rng)
    np.save(tmp_path / "cal.npy", cal)
    np.save(tmp_path / "pool.npy", pool)
    names = np.array(["ant", "bee", "cow"])
    pd.DataFrame({"label": names[y]}).to_csv(tmp_path / "cal.csv", index=False)
    return tmp_path, pool, pool_true


def test_certify_writes_decisions(files):
    d, pool, pool_true = files
    out = d / "out"
    res = runner.invoke(
        app,
        [
            "certify",
            "--pred-probs",
            str(d / "pool.npy"),
            "--calibration-pred-probs",
            str(d / "cal.npy"),
            "--calibration-labels",
            str(d / "cal.csv"),
            "--max-error",
            "0.02",
            "--confidence",
            "0.95",
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "coverage" in res.output and "certified error <=" in res.output
    dec = pd.read_csv(out / "decisions.csv")
    assert {"label", "accepted", "reason", "prediction_set"} <= set(dec)
    assert len(dec) == 2000
    acc = dec["accepted"].to_numpy()
    assert 0.3 < acc.mean() <= 1.0
    names = np.array(["ant", "bee", "cow"])
    realized = (dec.loc[acc, "label"].to_numpy() != names[pool_true[acc]]).mean()
    assert realized <= 0.03
    assert dec["prediction_set"].str.len().gt(0).all()
    cert = json.loads((out / "certificate.json").read_text())
    assert cert["certified"] and cert["certified_error_bound"] <= 0.02


def test_certify_accepts_audit_output(files, tmp_path):
    d, _, _ = files
    from truelabel.cli import app as cli

    rng = np.random.default_rng(1)
    X = rng.normal(size=(900, 3))
    y = (X[:, 0] > 0).astype(int)
    df = pd.DataFrame(X, columns=["f_0", "f_1", "f_2"])
    df["label"] = np.where(y == 1, "pos", "neg")
    df.to_csv(tmp_path / "data.csv", index=False)
    audit_out = tmp_path / "audit"
    assert (
        runner.invoke(
            cli,
            [
                "audit",
                str(tmp_path / "data.csv"),
                "--label-col",
                "label",
                "--feature-cols",
                "f_*",
                "--out",
                str(audit_out),
                "--quiet",
            ],
        ).exit_code
        == 0
    )
    assert (audit_out / "pred_probs.npy").is_file()
    res = runner.invoke(
        cli,
        [
            "certify",
            "--pred-probs",
            str(audit_out / "pred_probs.npy"),
            "--calibration-pred-probs",
            str(audit_out / "pred_probs.npy"),
            "--calibration-labels",
            str(audit_out / "issues.csv"),
            "--max-error",
            "0.05",
            "--out",
            str(tmp_path / "cert"),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "not human-verified" in res.output
    dec = pd.read_csv(tmp_path / "cert" / "decisions.csv")
    assert set(dec["label"]) <= {"neg", "pos"}


def test_certify_errors(files):
    d, _, _ = files
    base = [
        "certify",
        "--pred-probs",
        str(d / "pool.npy"),
        "--calibration-pred-probs",
        str(d / "cal.npy"),
        "--out",
        str(d / "o"),
    ]
    res = runner.invoke(
        app, [*base, "--calibration-labels", str(d / "cal.csv"), "--label-col", "lbl"]
    )
    assert res.exit_code == 2 and "no column named 'lbl'" in res.output
    res = runner.invoke(
        app, [*base, "--calibration-labels", str(d / "cal.csv"), "--confidence", "95"]
    )
    assert res.exit_code == 2 and "--confidence: got 95.0" in res.output
    res = runner.invoke(app, [*base, "--calibration-labels", str(d / "missing.csv")])
    assert res.exit_code == 2 and "does not exist" in res.output
    np.save(d / "short.npy", np.full((10, 3), 1 / 3))
    res = runner.invoke(
        app,
        [
            "certify",
            "--pred-probs",
            str(d / "pool.npy"),
            "--calibration-pred-probs",
            str(d / "short.npy"),
            "--calibration-labels",
            str(d / "cal.csv"),
            "--out",
            str(d / "o"),
        ],
    )
    assert res.exit_code == 2 and "calibration_labels: has 3000 items, expected 10" in res.output
    assert not (d / "o" / "decisions.csv").exists()
