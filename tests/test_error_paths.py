"""Error paths not covered elsewhere, each pinned by its message."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from truelabel import Audit, TruelabelWarning, ValidationError, build_knn_graph
from truelabel.cli import app
from truelabel.encode import PrecomputedEncoder
from truelabel.pipeline import write_audit


def test_output_directory_that_is_a_file(tmp_path):
    rng = np.random.default_rng(0)
    with pytest.warns(TruelabelWarning, match="estimated label noise rate is 54.0%, above 50%"):
        res = Audit({"label": {}}).run(
            labels=rng.integers(0, 2, 50), features=rng.normal(size=(50, 3))
        )
    target = tmp_path / "out"
    target.write_text("not a directory")
    with pytest.raises(ValidationError, match="out: .* is a file; pass a directory path"):
        write_audit(res, target)
    assert target.read_text() == "not a directory"  # left untouched


def test_certify_output_directory_that_is_a_file(tmp_path):
    from truelabel.autolabel._step import certify_pool
    from truelabel.certification import write_certify

    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(3), size=200)
    result = certify_pool(p, p, p.argmax(axis=1), max_error=0.1)
    target = tmp_path / "out"
    target.write_text("x")
    with pytest.raises(ValidationError, match="out: .* is a file"):
        write_certify(result, target)


def test_certify_rejects_a_file_that_is_not_npy(tmp_path):
    bad = tmp_path / "pool.npy"
    bad.write_text("hello")
    np.save(tmp_path / "cal.npy", np.full((4, 2), 0.5))
    (tmp_path / "cal.csv").write_text("label\na\nb\na\nb\n")
    res = CliRunner().invoke(
        app,
        [
            "certify",
            "--pred-probs",
            str(bad),
            "--calibration-pred-probs",
            str(tmp_path / "cal.npy"),
            "--calibration-labels",
            str(tmp_path / "cal.csv"),
            "--out",
            str(tmp_path / "o"),
        ],
    )
    out = " ".join(res.output.split())
    assert res.exit_code == 2
    assert "--pred-probs:" in out and "is not a .npy array of numbers; save probabilities" in out
    assert "allow_pickle" not in out


def test_precomputed_encoder_length_mismatch():
    with pytest.raises(ValidationError, match="vectors: 1 rows for 2 texts; pass one row per text"):
        PrecomputedEncoder(["a", "b"], np.zeros((1, 3)))


def test_features_must_be_numeric():
    with pytest.raises(ValidationError, match="features: dtype <U1 is not numeric"):
        build_knn_graph(np.array([["a", "b"], ["c", "d"], ["e", "f"]]), n_neighbors=1)


def test_audit_needs_some_input():
    with pytest.raises(ValidationError, match="data: no labels, pred_probs or features"):
        Audit().run()


def test_audit_pred_probs_file_errors(tmp_path):
    (tmp_path / "d.csv").write_text("label,f\na,1\nb,2\na,3\nb,4\n")
    base = ["audit", str(tmp_path / "d.csv"), "--label-col", "label", "--out", str(tmp_path / "o")]
    res = CliRunner().invoke(app, [*base, "--pred-probs", str(tmp_path / "missing.npy")])
    assert res.exit_code == 2 and "does not exist" in " ".join(res.output.split())
    (tmp_path / "bad.npy").write_text("junk")
    res = CliRunner().invoke(app, [*base, "--pred-probs", str(tmp_path / "bad.npy")])
    assert res.exit_code == 2 and "not a .npy array" in " ".join(res.output.split())


def test_cli_does_not_leave_progress_switched_on(tmp_path):
    import truelabel._progress as prog

    before = prog._ENABLED
    (tmp_path / "d.csv").write_text("label,f\na,1\nb,2\na,3\nb,4\n")
    CliRunner().invoke(
        app,
        ["audit", str(tmp_path / "d.csv"), "--label-col", "label", "--out", str(tmp_path / "o")],
    )
    assert prog._ENABLED == before
