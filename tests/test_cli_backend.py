"""``--backend``, ``--address``, ``--chunk-size`` of ``truelabel audit`` and ``consensus``:
passed down to the steps (same files for any chunk size), errors naming the flag.
The Ray runs are in ``tests/distributed/test_cli_ray.py`` (loopback-only namespace)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from truelabel.backend import Chunk, LocalBackend
from truelabel.cli import app
from truelabel.datasets import make_noisy_labels

runner = CliRunner()


def write_feature_csv(path: Path) -> Path:
    rng = np.random.default_rng(0)
    n, k = 300, 3
    centers = rng.normal(scale=5.0, size=(k, 4))
    y = rng.integers(0, k, n)
    X = centers[y] + rng.normal(size=(n, 4))
    X[5] = X[4]  # a near-duplicate pair
    noisy, _ = make_noisy_labels(y, noise_rate=0.1, random_state=0)
    df = pd.DataFrame(X, columns=[f"f_{i}" for i in range(4)])
    df.insert(0, "label", np.array(["cat", "dog", "bird"])[noisy])
    df.insert(0, "item", [f"id{i}" for i in range(n)])
    df.to_csv(path, index=False)
    return path


def write_annotations(path: Path) -> Path:
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 3, 90)
    rows = []
    for i in range(90):
        for j in rng.choice(5, 3, replace=False):
            lab = truth[i] if rng.random() < 0.8 else rng.integers(0, 3)
            rows.append((f"i{i}", f"w{j}", f"c{lab}"))
    pd.DataFrame(rows, columns=["item_id", "annotator_id", "label"]).to_csv(path, index=False)
    return path


def audit_args(data: Path, out: Path, *extra: str) -> list[str]:
    return [
        "audit", str(data), "--label-col", "label", "--feature-cols", "f_*", "--id-col", "item",
        "--out", str(out), "--quiet", *extra,
    ]  # fmt: skip


@pytest.fixture
def chunk_lengths(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Lengths of every chunk LocalBackend is given (the CLI's backend is a LocalBackend)."""
    seen: list[int] = []
    real = LocalBackend.map

    def spy(self: LocalBackend, fn: Any, chunks: list[Chunk], shared: Any) -> Any:
        seen.extend(len(c) for c in chunks)
        return real(self, fn, chunks, shared)

    monkeypatch.setattr(LocalBackend, "map", spy)
    return seen


def test_audit_chunk_size_reaches_the_steps_and_changes_nothing(
    tmp_path: Path, chunk_lengths: list[int]
) -> None:
    data = write_feature_csv(tmp_path / "d.csv")
    res = runner.invoke(app, audit_args(data, tmp_path / "a"))
    assert res.exit_code == 0, res.output
    assert 37 not in chunk_lengths
    chunk_lengths.clear()
    res = runner.invoke(
        app, audit_args(data, tmp_path / "b", "--backend", "local", "--chunk-size", "37")
    )
    assert res.exit_code == 0, res.output
    # the kNN graph, kNN labels, blend, confident learning, scores, duplicates: 300 rows in 37s
    assert chunk_lengths.count(37) >= 6 * 8, chunk_lengths
    for name in ("issues.csv",):
        a = pd.read_csv(tmp_path / "a" / name)
        b = pd.read_csv(tmp_path / "b" / name)
        pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-12)
    assert "chunks of 37 rows" in (tmp_path / "b" / "report.html").read_text()
    assert "chunks of" not in (tmp_path / "a" / "report.html").read_text()


def test_consensus_chunk_size_reaches_em_and_changes_nothing(
    tmp_path: Path, chunk_lengths: list[int]
) -> None:
    ann = write_annotations(tmp_path / "ann.csv")
    res = runner.invoke(app, ["consensus", str(ann), "--out", str(tmp_path / "a")])
    assert res.exit_code == 0, res.output
    assert 7 not in chunk_lengths
    res = runner.invoke(
        app, ["consensus", str(ann), "--out", str(tmp_path / "b"), "--chunk-size", "7"]
    )
    assert res.exit_code == 0, res.output
    assert chunk_lengths.count(7) >= 12  # 90 items in 7s, at least one EM iteration
    a = pd.read_csv(tmp_path / "a" / "consensus.csv")
    b = pd.read_csv(tmp_path / "b" / "consensus.csv")
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-12)


