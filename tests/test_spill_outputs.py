"""Issue 11, outputs over spill files: the audit's issue table, Dawid-Skene's posteriors and
labels are spill files above the threshold (pandas wraps them without a copy), equal value by
value to the in-memory outputs, and are written to Parquet chunk by chunk, atomically."""

from __future__ import annotations

import bisect
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from truelabel import Audit
from truelabel import _spill_frame as sf
from truelabel._spill import is_spilled, scratch, spill_at
from truelabel.aggregate import Annotations, DawidSkene, OneCoinDawidSkene
from truelabel.aggregate._base import break_ties
from truelabel.aggregate._em import VOTE_SHARES, run_em
from truelabel.data import ParquetChunkWriter, write_frame_parquet
from truelabel.detect import _audit
from truelabel.detect._base import AuditContext
from truelabel.exceptions import NotFittedError, ValidationError

NEVER = 1 << 62
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def _file_backed(addresses: list[tuple[int, int]]) -> list[bool]:
    """Per (address, size): whether it lies inside a file-backed mapping (/proc/self/maps)."""
    spans = []
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 5 and parts[4] != "0":
                lo, hi = (int(x, 16) for x in parts[0].split("-"))
                spans.append((lo, hi))
    spans.sort()
    starts = [lo for lo, _ in spans]
    out = []
    for addr, size in addresses:
        i = bisect.bisect_right(starts, addr) - 1
        out.append(i >= 0 and addr + size <= spans[i][1])
    return out


def _arrow_buffers(values: object) -> list[tuple[int, int]]:
    chunks = values._pa_array.chunks  # type: ignore[attr-defined]
    return [(b.address, b.size) for c in chunks for b in c.buffers() if b is not None]


def _naive_names(codes: np.ndarray, names: list[str]) -> list[object]:
    return [names[c] if c >= 0 else None for c in codes.tolist()]


# --- the builders ---------------------------------------------------------------------------


@linux_only
@pytest.mark.parametrize("block", [8, 16, 1 << 16])
@pytest.mark.parametrize("with_missing", [False, True])
def test_spilled_names_equal_a_naive_loop(
    monkeypatch: pytest.MonkeyPatch, block: int, with_missing: bool
) -> None:
    monkeypatch.setattr(sf, "_BLOCK", block)  # 8 rows: one byte of validity bits per block
    names = ["cat", "", "chien é", "猫", "cat"]  # empty, multi-byte, repeated
    rng = np.random.default_rng(block + with_missing)
    codes = rng.integers(-1 if with_missing else 0, len(names), 203)
    codes[:3] = [4, 1, 3]
    if with_missing:
        codes[[5, 8, 16, 202]] = -1
    want = pd.Series(_naive_names(codes, names), dtype="str")
    memory = sf.take_names(codes, names)
    with spill_at(0):
        spilled = sf.take_names(codes, names)
    assert str(spilled.dtype) == str(memory.dtype) == "str"
    for got in (memory, spilled):
        pd.testing.assert_series_equal(pd.Series(got), want, check_exact=True)
    assert spilled._pa_array.num_chunks == 1 and spilled.isna().sum() == (codes < 0).sum()
    assert all(_file_backed(_arrow_buffers(spilled)))
    assert not any(_file_backed(_arrow_buffers(memory)))
    assert pd.Series(spilled).tolist()[:3] == ["cat", "", "猫"]


def test_names_of_no_rows_and_of_all_missing() -> None:
    with spill_at(0):
        none = sf.take_names(np.array([], dtype=np.int64), ["a", "b"])
        lost = sf.take_names(np.full(9, -1), ["a", "b"])
    assert len(none) == 0 and str(none.dtype) == "str"
    assert pd.Series(lost).isna().all() and len(lost) == 9


