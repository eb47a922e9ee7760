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
    z = rng.normal(size=(n, k)) + 2.5 * np.eye(k)[true]
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


def _run(d, *extra):
    return runner.invoke(
        app,
        [
            "certify",
            "--pred-probs",
            str(d / "pool.npy"),
            "--calibration-pred-probs",
            str(d / "cal.npy"),
            "--calibration-labels",
            str(d / "cal.csv"),
            *extra,
        ],
    )


def test_certify_writes_decisions(files):
    d, pool, pool_true = files
    out = d / "out"
    res = _run(d, "--max-error", "0.02", "--confidence", "0.95", "--out", str(out))
    assert res.exit_code == 0, res.output
    dec = pd.read_csv(out / "decisions.csv")
    assert {"label", "accepted", "reason", "prediction_set", "threshold"} <= set(dec)
    assert len(dec) == 2000
    acc = dec["accepted"].to_numpy()
    cert = json.loads((out / "certificate.json").read_text())
    assert cert["certified"] is True and cert["guarantee"] == "rate"
    assert cert["n_accepted"] == acc.sum() and cert["coverage"] == pytest.approx(acc.mean())
    assert 0.5 < acc.mean() < 1.0  # something is left for review
    # accepted exactly at or above the certified threshold
    assert (acc == (pool.max(axis=1) >= cert["threshold"])).all()
    names = np.array(["ant", "bee", "cow"])
    realized = (dec.loc[acc, "label"].to_numpy() != names[pool_true[acc]]).mean()
    assert realized <= 0.02 and cert["certified_error_bound"] <= 0.02
    assert " ".join(res.output.split()).startswith(
        f"certified: auto-labeled {acc.sum()} of 2000 items"
    )
    assert dec["prediction_set"].str.len().gt(0).all()


@pytest.fixture(scope="module")
def readme_files(tmp_path_factory):
    """The README quickstart: digits, labels with 10% noise to train on, ~900 reviewed
    calibration items and ~900 pool items."""
    from sklearn.datasets import load_digits

    import truelabel as tl
    from truelabel.datasets import make_noisy_labels

    X, y = load_digits(return_X_y=True)
    noisy, _ = make_noisy_labels(y, noise_rate=0.1, random_state=0)
    pred_probs, _ = tl.out_of_fold_pred_probs(X, noisy, random_state=0)
    idx = np.random.default_rng(0).permutation(len(y))
    cal, pool = idx[:900], idx[900:]
    d = tmp_path_factory.mktemp("readme")
    np.save(d / "cal.npy", pred_probs[cal])
    np.save(d / "pool.npy", pred_probs[pool])
    pd.DataFrame({"label": y[cal]}).to_csv(d / "cal.csv", index=False)
    return d, y[pool]


def test_readme_quickstart_never_says_certified_without_accepting(readme_files):
    """Observation 1: the pool guarantee printed "certified" and auto-labeled 0 of 897."""
    d, pool_true = readme_files
    res = _run(d, "--guarantee", "pool", "--out", str(d / "pool_out"))
    assert res.exit_code == 0, res.output
    cert = json.loads((d / "pool_out" / "certificate.json").read_text())
    dec = pd.read_csv(d / "pool_out" / "decisions.csv")
    text = " ".join(res.output.split())
    assert cert["n_accepted"] == 0 and cert["certified"] is False and cert["coverage"] == 0
    assert text.startswith("nothing certified: auto-labeled 0 of 897 items")
    assert f"about {cert['n_more_needed']} more reviewed items" in text
    assert cert["n_more_needed"] > 0 and cert["other_guarantee_accepted"] > 600
    assert f"guarantee='rate' would auto-label {cert['other_guarantee_accepted']} items now" in text
    assert dec["reason"].str.contains("more reviewed items").all()
    # the default (rate) certifies a non-empty set here, with a small real error
    res = _run(d, "--out", str(d / "rate_out"))
    cert = json.loads((d / "rate_out" / "certificate.json").read_text())
    dec = pd.read_csv(d / "rate_out" / "decisions.csv")
    acc = dec["accepted"].to_numpy()
    assert cert["certified"] is True and cert["guarantee"] == "rate" and acc.mean() > 0.7
    assert (dec.loc[acc, "label"].to_numpy() != pool_true[acc]).mean() <= 0.02


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
    out = ["--out", str(d / "o")]
    cases = [
        (["--label-col", "lbl"], "no column named 'lbl'"),
        (["--confidence", "95"], "--confidence: got 95.0"),
        (["--guarantee", "both"], "guarantee: got 'both'"),
        (["--max-error", "0"], r"max_error: got 0.0, expected a value in (0, 1)"),
        (["--classes", "ant,bee"], "label 'cow', which is not in classes"),
    ]
    for extra, message in cases:
        res = _run(d, *extra, *out)
        assert res.exit_code == 2, (extra, res.output)
        assert message in " ".join(res.output.split()), (extra, res.output)
        assert "Traceback" not in res.output
        assert res.exception is None or isinstance(res.exception, SystemExit)
    base = ["certify", "--pred-probs", str(d / "pool.npy"), *out]
    res = runner.invoke(
        app,
        [*base, "--calibration-pred-probs", str(d / "cal.npy"), "--calibration-labels", "nope.csv"],
    )
    assert res.exit_code == 2 and "does not exist" in res.output
    np.save(d / "short.npy", np.full((10, 3), 1 / 3))
    res = runner.invoke(
        app,
        [
            *base,
            "--calibration-pred-probs",
            str(d / "short.npy"),
            "--calibration-labels",
            str(d / "cal.csv"),
        ],
    )
    assert res.exit_code == 2 and "calibration_labels: has 3000 items, expected 10" in res.output
    assert not (d / "o" / "decisions.csv").exists()


def test_certify_checks_out_before_computing_and_refuses_earlier_results(files, monkeypatch):
    d, _, _ = files
    out = d / "out"
    assert _run(d, "--out", str(out)).exit_code == 0
    before = (out / "certificate.json").read_text()

    # a second run into the same folder is refused, before any work, files untouched
    import truelabel.autolabel._step as step

    def boom(*args, **kwargs):
        raise AssertionError("certify computed before checking --out")

    monkeypatch.setattr(step, "certify_pool", boom)
    res = _run(d, "--max-error", "0.05", "--out", str(out))
    assert res.exit_code == 2
    flat = " ".join(res.output.split())
    assert "--out" in flat and "--overwrite" in flat and "Traceback" not in res.output
    assert (out / "certificate.json").read_text() == before

    # --out naming a file: refused before any work too
    res = _run(d, "--out", str(d / "cal.csv"))
    assert res.exit_code == 2 and "is a file" in " ".join(res.output.split())
    monkeypatch.undo()

    res = _run(d, "--max-error", "0.05", "--out", str(out), "--overwrite")
    assert res.exit_code == 0, res.output
    after = json.loads((out / "certificate.json").read_text())
    assert after["max_error"] == 0.05 and (out / "certificate.json").read_text() != before