def test_audit_annotations_chunk_size_reaches_em(tmp_path: Path, chunk_lengths: list[int]) -> None:
    ann = write_annotations(tmp_path / "ann.csv")
    args = ["audit", str(ann), "--annotations", "--id-col", "item_id", "--label-col", "label"]
    res = runner.invoke(app, [*args, "--out", str(tmp_path / "b"), "--chunk-size", "7"])
    assert res.exit_code == 0, res.output
    assert chunk_lengths.count(7) >= 12


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--chunk-size", "0"], "error: --chunk-size: got 0; pass a positive number of rows"),
        (["--backend", "spark"], "error: --backend: got 'spark'; pass local or ray"),
        (["--address", "auto"], "error: --address: is for --backend ray; add --backend ray"),
        (
            ["--backend", "ray", "--address", "nowhere"],
            "error: --address: is not a Ray address: 'nowhere'",
        ),
    ],
)
def test_bad_backend_flags_name_the_flag(tmp_path: Path, extra: list[str], message: str) -> None:
    data = write_feature_csv(tmp_path / "d.csv")
    for args in (
        audit_args(data, tmp_path / "o", *extra),
        [
            "consensus",
            str(write_annotations(tmp_path / "a.csv")),
            "--out",
            str(tmp_path / "c"),
            *extra,
        ],
    ):
        res = runner.invoke(app, args)
        assert res.exit_code == 2, res.output
        assert message in " ".join(res.output.split()), res.output
    assert not (tmp_path / "o").exists() and not (tmp_path / "c").exists()


def test_ray_missing_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a)
    )
    data = write_feature_csv(tmp_path / "d.csv")
    res = runner.invoke(app, audit_args(data, tmp_path / "o", "--backend", "ray"))
    assert res.exit_code == 2, res.output
    assert "pip install 'truelabel[distributed]'" in " ".join(res.output.split())


def test_multi_label_refuses_a_backend(tmp_path: Path) -> None:
    ann = write_annotations(tmp_path / "ann.csv")
    res = runner.invoke(
        app,
        ["consensus", str(ann), "--out", str(tmp_path / "c"), "--multi-label", "--chunk-size", "5"],
    )
    assert res.exit_code == 2
    assert "error: --chunk-size: is not yet used with --multi-label" in " ".join(res.output.split())


def test_project_audit_chunk_size_reaches_the_steps_and_changes_nothing(
    tmp_path: Path, chunk_lengths: list[int]
) -> None:
    pytest.importorskip("sqlalchemy", reason="the [app] extra is not installed")
    data = write_feature_csv(tmp_path / "d.csv")
    frame = pd.read_csv(data)
    frame["text"] = [f"item number {i}" for i in range(len(frame))]
    frame.to_csv(tmp_path / "t.csv", index=False)
    np.save(tmp_path / "emb.npy", frame[[f"f_{i}" for i in range(4)]].to_numpy(np.float32))
    project = tmp_path / "proj"
    init = ["init", str(project), "--data", str(tmp_path / "t.csv"), "--label-col", "label"]
    res = runner.invoke(app, [*init, "--text-col", "text", "--id-col", "item"])
    assert res.exit_code == 0, res.output
    audit = ["audit", str(project), "--features", str(tmp_path / "emb.npy"), "--quiet"]
    assert runner.invoke(app, audit).exit_code == 0
    assert 37 not in chunk_lengths
    chunk_lengths.clear()
    res = runner.invoke(app, [*audit, "--backend", "local", "--chunk-size", "37"])
    assert res.exit_code == 0, res.output
    assert chunk_lengths.count(37) >= 6 * 8, chunk_lengths  # 300 rows in chunks of 37
    a = pd.read_csv(project / "runs" / "1" / "issues.csv")
    b = pd.read_csv(project / "runs" / "2" / "issues.csv")
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-12)
    assert "chunks of 37 rows" in (project / "runs" / "2" / "report.html").read_text()
    assert "chunks of" not in (project / "runs" / "1" / "report.html").read_text()


def test_audit_checks_backend_and_chunk_size_before_any_work() -> None:
    from truelabel import Audit
    from truelabel.exceptions import ValidationError

    y = np.array([0, 1, 0, 1])
    p = np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3], [0.4, 0.6]])
    with pytest.raises(ValidationError, match=r"^chunk_size: must be a positive number of rows"):
        Audit(chunk_size=0).run(labels=y, pred_probs=p)
    with pytest.raises(ValidationError, match=r"^backend: unknown backend 'spark'"):
        Audit(backend="spark").run(labels=y, pred_probs=p)