@pytest.mark.parametrize(
    "classes",
    [
        pd.Index([3, 7, 11]),
        pd.Index([0.5, 1.5, 2.5]),
        pd.Index([True, False, True]),
        pd.Index(["x", "yy", "zzz"]),
        pd.Index(["a", 2, (3,)], dtype=object),
    ],
)
def test_take_values_equal_the_index_take(classes: pd.Index) -> None:
    codes = np.array([2, 0, 1, 1, 0, 2, 2])
    want = pd.Series(classes[codes], name="label")
    for threshold in (NEVER, 0):
        with spill_at(threshold):
            got = pd.Series(sf.take_values(classes, codes), name="label", copy=False)
        pd.testing.assert_series_equal(got, want, check_exact=True)
    with spill_at(0):
        values = sf.take_values(classes, codes)
    if isinstance(values, np.ndarray):
        assert is_spilled(values) == (classes.dtype.kind in "biuf")


def test_spill_copy_copies_only_large_in_memory_arrays() -> None:
    a = np.arange(10.0).reshape(5, 2)
    assert sf.spill_copy(a) is a  # below the threshold: the array itself
    with spill_at(0):
        b = sf.spill_copy(a)
        assert sf.spill_copy(b) is b  # already a spill file
        obj = np.array(["a", None], dtype=object)
        assert sf.spill_copy(obj) is obj  # objects cannot live in a file
    assert is_spilled(b) and b.tolist() == a.tolist() and b.dtype == a.dtype


@linux_only
def test_class_names_spill_from_exactly_the_size_of_their_offsets() -> None:
    """The offsets (8 bytes a row, plus one) are the names' largest buffer: from that many
    bytes the names are built over spill files, one byte more and they stay in memory."""
    codes = np.array([2, 0, 1, -1, 0, 2, 2])
    offsets = 8 * (codes.size + 1)
    classes = pd.Index(["x", "yy", "zzz"])
    for build in (
        lambda: sf.take_names(codes, list(classes)),
        lambda: getattr(v := sf.take_values(classes, np.maximum(codes, 0)), "array", v),
    ):
        for threshold, where in ((offsets, True), (offsets + 1, False)):
            with spill_at(threshold):
                got = build()
            assert str(got.dtype) == "str"
            buffers = _arrow_buffers(got)
            backed = dict(zip([size for _, size in buffers], _file_backed(buffers), strict=True))
            assert backed[offsets] is where, threshold  # the smaller ones stay in memory
            assert any(backed.values()) is where, threshold


def test_names_without_string_inference_are_taken_by_pandas() -> None:
    """pandas 2's object columns (``future.infer_string`` off): pandas' own take, never the
    Arrow buffers (the spill path would build an Arrow array for an object dtype)."""
    import warnings

    codes = np.array([1, -1, 0, 1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the option is deprecated in pandas 3
        try:
            ctx = pd.option_context("future.infer_string", False)
        except (KeyError, pd.errors.OptionError):  # pragma: no cover - pandas 4
            pytest.skip("this pandas always infers strings")
        with ctx:
            want = pd.Series(np.asarray(["a", "b"], dtype=object)).array.take(
                codes, allow_fill=True
            )
            for threshold in (NEVER, 0):
                with spill_at(threshold):
                    got = sf.take_names(codes, ["a", "b"])
                assert got.dtype == want.dtype and str(got.dtype) != "str"
                assert pd.Series(got).tolist()[::2] == ["b", "a"] and pd.isna(got[1])
                pd.testing.assert_extension_array_equal(got, want)


# --- the audit ------------------------------------------------------------------------------


def _audit_inputs() -> dict[str, object]:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 4)).astype(np.float32)
    X[150:170] = X[:20]  # exact copies
    y = rng.integers(0, 3, 300)
    y[::17] = -1
    truth = np.where(y >= 0, y, 0)
    truth[::11] = (truth[::11] + 1) % 3
    p = (0.2 * rng.dirichlet(np.ones(3), 300) + 0.8 * np.eye(3)[truth]).astype(np.float32)
    return {"labels": y, "pred_probs": p, "features": X, "classes": ["a", "b", "c"]}


_ISSUES = {"label": {}, "outlier": {}, "near_duplicate": {}}


