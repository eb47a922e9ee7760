"""Out-of-core inputs: array / memory-mapped .npy / Parquet sources give the same results,
reads stay within a chunk, bad files are refused by name; the chunk-wise Parquet writer."""

from __future__ import annotations

import gc
import os
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from truelabel import Audit
from truelabel._spill import spill_folder
from truelabel.data import (
    ArraySource,
    NpySource,
    ParquetChunkWriter,
    ParquetSource,
    _source,
    open_source,
    to_array,
    write_parquet_chunks,
)
from truelabel.exceptions import DataFormatError, ValidationError


class CountingSource(ParquetSource):
    """A Parquet source that records the rows of every read."""

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.reads: list[tuple[int, int]] = []

    def read(self, start: int, stop: int) -> np.ndarray:
        self.reads.append((start, stop))
        return super().read(start, stop)


def _probs(n: int, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    X = rng.normal(size=(n, 5)).astype(np.float32) + y[:, None].astype(np.float32)
    logits = rng.normal(size=(n, k)) + 2.0 * np.eye(k)[y]
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y[:10] = (y[:10] + 1) % k  # some wrong labels
    return p.astype(np.float32), X, y


def _write_list(path: Path, arr: np.ndarray, rows_per_group: int) -> None:
    write_parquet_chunks(
        path, ({"v": arr[s : s + rows_per_group]} for s in range(0, len(arr), rows_per_group))
    )


@pytest.fixture
def files(tmp_path: Path) -> dict[str, object]:
    p, X, y = _probs(600, 3)
    np.save(tmp_path / "p.npy", p)
    np.save(tmp_path / "x.npy", X)
    _write_list(tmp_path / "p.parquet", p, 97)
    _write_list(tmp_path / "x.parquet", X, 128)
    frame = pd.DataFrame({f"p_{k}": p[:, k] for k in range(3)})
    pq.write_table(pa.Table.from_pandas(frame), tmp_path / "cols.parquet", row_group_size=50)
    return {"p": p, "X": X, "y": y, "dir": tmp_path}


@pytest.mark.parametrize("spec", ["p.npy", "p.parquet:v", "cols.parquet:p_0,p_1,p_2"])
def test_every_source_reads_the_same_rows_and_pickles_without_its_data(
    files: dict[str, object], spec: str
) -> None:
    p = files["p"]
    assert isinstance(p, np.ndarray)
    src = open_source(str(files["dir"] / spec))  # type: ignore[operator]
    assert src.shape == p.shape
    for start, stop in [(0, 1), (95, 99), (96, 97), (0, 600), (590, 600), (599, 700), (5, 5)]:
        np.testing.assert_array_equal(src.read(start, stop), p[start:stop])
    blob = pickle.dumps(src)
    assert len(blob) < 2000  # the path and column spec, not 600 x 3 floats
    np.testing.assert_array_equal(pickle.loads(blob).read(300, 400), p[300:400])
    np.testing.assert_array_equal(to_array(src, chunk_size=41), p)


def test_npy_stays_memory_mapped_and_arrays_pass_through(files: dict[str, object]) -> None:
    arr = to_array(str(files["dir"] / "p.npy"))  # type: ignore[operator]
    assert isinstance(arr, np.memmap)
    p = files["p"]
    assert to_array(p) is p
    assert isinstance(open_source(p), ArraySource)
    assert isinstance(open_source(files["dir"] / "p.npy"), NpySource)  # type: ignore[operator]


def test_to_array_reads_parquet_at_most_chunk_size_rows_at_a_time(files: dict[str, object]) -> None:
    src = CountingSource(files["dir"] / "p.parquet", "v")  # type: ignore[operator]
    out = to_array(src, chunk_size=64)
    assert max(stop - start for start, stop in src.reads) <= 64
    assert sum(stop - start for start, stop in src.reads) == 600  # every row read once
    np.testing.assert_array_equal(out, files["p"])
    assert isinstance(out, np.memmap)  # the copy is a scratch file, not memory
    name = str(out.filename)
    assert os.path.dirname(name) == spill_folder() and os.path.isfile(name)
    assert not out.flags.writeable  # what the passes read, never write
    del out
    gc.collect()
    assert not os.path.exists(name)  # deleted with the array


_ISSUES = {"label": {}, "outlier": {}, "near_duplicate": {}}


def _audit(p: object, X: object, y: np.ndarray) -> pd.DataFrame:
    return Audit(_ISSUES, random_state=0).run(labels=y, pred_probs=p, features=X).issues


def test_audit_from_npy_and_parquet_equals_the_in_memory_audit(
    files: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    d, y = files["dir"], files["y"]
    assert isinstance(d, Path) and isinstance(y, np.ndarray)
    ref = _audit(files["p"], files["X"], y)
    assert ref["is_label_issue"].iloc[:10].sum() >= 5  # the audit finds the planted errors
    pd.testing.assert_frame_equal(_audit(str(d / "p.npy"), d / "x.npy", y), ref)
    monkeypatch.setattr(_source, "DEFAULT_CHUNK_ROWS", 50)
    p_src = CountingSource(d / "cols.parquet", ["p_0", "p_1", "p_2"], argument="pred_probs")
    x_src = CountingSource(d / "x.parquet", "v", argument="features")
    pd.testing.assert_frame_equal(_audit(p_src, x_src, y), ref)
    for src in (p_src, x_src):  # the driver never read more than one chunk at a time
        assert src.reads and max(stop - start for start, stop in src.reads) <= 50
        assert sum(stop - start for start, stop in src.reads) == 600


def test_bad_parquet_inputs_are_refused_naming_the_argument(tmp_path: Path) -> None:
    table = pa.table(
        {
            "v": pa.array([[0.5, 0.5], [0.2, 0.8], [1.0]]),
            "name": pa.array(["a", "b", "c"]),
            "p_0": pa.array([0.5, None, 0.1]),
        }
    )
    pq.write_table(table, tmp_path / "bad.parquet")
    bad = str(tmp_path / "bad.parquet")
    with pytest.raises(
        ValidationError, match=r"pred_probs: .* has no column 'vv'; did you mean 'v'"
    ):
        open_source(f"{bad}:vv", argument="pred_probs")
    with pytest.raises(ValidationError, match=r"pred_probs: column 'name' .* holds string, not"):
        open_source(f"{bad}:name", argument="pred_probs")
    with pytest.raises(ValidationError, match=r"features: .*names no column; pass .*:COLUMN"):
        open_source(bad, argument="features")
    src = open_source(f"{bad}:v", argument="pred_probs")
    with pytest.raises(
        ValidationError, match=r"pred_probs: .*vector of length 1 at row 2, expected 2"
    ):
        src.read(0, 3)
    with pytest.raises(ValidationError, match=r"features: column 'p_0' .* is null at row 1"):
        to_array(ParquetSource(bad, ["p_0"], argument="features"))
    with pytest.raises(DataFormatError, match=r"pred_probs: file .*nope.npy' does not exist"):
        open_source(tmp_path / "nope.npy", argument="pred_probs")
    with pytest.raises(ValidationError, match=r"pred_probs: .*neither a .npy file nor a Parquet"):
        open_source(tmp_path / "p.csv", argument="pred_probs")
    np.save(tmp_path / "s.npy", np.array(["a", "b"]))
    with pytest.raises(ValidationError, match=r"pred_probs: .*holds dtype <U1, not numbers"):
        open_source(tmp_path / "s.npy", argument="pred_probs")


def test_audit_refuses_a_parquet_with_the_wrong_shape_or_values(tmp_path: Path) -> None:
    p, X, y = _probs(40, 3)
    _write_list(tmp_path / "p.parquet", p[:, :2] / p[:, :2].sum(1, keepdims=True), 16)
    with pytest.raises(ValidationError, match=r"classes: 3 names for 2 classes"):
        Audit({"label": {}}).run(
            labels=y, pred_probs=str(tmp_path / "p.parquet") + ":v", classes=["a", "b", "c"]
        )
    _write_list(tmp_path / "q.parquet", p * 2, 16)
    with pytest.raises(ValidationError, match=r"pred_probs: value .* at row 0 is outside \[0, 1\]"):
        Audit({"label": {}}).run(labels=y, pred_probs=str(tmp_path / "q.parquet") + ":v")
    _write_list(tmp_path / "x.parquet", X[:30], 16)
    with pytest.raises(
        ValidationError, match=r"features: has 30 items, expected 40; pass one row per item"
    ):
        Audit({"outlier": {}}).run(labels=y, features=str(tmp_path / "x.parquet") + ":v")


def test_chunk_writer_appends_a_row_group_per_chunk_and_is_atomic(tmp_path: Path) -> None:
    target = tmp_path / "out.parquet"
    frames = [
        pd.DataFrame({"i": np.arange(s, s + 3), "score": np.linspace(0, 1, 3)}) for s in (0, 3)
    ]
    write_parquet_chunks(target, iter(frames))
    assert pq.ParquetFile(target).metadata.num_row_groups == 2
    pd.testing.assert_frame_equal(pd.read_parquet(target), pd.concat(frames, ignore_index=True))
    vec = np.arange(12, dtype=np.float32).reshape(6, 2)
    write_parquet_chunks(tmp_path / "v.parquet", ({"v": vec[s : s + 4]} for s in (0, 4)))
    np.testing.assert_array_equal(open_source(str(tmp_path / "v.parquet") + ":v").read(0, 6), vec)
    with pytest.raises(
        ValidationError, match=r"chunk: chunk 1 has columns \['i'\] .*the first had"
    ):
        with ParquetChunkWriter(tmp_path / "mixed.parquet") as w:
            w.write({"i": np.arange(2)})
            w.write({"i": np.arange(2.0)})
    assert not (tmp_path / "mixed.parquet").exists()  # a failed write leaves nothing
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_parquet_read_decodes_only_the_row_groups_that_hold_its_rows(
    files: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    decoded: list[list[int]] = []
    real = pq.ParquetFile.read_row_groups

    def spy(self: pq.ParquetFile, groups: list[int], *args: object, **kwargs: object) -> pa.Table:
        decoded.append(list(groups))
        return real(self, groups, *args, **kwargs)

    monkeypatch.setattr(pq.ParquetFile, "read_row_groups", spy)
    src = open_source(str(files["dir"] / "p.parquet") + ":v")  # type: ignore[operator]
    decoded.clear()
    for start, stop in [(250, 260), (96, 98), (0, 97), (582, 600)]:  # groups of 97 rows
        src.read(start, stop)
    assert decoded == [[2], [0, 1], [0], [6]]


@pytest.mark.parametrize("name", ["local1", "local2", "pickle"])
def test_the_audit_runs_every_pass_on_the_backend_given(
    files: dict[str, object], name: str
) -> None:
    from truelabel.backend import LocalBackend

    from ._backends import PickleBackend

    backend = {"local1": LocalBackend(1), "local2": LocalBackend(2)}.get(name) or PickleBackend()
    y = files["y"]
    assert isinstance(y, np.ndarray)
    ref = _audit(files["p"], files["X"], y)
    got = Audit(_ISSUES, random_state=0, backend=backend).run(
        labels=y, pred_probs=files["p"], features=files["X"]
    )
    pd.testing.assert_frame_equal(got.issues, ref)
    no_probs = Audit({"label": {}}, random_state=0, backend=backend).run(
        labels=y, features=files["X"]
    )
    pd.testing.assert_frame_equal(
        no_probs.issues,
        Audit({"label": {}}, random_state=0).run(labels=y, features=files["X"]).issues,
    )
    if isinstance(backend, PickleBackend):  # kNN, label statistics, scores, oof folds, ...
        assert backend.fns.count("fit_predict_fold") == 1  # the audit without pred_probs
        assert {  # the kNN graph, neighbour labels and blend, confident-learning passes
            "_exact_knn_chunk",
            "_knn_probs_chunk",
            "_blend_chunk",
            "_pass_one_chunk",
            "_confident_chunk",
        } <= set(backend.fns)
    with pytest.raises(ValidationError, match=r"backend: unknown backend 'dask'"):
        Audit(backend="dask").run(labels=y, features=files["X"])


def test_labels_from_files_and_issues_written_a_row_group_per_chunk(
    files: dict[str, object],
) -> None:
    d, y = files["dir"], files["y"]
    assert isinstance(d, Path) and isinstance(y, np.ndarray)
    np.save(d / "y.npy", y)
    pq.write_table(pa.table({"label": y}), d / "y.parquet", row_group_size=64)
    ref = Audit(_ISSUES, random_state=0).run(labels=y, pred_probs=files["p"], features=files["X"])
    for labels in (str(d / "y.npy"), str(d / "y.parquet") + ":label"):
        got = _audit(files["p"], files["X"], labels)  # type: ignore[arg-type]
        pd.testing.assert_frame_equal(got, ref.issues)
    out = ref.to_parquet(d / "issues.parquet", chunk_size=100)
    assert pq.ParquetFile(out).metadata.num_row_groups == 6  # 600 rows
    back = pd.read_parquet(out)
    assert back.columns[0] == "item" and back["item"].tolist() == list(range(600))
    pd.testing.assert_frame_equal(back.drop(columns="item"), ref.issues.reset_index(drop=True))
    pq.write_table(pa.table({"label": y.astype(str)}), d / "ys.parquet")
    with pytest.raises(ValidationError, match=r"labels: column 'label' .* holds string, not"):
        _audit(files["p"], files["X"], str(d / "ys.parquet") + ":label")  # type: ignore[arg-type]


def test_parquet_reads_keep_dtype_offsets_and_name_the_fix(tmp_path: Path) -> None:
    """What the mutants of _source.py left untested: the dtype of mixed and empty reads, a bad
    row found in a read that does not start at 0, each error's fix, to_array's dtype= and its
    1-row, empty and chunk_size=1 inputs."""
    ints = np.arange(6, dtype=np.int32)
    floats = np.linspace(0.0, 1.0, 6, dtype=np.float32)
    pq.write_table(pa.table({"a": ints, "b": floats}), tmp_path / "m.parquet", row_group_size=4)
    src = ParquetSource(tmp_path / "m.parquet", ["a", "b"])
    assert src.dtype == np.float64  # int32 with float32: float64, as numpy would
    got = src.read(3, 6)
    assert got.dtype == np.float64 and got.tolist() == np.column_stack([ints, floats])[3:].tolist()
    empty = src.read(4, 4)
    assert empty.shape == (0, 2) and empty.dtype == np.float64
    assert to_array(src, chunk_size=1).tolist() == np.column_stack([ints, floats]).tolist()
    as32 = to_array(src, chunk_size=4, dtype=np.float32)
    assert (
        as32.dtype == np.float32
        and as32.tolist() == np.column_stack([ints, floats]).astype(np.float32).tolist()
    )
    with pytest.raises(ValidationError, match=r"chunk_size: got 0; pass a positive number"):
        to_array(src, chunk_size=0)
    pq.write_table(pa.table({"a": ints[:1]}), tmp_path / "one.parquet")
    assert to_array(str(tmp_path / "one.parquet:a")).tolist() == [0]
    pq.write_table(pa.table({"a": ints[:0]}), tmp_path / "none.parquet")
    nothing = to_array(str(tmp_path / "none.parquet:a"), dtype=np.int64)
    assert nothing.shape == (0,) and nothing.dtype == np.int64
    vectors = [[0.5, 0.5]] * 5 + [[0.1, 0.2, 0.7]]
    pq.write_table(pa.table({"v": vectors}), tmp_path / "r.parquet", row_group_size=2)
    ragged = ParquetSource(tmp_path / "r.parquet", "v", argument="features")
    assert ragged.read(1, 3).dtype == np.float64
    with pytest.raises(
        ValidationError, match=r"features: .*vector of length 3 at row 5, expected 2.*one length"
    ):
        ragged.read(4, 6)  # the bad row is the read's second
    pq.write_table(pa.table({"p": [0.1, 0.2, 0.3, None]}), tmp_path / "n.parquet")
    with pytest.raises(ValidationError, match=r"'p' of '.*n.parquet' is null at row 3.*drop"):
        ParquetSource(tmp_path / "n.parquet", "p").read(2, 4)
