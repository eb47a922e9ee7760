"""Tests that kill the mutmut survivors of detect/_knn_common.py and detect/_ivf.py
(``tools/mutation.sh``, issue 7): the shared re-rank (self dropped, ties by index, exact
float64 distances), the PCA projection and its row blocks, and the C-heap trim."""

from __future__ import annotations

import numpy as np

from truelabel import _spill
from truelabel.detect._knn_common import (
    Projection,
    _drop_self,
    _exact_distances,
    finish_rows,
    fit_pca,
    project_rows,
    release_free_memory,
)


def test_drop_self_removes_the_row_wherever_it_is_else_the_last_column():
    idx = np.array([[3, 10, 11], [12, 4, 13], [14, 15, 16]])
    dist = np.array([[0.0, 1.0, 2.0], [0.5, 0.0, 3.0], [1.0, 2.0, 3.0]])
    i, d = _drop_self(idx, dist, 2, start=3)  # rows 3, 4, 5
    np.testing.assert_array_equal(i, [[10, 11], [12, 13], [14, 15]])
    np.testing.assert_array_equal(d, [[1.0, 2.0], [0.5, 3.0], [1.0, 2.0]])
    # the same with the rows' ids given as an array; self listed twice: only the first goes
    i, d = _drop_self(np.array([[7, 7, 1], [2, 9, 5]]), dist[:2], 2, start=np.array([7, 5]))
    np.testing.assert_array_equal(i, [[7, 1], [2, 9]])
    np.testing.assert_array_equal(d, [[1.0, 2.0], [0.5, 0.0]])


def test_exact_distances_in_float64_for_int_and_array_starts(monkeypatch):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3)).astype(np.float32)
    idx = rng.integers(0, 40, size=(30, 4))
    X64 = X.astype(np.float64)
    want = np.sqrt(((X64[idx] - X64[5:35, None, :]) ** 2).sum(axis=2))
    got = _exact_distances(X, idx, 5)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-6)
    rows = rng.permutation(40)[:30]
    want = np.sqrt(((X64[idx] - X64[rows][:, None, :]) ** 2).sum(axis=2))
    np.testing.assert_allclose(_exact_distances(X, idx, rows), want, rtol=1e-6)
    # wide rows: sub-blocks of 8 rows (the floor), the same values
    wide = rng.normal(size=(40, 70_000)).astype(np.float32)
    idx = rng.integers(0, 40, size=(20, 2))
    w64 = wide.astype(np.float64)
    want = np.sqrt(((w64[idx] - w64[:20, None, :]) ** 2).sum(axis=2))
    np.testing.assert_allclose(_exact_distances(wide, idx, 0), want, rtol=1e-6)


def test_finish_rows_sorts_by_distance_then_index_and_drops_self():
    X = np.array([[0.0], [1.0], [-1.0], [2.0], [0.0]], dtype=np.float32)
    # row 0: candidates 3 (2.0), 1 (1.0), 2 (1.0), 4 (0.0), 0 (self)
    idx, dist = finish_rows(X, np.array([[3, 1, 2, 4, 0]]), 0, 3)
    np.testing.assert_array_equal(idx, [[4, 1, 2]])
    np.testing.assert_array_equal(dist, [[0.0, 1.0, 1.0]])
    # one candidate column: nothing to sort; self absent, so the last one goes
    idx, dist = finish_rows(X, np.array([[3, 1], [0, 2]])[:, :1], np.array([0, 1]), 0)
    assert idx.shape == (2, 0) and dist.shape == (2, 0)


def test_fit_pca_narrow_wide_and_the_sample_cap():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(50, 3)).astype(np.float32)
    pca, rows = fit_pca(X, 3, 0)
    assert pca is None
    np.testing.assert_array_equal(rows, np.arange(50))  # all rows, sorted
    # wide: the top principal axes of the rows, largest first (up to sign)
    X = (rng.normal(size=(400, 4)) * [5.0, 3.0, 1.0, 0.1]).astype(np.float32)
    pca, rows = fit_pca(X, 2, 0)
    assert pca is not None and pca.components.shape == (4, 2)
    X64 = X.astype(np.float64)
    np.testing.assert_allclose(pca.mean, X64.mean(axis=0), atol=1e-5)
    _, _, vt = np.linalg.svd(X64 - X64.mean(axis=0), full_matrices=False)
    np.testing.assert_allclose(np.abs(pca.components.T @ vt[:2].T), np.eye(2), atol=1e-4)
    assert pca.components.dtype == np.float32 and pca.mean.dtype == np.float32
    # more than 20,000 rows: a sorted sample of 20,000 distinct rows, seeded
    big = np.zeros((20_003, 1), dtype=np.float32)
    _, a = fit_pca(big, 1, 5)
    _, b = fit_pca(big, 1, 5)
    assert a.size == 20_000 and np.unique(a).size == 20_000 and (np.diff(a) > 0).all()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, fit_pca(big, 1, 6)[1])