@linux_only
def test_audit_table_over_spill_files_equals_the_in_memory_table() -> None:
    kw = _audit_inputs()
    memory = Audit(_ISSUES, random_state=0).run(**kw).issues
    with spill_at(0):
        spilled = Audit(_ISSUES, random_state=0).run(**kw).issues
    pd.testing.assert_frame_equal(spilled, memory, check_exact=True)
    assert memory["is_label_issue"].sum() > 5 and memory["is_near_duplicate_issue"].sum() >= 20
    for col in spilled.columns:
        values = spilled[col].array
        if isinstance(values, pd.arrays.NumpyExtensionArray):
            # the frame wraps the spill file itself: a copy made by pandas would not be one
            assert is_spilled(values.to_numpy()), col
            assert not is_spilled(memory[col].to_numpy()), col
        else:
            assert all(_file_backed(_arrow_buffers(values))), col
    assert spilled._mgr.nblocks == spilled.shape[1]  # a block per column: never consolidated


def test_settled_columns_replace_the_context_cache_arrays() -> None:
    score = np.linspace(0.0, 1.0, 6)
    flags = score > 0.5
    labels = np.array([0, 1, 0, 1, 1, 0])
    ctx = AuditContext(labels=labels, pred_probs=None, features=None, n_classes=2)
    ctx.cache.update(label_score=score, label_issue=flags, other=score[::-1].copy())
    frame = pd.DataFrame(
        {"is_x_issue": flags, "x_score": score, "given_label": labels, "s": ["u"] * 6},
        copy=False,
    )
    with spill_at(0):
        out = _audit._settled(frame, ctx)
    kept = out["x_score"].to_numpy()
    assert is_spilled(kept) and kept.tolist() == score.tolist()
    assert np.shares_memory(ctx.cache["label_score"], kept)  # the cache points at the copy
    assert np.shares_memory(ctx.cache["label_issue"], out["is_x_issue"].to_numpy())
    assert not is_spilled(ctx.cache["other"])  # not a column: untouched
    assert np.shares_memory(out["given_label"].to_numpy(), labels)  # the labels: not copied
    assert out["s"].tolist() == ["u"] * 6
    with spill_at(NEVER):
        same = _audit._settled(frame, ctx)
    assert np.shares_memory(same["x_score"].to_numpy(), score)  # small: the array itself


# --- Dawid-Skene ----------------------------------------------------------------------------


def _crowd(labels: list[object]) -> pd.DataFrame:
    rng = np.random.default_rng(2)
    n = 40
    truth = rng.integers(0, len(labels), n)
    rows = []
    for i in range(n):
        for a in range(4):
            said = truth[i] if rng.random() < 0.75 else rng.integers(0, len(labels))
            rows.append((100 + i, f"w{a}", labels[int(said)]))
    rows.append((100, "w0", labels[0]))  # a repeated answer
    return pd.DataFrame(rows, columns=["item_id", "annotator_id", "label"])


@linux_only
@pytest.mark.parametrize("labels", [[4, 9, 2], ["no", "yes", "perhaps"]])
@pytest.mark.parametrize("model", [DawidSkene, OneCoinDawidSkene])
def test_consensus_outputs_over_spill_files_equal_the_in_memory_ones(
    labels: list[object], model: type
) -> None:
    crowd = _crowd(labels)
    fits = []
    for threshold in (NEVER, 0):
        table = Annotations(crowd, duplicates="all")  # the table in memory both times
        with spill_at(threshold):
            fits.append(model(chunk_size=7).fit(table))
    memory, spilled = fits
    pd.testing.assert_frame_equal(spilled.probas_, memory.probas_, check_exact=True)
    pd.testing.assert_series_equal(spilled.labels_, memory.labels_, check_exact=True)
    post = spilled.probas_.to_numpy()
    assert is_spilled(post) and not is_spilled(memory.probas_.to_numpy())
    assert spilled.probas_._mgr.nblocks == 1  # one 2-D block over the posteriors
    want = np.asarray(memory.classes_)[memory.probas_.to_numpy().argmax(axis=1)]
    assert (spilled.labels_.to_numpy() == want).mean() > 0.95  # argmax but for ties
    values = spilled.labels_.array
    if isinstance(values, pd.arrays.NumpyExtensionArray):
        assert is_spilled(values.to_numpy())
    else:
        assert all(_file_backed(_arrow_buffers(values)))


