"""Spilled intermediates (truelabel._spill): a memory-mapped file above the threshold, the
same values as in memory, in every pass that uses them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from truelabel import Audit
from truelabel._spill import SPILL_ENV, is_spilled, scratch, spill_at, spill_bytes
from truelabel.aggregate import Annotations, DawidSkene
from truelabel.aggregate._em import VOTE_SHARES, _row_block, run_em
from truelabel.backend import Chunk, LocalBackend
from truelabel.detect import _ivf
from truelabel.exceptions import ValidationError

NEVER = 1 << 62


def test_scratch_spills_at_the_threshold_only() -> None:
    with spill_at(24):
        small = scratch((2, 2), np.float32)  # 16 bytes
        large = scratch((2, 3), np.float32, fill=7.0)  # 24 bytes
        zero_filled = scratch(6, np.int64, fill=0)
    assert not is_spilled(small) and is_spilled(large) and is_spilled(zero_filled)
    assert is_spilled(large[1:])  # a view of a spilled array
    assert large.tolist() == [[7.0] * 3] * 2 and zero_filled.tolist() == [0] * 6
    assert large.flags.writeable and type(large) is np.ndarray
    large[1, 2] = -1.0
    assert large.sum() == 7.0 * 5 - 1.0
    assert spill_bytes() > 24  # restored after the block


def test_spill_threshold_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SPILL_ENV, "0")
    assert is_spilled(scratch(1, np.int8))
    with spill_at(NEVER):  # the environment wins
        assert is_spilled(scratch(1, np.int8))
    monkeypatch.setenv(SPILL_ENV, "lots")
    with pytest.raises(ValidationError, match="TRUELABEL_SPILL_BYTES.*'lots'"):
        scratch(1, np.int8)
    with pytest.raises(ValidationError, match="nbytes.*-1"):
        with spill_at(-1):
            pass


def test_group_order_is_the_stable_argsort(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    lab = rng.integers(0, 5, 103)
    monkeypatch.setattr(_ivf, "_ORDER_BLOCK", 7)  # 15 blocks: the cursors carry across them
    with spill_at(0):
        got = _ivf._group_order(lab, 5)
    assert is_spilled(got)
    assert got.tolist() == np.argsort(lab, kind="stable").tolist()


def test_row_blocks_are_views_with_the_slices_values() -> None:
    rng = np.random.default_rng(4)
    counts = sp.random(40, 12, density=0.3, format="csr", random_state=rng)
    for start, stop in ((0, 7), (7, 8), (8, 40), (13, 13)):
        block = _row_block(counts, Chunk(0, start, stop))
        want = counts[start:stop]
        assert (block != want).nnz == 0 and block.shape == want.shape
        assert block.indptr.tolist() == want.indptr.tolist()
        if stop > start and block.nnz:
            assert np.shares_memory(block.data, counts.data)  # no copy of the answers
        slots = np.full(stop - start + 3, -7, dtype=counts.indptr.dtype)
        into = _row_block(counts, Chunk(0, start, stop), slots[1 : stop - start + 2])
        assert into.indptr.tolist() == want.indptr.tolist() and (into != want).nnz == 0
        assert np.shares_memory(into.indptr, slots) and slots[[0, -1]].tolist() == [-7, -7]


def test_em_row_pointers_spill_and_give_the_same_fit() -> None:
    """The chunks' row pointers live in one scratch array (a spill file when large); the
    fit is bit for bit the one of a single chunk and of the in-memory pointers."""
    from truelabel.aggregate import Annotations, DawidSkene

    rng = np.random.default_rng(8)
    items = np.repeat(np.arange(500), 3)
    truth = rng.integers(0, 4, 500)
    said = np.where(rng.random(items.size) < 0.7, truth[items], rng.integers(0, 4, items.size))
    who = (np.tile([0, 1, 2], 500) + rng.integers(0, 3, items.size) * 3) % 7
    frame = pd.DataFrame({"item_id": items, "annotator_id": who, "label": said})
    frame = frame.drop_duplicates(["item_id", "annotator_id"])
    want = DawidSkene(chunk_size=None).fit(Annotations(frame)).probas_.to_numpy()
    for chunk in (1, 37, 128):
        for spill in (False, True):
            with spill_at(0 if spill else 1 << 40):
                got = DawidSkene(chunk_size=chunk).fit(Annotations(frame)).probas_.to_numpy()
            assert np.array_equal(got, want), (chunk, spill)


def _crowd() -> pd.DataFrame:
    rng = np.random.default_rng(5)
    items = np.repeat(np.arange(90), 3)
    truth = rng.integers(0, 3, 90)
    who = np.tile([0, 1, 2], 90) + rng.integers(0, 2, items.size) * 3
    right = rng.random(items.size) < 0.7
    said = np.where(right, truth[items], rng.integers(0, 3, items.size))
    frame = pd.DataFrame({"item_id": items, "annotator_id": who, "label": said})
    return frame.drop_duplicates(["item_id", "annotator_id"])


@pytest.mark.parametrize("chunk_size", [None, 7, 32])
def test_vote_share_start_equals_the_vote_share_array(chunk_size: int | None) -> None:
    table = Annotations(_crowd())
    votes = table.vote_counts()
    start = votes / votes.sum(axis=1, keepdims=True)

    def m_step(N: np.ndarray, totals: np.ndarray, prev: object) -> object:
        return DawidSkene()._m_step(N, totals, prev)

    kw = dict(n_annotators=table.n_annotators, n_classes=table.n_classes, m_step=m_step,
              gold=table.gold_codes, chunk_size=chunk_size, backend=LocalBackend(2))  # fmt: skip
    lazy = run_em(table.counts, inits=[VOTE_SHARES], **kw)  # type: ignore[arg-type]
    whole = run_em(table.counts, inits=[start], **kw)  # type: ignore[arg-type]
    assert np.array_equal(lazy.posteriors, whole.posteriors)
    assert np.array_equal(lazy.model.log_conf, whole.model.log_conf)
    assert lazy.objective == whole.objective and lazy.n_iter == whole.n_iter


def test_spilled_audit_equals_the_in_memory_audit() -> None:
    """Every spilled intermediate (the inverted file, the kNN graph, the neighbour label
    distribution, the confident-learning arrays, the duplicate hashes) holds the values the
    in-memory run holds: the result is identical value by value."""
    rng = np.random.default_rng(6)
    n, k, d = 1500, 3, 6
    truth = rng.integers(0, k, n)
    x = rng.normal(size=(n, d)).astype(np.float32) + 3.0 * np.eye(k, d, dtype=np.float32)[truth]
    x[10] = x[11]  # an exact copy
    labels = truth.copy()
    labels[:60] = (truth[:60] + 1) % k
    logits = rng.normal(size=(n, k)) + 2.0 * np.eye(k)[truth]
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    issues = {"label": {}, "outlier": {}, "near_duplicate": {}}
    runs = []
    for threshold in (NEVER, 0):
        with spill_at(threshold):
            audit = Audit(issues, knn_method="ivf", backend=LocalBackend(2), chunk_size=256)
            runs.append(audit.run(labels=labels, pred_probs=p, features=x))
    memory, spilled = runs
    assert not is_spilled(memory.pred_probs) and is_spilled(spilled.pred_probs)
    pd.testing.assert_frame_equal(memory.issues, spilled.issues, check_exact=True)
    assert np.array_equal(memory.pred_probs, spilled.pred_probs)
    assert memory.issues["is_label_issue"].sum() > 20
    assert memory.issues.loc[[10, 11], "is_near_duplicate_issue"].all()
    assert memory.summary == spilled.summary


def test_half_norms_block_by_block_equal_the_whole_computation() -> None:
    z = np.random.default_rng(7).normal(size=(70_000, 5)).astype(np.float32)  # 2 blocks
    whole = (0.5 * np.einsum("ij,ij->i", z, z, dtype=np.float64)).astype(np.float32)
    with spill_at(0):
        got = _ivf._half_sq(z, scratch(z.shape[0], np.float32))
    assert is_spilled(got) and np.array_equal(got, whole)


@pytest.mark.parametrize("duplicates", ["all", "first"])
def test_spilled_answer_table_and_consensus_equal_the_in_memory_ones(
    duplicates: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from truelabel.aggregate import _table

    monkeypatch.setattr(_table, "_INDEX_BLOCK", 10)  # the columns computed in 28 blocks
    crowd = _crowd()
    crowd = pd.concat([crowd, crowd.iloc[:9]])  # repeated answers: counted or dropped
    fits = []
    for threshold in (NEVER, 0):
        with spill_at(threshold):
            table = Annotations(crowd, duplicates=duplicates)
            model = DawidSkene(chunk_size=16, backend=LocalBackend(2)).fit(table)
        fits.append((table, model))
    (mem, mem_fit), (disk, disk_fit) = fits
    assert not is_spilled(mem.item_codes) and is_spilled(disk.item_codes)
    assert is_spilled(disk.label_codes) and not is_spilled(mem.counts.data)
    for name in ("item_codes", "annotator_codes", "label_codes"):
        assert np.array_equal(getattr(mem, name), getattr(disk, name)), name
    assert (mem.counts != disk.counts).nnz == 0
    k = mem.n_classes  # the oracle of the count matrix: one column per (annotator, label)
    oracle = sp.csr_matrix(
        (np.ones(mem.n_labels), (mem.item_codes, mem.annotator_codes * k + mem.label_codes)),
        shape=mem.counts.shape,
    )
    assert (disk.counts != oracle).nnz == 0
    assert mem.counts.indptr.tolist() == disk.counts.indptr.tolist()
    pd.testing.assert_frame_equal(mem_fit.probas_, disk_fit.probas_, check_exact=True)
    assert np.array_equal(mem_fit.confusions_, disk_fit.confusions_)


def test_spill_files_have_no_name_and_the_folder_is_the_processs_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import os

    from truelabel import _spill

    folder = _spill.spill_folder()
    assert oct(os.stat(folder).st_mode & 0o777) == "0o700"
    before = set(os.listdir(folder))
    with spill_at(0):
        held = scratch(1000, np.float64)
    assert is_spilled(held) and set(os.listdir(folder)) == before  # unlinked: nothing named
    monkeypatch.setattr(os, "getpid", lambda: -1)  # as a forked child sees it
    _spill._remove_folder()  # a child's exit leaves the parent's folder alone
    assert os.path.isdir(folder)
    child = _spill.spill_folder()  # and a child makes its own
    assert child != folder and os.path.isdir(child)
    os.rmdir(child)
    monkeypatch.undo()
    _spill._DIR[:], _spill._DIR_PID[:] = [folder], [os.getpid()]  # this process's again
    assert _spill.spill_folder() == folder