def test_project_rows_by_slice_or_ids_across_row_blocks():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(9000, 3))
    pca = Projection(np.array([1.0, 2.0, 3.0]), np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
    full = (X.astype(np.float32) - pca.mean) @ pca.components
    got = project_rows(X, slice(100, 8800), pca)
    assert got.dtype == np.float32 and got.shape == (8700, 2)
    np.testing.assert_allclose(got, full[100:8800], rtol=1e-5, atol=1e-5)
    ids = rng.permutation(9000)[:5000]
    np.testing.assert_allclose(project_rows(X, ids, pca), full[ids], rtol=1e-5, atol=1e-5)
    raw = project_rows(X, slice(3, 7), None)
    assert raw.dtype == np.float32 and raw.flags.c_contiguous
    np.testing.assert_array_equal(raw, X[3:7].astype(np.float32))


def test_release_free_memory_calls_malloc_trim_zero_on_linux_only(monkeypatch):
    calls = []

    class Libc:
        def malloc_trim(self, pad):
            calls.append(pad)

    opened = []

    def cdll(name):
        opened.append(name)
        return Libc()

    monkeypatch.setattr(_spill.ctypes, "CDLL", cdll)
    monkeypatch.setattr(_spill.ctypes.util, "find_library", lambda name: None)
    monkeypatch.setattr(_spill.sys, "platform", "linux")
    assert release_free_memory() is None
    assert calls == [0] and opened == ["libc.so.6"]
    monkeypatch.setattr(_spill.sys, "platform", "darwin")
    release_free_memory()
    assert calls == [0] and len(opened) == 1

    class Musl:
        pass

    monkeypatch.setattr(_spill.sys, "platform", "linux")
    monkeypatch.setattr(_spill.ctypes, "CDLL", lambda name: Musl())
    assert release_free_memory() is None  # no malloc_trim: nothing to do

    def missing(name):
        raise OSError("no libc")

    monkeypatch.setattr(_spill.ctypes, "CDLL", missing)
    assert release_free_memory() is None


# ------------------------------------------------------------------ the inverted file


def _uneven(seed: int) -> np.ndarray:
    """1500 rows in 5 dims: clusters of 700, 500, 250, 40 and 10 rows, far apart."""
    rng = np.random.default_rng(seed)
    sizes = [700, 500, 250, 40, 10]
    centres = rng.normal(scale=20.0, size=(5, 5))
    return np.vstack([c + rng.normal(size=(s, 5)) for c, s in zip(centres, sizes)]).astype(
        np.float32
    )


def test_means_keep_the_previous_centroid_of_an_empty_cell_only():
    from truelabel.detect._ivf import _means

    z = np.array([[0.0], [2.0], [5.0], [7.0]], dtype=np.float32)
    lab = np.array([0, 0, 1, 3])
    prev = np.array([[9.0], [9.0], [8.0], [9.0]], dtype=np.float32)
    out, counts = _means(z, lab, prev)
    np.testing.assert_array_equal(out, [[1.0], [5.0], [8.0], [7.0]])
    np.testing.assert_array_equal(counts, [2, 1, 0, 1])


def test_top_chunk_labels_any_run_of_rows_in_4096_row_blocks():
    from truelabel.backend import Chunk
    from truelabel.detect._ivf import _nearest, _top_chunk

    rng = np.random.default_rng(4)
    X = rng.normal(size=(9000, 3)).astype(np.float32)
    top = rng.normal(size=(7, 3)).astype(np.float32)
    for start, stop in ((100, 400), (10, 5010), (0, 9000)):
        got = _top_chunk(Chunk(0, start, stop), (X, None, top))
        np.testing.assert_array_equal(got, _nearest(X[start:stop], top))


def test_a_small_top_cell_is_one_cell_holding_all_its_rows(monkeypatch):
    from truelabel.backend import Chunk
    from truelabel.detect import _ivf

    monkeypatch.setattr(_ivf, "_CELL_ROWS", 60)
    X = _uneven(0)
    rows_in = np.arange(700, 780)  # 80 rows: round(80 / 60) = 1 cell
    rows, z, srt, counts, cent = _ivf._split_chunk(Chunk(0, 0, 1), (X, None, [rows_in], 1, 0))
    assert counts.tolist() == [80]
    np.testing.assert_array_equal(rows, rows_in)
    np.testing.assert_allclose(cent[0], X[rows_in].astype(np.float64).mean(axis=0), rtol=1e-5)


def test_tiny_top_cells_join_the_nearest_one_and_top_cells_list_rows_ascending(monkeypatch):
    from truelabel.backend import LocalBackend
    from truelabel.detect import _ivf

    monkeypatch.setattr(_ivf, "_CELL_ROWS", 60)
    monkeypatch.setattr(_ivf, "_TOP_ROWS", 300)
    kept_calls: list[np.ndarray] = []
    real_kept, real_split = _ivf._kept, _ivf._split_chunk
    members_seen: list[list[np.ndarray]] = []

    def kept(counts, min_rows):
        out = real_kept(counts, min_rows)
        kept_calls.append(out)
        return out

    def split(chunk, shared):
        members_seen.append(shared[2])
        return real_split(chunk, shared)

    monkeypatch.setattr(_ivf, "_kept", kept)
    monkeypatch.setattr(_ivf, "_split_chunk", split)
    X = _uneven(1)
    X = X[np.random.default_rng(2).permutation(X.shape[0])]  # clusters interleaved by row id
    rows = np.arange(X.shape[0])
    cells = _ivf.build_cells(X, None, rows, 100, 0, LocalBackend(1))
    assert not kept_calls[0].all()  # the top level had a cell below 100 rows (10)
    sizes = np.diff(cells.offsets)
    assert sizes.min() >= 100 and cells.offsets[-1] == X.shape[0]
    np.testing.assert_array_equal(np.sort(cells.order), rows)
    members = members_seen[0]
    assert len(members) == 4 and all((np.diff(m) > 0).all() for m in members)
    np.testing.assert_array_equal(np.sort(np.concatenate(members)), rows)
    for c in range(sizes.size):
        own = X[cells.order[cells.offsets[c] : cells.offsets[c + 1]]].astype(np.float64)
        np.testing.assert_allclose(cells.centroids[c], own.mean(axis=0), rtol=1e-4, atol=1e-4)