def test_em_posteriors_and_tie_codes_are_spill_files_above_the_threshold() -> None:
    crowd = _crowd([0, 1])
    table = Annotations(crowd, duplicates="all")
    m = DawidSkene()
    kw = {"n_annotators": table.n_annotators, "n_classes": 2, "m_step": m._m_step}
    with spill_at(0):
        spilled = run_em(table.counts, inits=[VOTE_SHARES], chunk_size=9, **kw)
        codes = break_ties(np.array([[0.5, 0.5], [0.1, 0.9], [0.7, 0.3]]), np.random.default_rng(0))
    whole = run_em(table.counts, inits=[VOTE_SHARES], **kw)
    assert is_spilled(spilled.posteriors) and not is_spilled(whole.posteriors)
    assert np.array_equal(spilled.posteriors, whole.posteriors)
    assert is_spilled(codes) and codes.tolist()[1:] == [1, 0]
    plain = break_ties(np.array([[0.5, 0.5], [0.1, 0.9], [0.7, 0.3]]), np.random.default_rng(0))
    assert codes.tolist() == plain.tolist() and not is_spilled(plain)


# --- writing --------------------------------------------------------------------------------


def _old_writer_tables(frame: pd.DataFrame, chunk: int) -> list[pa.Table]:
    """The writer before this change: a DataFrame per chunk from ``iloc`` + ``reset_index``."""
    name = frame.index.name or "item"
    return [
        pa.Table.from_pandas(
            frame.iloc[s : s + chunk].reset_index(names=name), preserve_index=False
        )
        for s in range(0, len(frame), chunk)
    ]


@pytest.mark.parametrize("chunk", [1, 7, 64, 1000])
def test_issue_table_round_trips_for_any_chunk_size(tmp_path: Path, chunk: int) -> None:
    with spill_at(0):
        result = Audit(_ISSUES, random_state=0).run(**_audit_inputs())
    issues = result.issues
    path = result.to_parquet(tmp_path / "issues.parquet", chunk_size=chunk)
    meta = pq.ParquetFile(path).metadata
    assert meta.num_row_groups == -(-300 // chunk)
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)][:2] == [
        min(chunk, 300),
        min(chunk, max(300 - chunk, 0)),
    ][: meta.num_row_groups]
    back = pd.read_parquet(path)
    assert back.columns[0] == "item" and back["item"].tolist() == list(range(300))
    pd.testing.assert_frame_equal(
        back.drop(columns="item"), issues.reset_index(drop=True), check_exact=True
    )
    want = pa.concat_tables(_old_writer_tables(issues, chunk))
    got = pq.read_table(path)
    assert got.equals(want) and got.schema.metadata == want.schema.metadata


def test_frame_writer_keeps_a_named_index_and_refuses_clashes(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {"score": [0.5, 0.25, 1.0], "name": ["a", None, "c"]},
        index=pd.Index(["i1", "i2", "i3"], name="id"),
    )
    path = write_frame_parquet(tmp_path / "f.parquet", frame, chunk_size=2)
    back = pd.read_parquet(path)
    pd.testing.assert_frame_equal(back.set_index("id"), frame, check_exact=True)
    clash = frame.rename(columns={"score": "id"})
    with pytest.raises(ValidationError, match=r"frame: has a column 'id'.*rename the index"):
        write_frame_parquet(tmp_path / "g.parquet", clash)
    twice = pd.DataFrame([[1, 2]], columns=["a", "a"])
    with pytest.raises(ValidationError, match="frame: has repeated column names"):
        write_frame_parquet(tmp_path / "h.parquet", twice)
    assert not (tmp_path / "g.parquet").exists() and not (tmp_path / "h.parquet").exists()


