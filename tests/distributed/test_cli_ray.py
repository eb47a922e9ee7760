"""``--backend ray`` end to end: the same files as the local run (the session's cluster)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

import truelabel.encode as encode
from truelabel.cli import app
from truelabel.distributed import RayBackend

from ..test_cli_backend import audit_args, write_annotations, write_feature_csv
from ..test_cli_text_backend import args, write_text_csv

runner = CliRunner()


def test_audit_and_consensus_on_ray_equal_local(ray_backend: Any, tmp_path: Path) -> None:
    data = write_feature_csv(tmp_path / "d.csv")
    for out, extra in (("a", []), ("b", ["--backend", "ray", "--chunk-size", "64"])):
        res = runner.invoke(app, audit_args(data, tmp_path / out, *extra))
        assert res.exit_code == 0, res.output
    pd.testing.assert_frame_equal(
        pd.read_csv(tmp_path / "a" / "issues.csv"),
        pd.read_csv(tmp_path / "b" / "issues.csv"),
        check_exact=False,
        rtol=1e-9,
    )
    assert "ray (local cluster), chunks of 64 rows" in (tmp_path / "b" / "report.html").read_text()
    ann = write_annotations(tmp_path / "ann.csv")
    for out, extra in (("c", []), ("d", ["--backend", "ray", "--chunk-size", "16"])):
        res = runner.invoke(app, ["consensus", str(ann), "--out", str(tmp_path / out), *extra])
        assert res.exit_code == 0, res.output
    pd.testing.assert_frame_equal(
        pd.read_csv(tmp_path / "c" / "consensus.csv"),
        pd.read_csv(tmp_path / "d" / "consensus.csv"),
        check_exact=False,
        rtol=1e-9,
    )


def test_text_audit_encodes_on_ray_and_equals_local(
    ray_backend: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    pytest.importorskip("onnxruntime", reason="the [text] extra is not installed")
    built: list[Any] = []
    real = encode.load_encoder

    def spy(spec: Any = None, **options: Any) -> Any:
        built.append(options.get("backend"))
        return real(spec, **options)

    monkeypatch.setattr(encode, "load_encoder", spy)
    data = write_text_csv(tmp_path / "t.csv")
    for out, extra in (("a", []), ("b", ["--backend", "ray", "--chunk-size", "32"])):
        res = runner.invoke(app, args(data, tmp_path / out, *extra))
        assert res.exit_code == 0, res.output
    assert any(isinstance(b, RayBackend) for b in built), built
    pd.testing.assert_frame_equal(
        pd.read_csv(tmp_path / "a" / "issues.csv"),
        pd.read_csv(tmp_path / "b" / "issues.csv"),
        check_exact=False,
        rtol=1e-9,
    )