@pytest.mark.parametrize("chunk", [1, 5, 1000])
def test_consensus_parquet_round_trips(tmp_path: Path, chunk: int) -> None:
    crowd = _crowd(["no", "yes", "perhaps"])
    with spill_at(0):
        model = DawidSkene().fit(crowd.drop_duplicates(["item_id", "annotator_id"]))
        path = model.to_parquet(tmp_path / "c.parquet", chunk_size=chunk)
    back = pd.read_parquet(path)
    assert back.columns.tolist() == ["item_id", "label", "p_no", "p_perhaps", "p_yes"]
    assert pq.ParquetFile(path).metadata.num_row_groups == -(-40 // chunk)
    assert back["item_id"].tolist() == model.probas_.index.tolist()
    assert back["label"].tolist() == model.labels_.tolist()
    got = back[["p_no", "p_perhaps", "p_yes"]].to_numpy()
    assert np.array_equal(got, model.probas_.to_numpy())  # float64, bit for bit
    with pytest.raises(NotFittedError, match="DawidSkene is not fitted"):
        DawidSkene().to_parquet(tmp_path / "d.parquet")


def test_interrupted_writes_leave_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = Audit(_ISSUES, random_state=0).run(**_audit_inputs())
    path = tmp_path / "issues.parquet"
    path.write_bytes(b"an earlier run")
    written = []
    real = ParquetChunkWriter.write

    def stop_at_third(self: ParquetChunkWriter, part: object) -> None:
        if len(written) == 2:
            raise KeyboardInterrupt
        written.append(part)
        real(self, part)

    monkeypatch.setattr(ParquetChunkWriter, "write", stop_at_third)
    with pytest.raises(KeyboardInterrupt):
        result.to_parquet(path, chunk_size=50)
    assert len(written) == 2
    assert path.read_bytes() == b"an earlier run"  # untouched, not half-replaced
    assert sorted(p.name for p in tmp_path.iterdir()) == ["issues.parquet"]  # no temp file
    model = DawidSkene().fit(_crowd([0, 1]).drop_duplicates(["item_id", "annotator_id"]))
    written.clear()
    with pytest.raises(KeyboardInterrupt):
        model.to_parquet(tmp_path / "c.parquet", chunk_size=3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["issues.parquet"]


def test_scratch_posteriors_are_plain_arrays_below_the_threshold() -> None:
    """Small inputs stay as before: in-memory arrays, the same frames."""
    model = DawidSkene().fit(_crowd([0, 1]).drop_duplicates(["item_id", "annotator_id"]))
    assert not is_spilled(model.probas_.to_numpy())
    assert not is_spilled(model.labels_.to_numpy())
    assert isinstance(scratch(3, np.float64), np.ndarray)


@linux_only
@pytest.mark.parametrize("labels", [[4, 9, 2], ["no", "yes", "perhaps"]])
def test_consensus_table_over_spill_files_equals_the_former_table(labels: list[object]) -> None:
    from truelabel.aggregate._run import run_consensus

    table = Annotations(_crowd(labels), duplicates="all")
    memory = run_consensus(table, doubtful_below=0.9)
    with spill_at(0):
        spilled = run_consensus(table, doubtful_below=0.9)
    # the former construction: object labels inferred back, the columns copied in
    model = DawidSkene().fit(table)
    probas = model.probas_.to_numpy()
    former = pd.DataFrame(
        {
            "label": model.labels_.to_numpy(),
            "confidence": probas.max(axis=1),
            "n_labels": np.bincount(table.item_codes, minlength=table.n_items),
            "is_doubtful": probas.max(axis=1) < 0.9,
        },
        index=table.items.rename("item"),
    )
    former["is_gold"] = table.gold_codes >= 0
    for got in (memory.consensus, spilled.consensus):
        pd.testing.assert_frame_equal(got, former, check_exact=True)
    assert 0 < former["is_doubtful"].sum() < 40
    assert is_spilled(spilled.consensus["confidence"].to_numpy())
    assert is_spilled(spilled.consensus["n_labels"].to_numpy())
    assert not is_spilled(memory.consensus["confidence"].to_numpy())
    names = spilled.consensus["label"].array
    if not isinstance(names, pd.arrays.NumpyExtensionArray):  # the model's labels, not copied
        assert all(_file_backed(_arrow_buffers(names)))
