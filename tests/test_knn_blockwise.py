"""The exact kNN graph as a chunk map: blockwise top-k merged, equal to brute force."""

from __future__ import annotations

import numpy as np
import pytest

from truelabel import build_knn_graph
from truelabel.backend import Chunk, LocalBackend
from truelabel.detect import _ivf, _knn, _knn_common


def _brute_force(X: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Full float64 distance matrix, self excluded, ordered by (distance, index)."""
    X = X.astype(np.float64)
    d = np.sqrt(((X[:, None, :] - X[None, :, :]) ** 2).sum(axis=2))
    np.fill_diagonal(d, np.inf)
    order = np.lexsort((np.broadcast_to(np.arange(len(X)), d.shape), d), axis=1)[:, :k]
    return order, np.take_along_axis(d, order, axis=1)


@pytest.mark.parametrize(
    "backend,chunk_size,ref_block",
    [(LocalBackend(1), None, 8192), (LocalBackend(2), 37, 50), (LocalBackend(2), 1, 7)],
)
def test_exact_graph_equals_brute_force_for_every_chunking(
    monkeypatch, backend, chunk_size, ref_block
):
    monkeypatch.setattr(_knn, "_REF_BLOCK", ref_block)
    rng = np.random.default_rng(3)
    X = rng.normal(size=(300, 6)).astype(np.float32)
    g = build_knn_graph(X, n_neighbors=5, method="exact", backend=backend, chunk_size=chunk_size)
    want_i, want_d = _brute_force(X, 5)
    np.testing.assert_array_equal(g.indices, want_i)
    np.testing.assert_allclose(g.distances, want_d, rtol=1e-6)
    assert g.exact


def test_exact_graph_with_duplicates_drops_self_and_breaks_ties_by_index(monkeypatch):
    monkeypatch.setattr(_knn, "_REF_BLOCK", 4)
    X = np.repeat(np.arange(5.0), 3)[:, None] * np.ones((1, 2))  # 5 points, 3 copies each
    g = build_knn_graph(X, n_neighbors=2, method="exact", chunk_size=4)
    assert not (g.indices == np.arange(15)[:, None]).any()
    np.testing.assert_array_equal(g.distances, 0.0)
    # each item's neighbours are its two copies, lower index first
    np.testing.assert_array_equal(g.indices[0], [1, 2])
    np.testing.assert_array_equal(g.indices[4], [3, 5])


def _naive_knn_probs(graph, labels, n_classes, smoothing=1.0):
    n, k = graph.indices.shape
    prior = np.bincount(labels[labels >= 0], minlength=n_classes) / np.sum(labels >= 0)
    scale = np.median(graph.distances[:, -1]) or 1.0
    out = np.zeros((n, n_classes))
    for i in range(n):
        votes = np.zeros(n_classes)
        for j, d in zip(graph.indices[i], graph.distances[i]):
            if labels[j] >= 0:
                votes[labels[j]] += np.exp(-d / scale)
        frac = votes / votes.sum() * k if votes.sum() > 0 else votes
        out[i] = (frac + smoothing * prior) / (k + smoothing)
    return out


@pytest.mark.parametrize("backend,chunk_size", [(LocalBackend(1), None), (LocalBackend(2), 13)])
def test_knn_label_votes_and_blend_equal_naive_loops(backend, chunk_size):
    from truelabel.detect import blend_pred_probs, knn_pred_probs

    rng = np.random.default_rng(8)
    X = rng.normal(size=(400, 4)).astype(np.float32)
    labels = rng.integers(0, 3, 400)
    labels[::9] = -1  # unlabelled neighbours carry no vote
    g = build_knn_graph(X, n_neighbors=6, method="exact")
    kp = knn_pred_probs(g, labels, 3, backend=backend, chunk_size=chunk_size)
    np.testing.assert_allclose(kp, _naive_knn_probs(g, labels, 3), rtol=1e-5)
    lab = labels >= 0
    p = rng.dirichlet(np.ones(3), size=400)
    blend, w = blend_pred_probs(
        labels[lab], p[lab], kp[lab], backend=backend, chunk_size=chunk_size
    )
    grid = np.linspace(0.0, 1.0, 11)
    rows = np.arange(lab.sum())
    a, b = p[lab][rows, labels[lab]], kp[lab][rows, labels[lab]]
    losses = [-np.mean(np.log(np.clip(x * a + (1 - x) * b, 1e-12, None))) for x in grid]
    assert w == grid[int(np.argmin(losses))]
    mix = w * p[lab] + (1 - w) * kp[lab]
    np.testing.assert_allclose(blend, mix / mix.sum(axis=1, keepdims=True), rtol=1e-5)


def test_hnsw_search_entered_at_each_rows_own_node_past_the_first_chunk():
    """Rows beyond the first 8192-row search chunk are entered at their own node too (an
    entry at the wrong node finds another cluster's items): recall vs the exact graph."""
    pytest.importorskip("faiss")
    rng = np.random.default_rng(0)
    centres = 10.0 * rng.normal(size=(200, 3))
    X = (rng.normal(size=(9000, 3)) + centres[rng.integers(0, 200, 9000)]).astype(np.float32)
    exact = build_knn_graph(X, n_neighbors=3, method="exact")
    approx = build_knn_graph(X, n_neighbors=3, method="hnsw")
    tail = slice(8192, None)
    hits = [len(set(a) & set(b)) / 3 for a, b in zip(exact.indices[tail], approx.indices[tail])]
    assert np.mean(hits) > 0.8  # 0.88; entered at rows 0.. instead: 0.64


def _clustered(n: int, dims: int, seed: int) -> np.ndarray:
    """Gaussian blobs, rows shuffled (so the coherent insertion order is not the identity)."""
    rng = np.random.default_rng(seed)
    centres = 10.0 * rng.normal(size=(60, dims))
    return (rng.normal(size=(n, dims)) + centres[rng.integers(0, 60, n)]).astype(np.float32)


def test_coherent_order_is_a_permutation_grouping_near_rows():
    X = _clustered(3000, 4, 1)
    pca, sample = _knn_common.fit_pca(X, 64, 0)
    order = _knn._coherent_order(X, pca, sample, 0)
    np.testing.assert_array_equal(np.sort(order), np.arange(3000))
    assert (order != np.arange(3000)).sum() > 2900
    # consecutive rows of the order are far closer than consecutive rows of the input
    step = np.linalg.norm(np.diff(X[order], axis=0), axis=1).mean()
    assert step < 0.5 * np.linalg.norm(np.diff(X, axis=0), axis=1).mean()


def test_hnsw_maps_index_positions_back_to_row_ids_exactly():
    """Node p of the index is row order[p]: the approximate graph finds most exact neighbours
    and its distances are those of the rows it names (a position left unmapped would name
    another row: recall near 0)."""
    pytest.importorskip("faiss")
    X = _clustered(3000, 3, 2)
    exact = build_knn_graph(X, n_neighbors=4, method="exact")
    approx = build_knn_graph(X, n_neighbors=4, method="hnsw")
    hits = [len(set(a) & set(b)) / 4 for a, b in zip(exact.indices, approx.indices)]
    assert np.mean(hits) > 0.88  # 0.919 (as before the coherent order)
    own = np.linalg.norm(X[approx.indices] - X[:, None, :], axis=2)
    np.testing.assert_allclose(approx.distances, own, rtol=1e-5, atol=1e-5)
    assert not (approx.indices == np.arange(3000)[:, None]).any()
    assert not approx.exact


@pytest.mark.parametrize("add_block", [65536, 3000])
def test_hnsw_graph_is_deterministic_for_a_seed_and_recall_has_a_floor(monkeypatch, add_block):
    """One add() call, or a skeleton stride then 3000-row runs of the coherent order."""
    pytest.importorskip("faiss")
    monkeypatch.setattr(_knn, "_ADD_BLOCK", add_block)
    X = _clustered(20_000, 8, 3)
    a = build_knn_graph(X, n_neighbors=10, method="hnsw", random_state=5)
    b = build_knn_graph(X, n_neighbors=10, method="hnsw", random_state=5)
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_array_equal(a.distances, b.distances)
    rows = np.arange(0, 20_000, 10)
    d = ((X[rows, None, :].astype(np.float64) - X[None, :, :]) ** 2).sum(axis=2)
    d[np.arange(len(rows)), rows] = np.inf
    truth = np.argsort(d, axis=1, kind="stable")[:, :10]
    recall = np.mean([len(set(t) & set(g)) / 10 for t, g in zip(truth, a.indices[rows])])
    assert recall > 0.88  # 0.914 (as before the coherent order)


# ---------------------------------------------------------------- the inverted file (ivf)


@pytest.fixture
def small_cells(monkeypatch):
    """Cells of ~60 rows in top cells of ~400 rows: a few hundred items exercise both levels,
    merging and probing."""
    monkeypatch.setattr(_ivf, "_CELL_ROWS", 60)
    monkeypatch.setattr(_ivf, "_MIN_CELL_ROWS", 20)
    monkeypatch.setattr(_ivf, "_TOP_ROWS", 400)
    monkeypatch.setattr(_ivf, "_CANDIDATES", 12)
    return monkeypatch


def _recall(want: np.ndarray, got: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(b)) / len(a) for a, b in zip(want, got)]))


def test_ivf_probing_every_cell_equals_brute_force(small_cells):
    """With every cell probed and no projection (5 dims <= max_dims) the inverted file is
    exact: same neighbours and distances as the float64 brute force."""
    small_cells.setattr(_ivf, "_N_PROBE", 10_000)
    small_cells.setattr(_ivf, "_CELL_LINKS", 10_000)
    X = _clustered(1500, 5, 4)
    g = build_knn_graph(X, n_neighbors=6, method="ivf", chunk_size=100)
    want_i, want_d = _brute_force(X, 6)
    np.testing.assert_array_equal(g.indices, want_i)
    np.testing.assert_allclose(g.distances, want_d, rtol=1e-6)
    assert not g.exact


def test_ivf_probes_raise_recall_and_the_default_is_high(small_cells):
    """Own cell only < 3 probes (default) < every cell; the default finds most of the exact
    neighbours. (Probes ignored, or the threshold letting nothing through, fail here.)"""
    X = _clustered(1500, 5, 5)
    want, _ = _brute_force(X, 6)
    got, default = {}, _ivf._N_PROBE
    for probes in (1, default, 10_000):
        small_cells.setattr(_ivf, "_N_PROBE", probes)
        small_cells.setattr(_ivf, "_CELL_LINKS", max(16, min(probes, 10_000)))
        got[probes] = _recall(want, build_knn_graph(X, n_neighbors=6, method="ivf").indices)
    assert got[1] < got[default] < got[10_000] == 1.0
    assert got[1] < 0.99 < got[default], got  # 0.983 / 0.998


@pytest.mark.parametrize(
    "backend,chunk_size", [(LocalBackend(2), None), (LocalBackend(1), 1), (LocalBackend(2), 137)]
)
def test_ivf_graph_is_the_same_for_every_backend_and_chunk_size(small_cells, backend, chunk_size):
    """12 dims projected to 4 (PCA active), 3 probes of 16 links: results identical, bit for
    bit, to LocalBackend(1) with the default chunks."""
    X = _clustered(2000, 12, 6)
    ref = build_knn_graph(X, n_neighbors=5, method="ivf", max_dims=4, backend=LocalBackend(1))
    g = build_knn_graph(
        X, n_neighbors=5, method="ivf", max_dims=4, backend=backend, chunk_size=chunk_size
    )
    np.testing.assert_array_equal(g.indices, ref.indices)
    np.testing.assert_array_equal(g.distances, ref.distances)
    # distances are exact in the original space, self never listed
    own = np.linalg.norm(X[g.indices].astype(np.float64) - X[:, None, :], axis=2)
    np.testing.assert_allclose(g.distances, own, rtol=1e-5, atol=1e-5)
    assert not (g.indices == np.arange(2000)[:, None]).any()


def test_ivf_is_deterministic_for_a_seed_and_the_seed_moves_the_cells(small_cells):
    X = _clustered(2000, 12, 7)
    a = build_knn_graph(X, n_neighbors=5, method="ivf", max_dims=4, random_state=1)
    b = build_knn_graph(X, n_neighbors=5, method="ivf", max_dims=4, random_state=1)
    np.testing.assert_array_equal(a.indices, b.indices)
    pca, sample = _knn_common.fit_pca(X, 4, 1)
    cells = [_ivf.build_cells(X, pca, sample, 20, seed, LocalBackend(1)).offsets for seed in (1, 2)]
    assert not np.array_equal(*cells)
    # the seed reaches each top cell's own k-means, not only the top level
    one_top = [np.arange(2000)]
    splits = [_ivf._split_chunk(Chunk(0, 0, 1), (X, pca, one_top, 20, s))[0] for s in (1, 2)]
    assert not np.array_equal(*splits)


def test_build_cells_invariants_against_naive_recomputation(small_cells):
    """Positions are a permutation grouped by cell; every cell holds >= min_rows rows; z is
    the projection of the rows at each position; centroids are the cells' means; links list
    each cell, then its nearest cells by centroid distance."""
    X = _clustered(1500, 8, 8)
    pca, sample = _knn_common.fit_pca(X, 3, 0)
    cells = _ivf.build_cells(X, pca, sample, 25, 0, LocalBackend(2))
    np.testing.assert_array_equal(np.sort(cells.order), np.arange(1500))
    sizes = np.diff(cells.offsets)
    assert sizes.min() >= 25 and sizes.size > 10 and cells.offsets[-1] == 1500
    assert pca is not None
    np.testing.assert_allclose(cells.z, pca.transform(X[cells.order]), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(cells.half_sq, 0.5 * (cells.z**2).sum(axis=1), rtol=1e-5)
    for c in range(sizes.size):
        rows = cells.z[cells.offsets[c] : cells.offsets[c + 1]]
        np.testing.assert_allclose(cells.centroids[c], rows.mean(axis=0), rtol=1e-4, atol=1e-5)
    cent = cells.centroids.astype(np.float64)
    for c in range(sizes.size):
        d = ((cent - cent[c]) ** 2).sum(axis=1)
        d[c] = -1.0
        np.testing.assert_array_equal(
            cells.links[c], np.lexsort((np.arange(d.size), d))[: cells.links.shape[1]]
        )


def test_cell_candidates_equal_a_naive_loop(small_cells):
    """Each row of a cell: its own cell plus the (n_probe - 1) linked cells nearest to it,
    and among their rows the m smallest projected distances (as sets)."""
    X = _clustered(1500, 8, 9)
    pca, sample = _knn_common.fit_pca(X, 4, 0)
    cells = _ivf.build_cells(X, pca, sample, 20, 0, LocalBackend(1))
    z = cells.z.astype(np.float64)
    m, n_probe = 12, 3
    for c in range(0, cells.offsets.size - 1, 3):
        got = _ivf._cell_candidates(cells, c, m, n_probe)
        for r, pos in enumerate(range(cells.offsets[c], cells.offsets[c + 1])):
            others = cells.links[c, 1:]
            dc = ((cells.centroids[others].astype(np.float64) - z[pos]) ** 2).sum(axis=1)
            probed = [c, *others[np.argsort(dc, kind="stable")[: n_probe - 1]]]
            rows = np.concatenate(
                [np.arange(cells.offsets[j], cells.offsets[j + 1]) for j in probed]
            )
            d = ((z[rows] - z[pos]) ** 2).sum(axis=1)
            want = set(rows[np.argsort(d, kind="stable")[:m]])
            assert set(got[r]) == want, (c, r)


def test_cell_candidates_do_not_depend_on_the_selection_blocks(small_cells, monkeypatch):
    """The own cell's candidates are selected _PART rows of each _SUB-row product at a time:
    the same positions, in the same order, as selecting whole blocks (blocks of 16 rows
    selected 5 rows at a time, uneven last parts included, vs one part per block)."""
    X = _clustered(1500, 8, 13)
    pca, sample = _knn_common.fit_pca(X, 4, 0)
    cells = _ivf.build_cells(X, pca, sample, 20, 0, LocalBackend(1))
    monkeypatch.setattr(_ivf, "_SUB", 16)
    monkeypatch.setattr(_ivf, "_PART", 16)
    whole = [_ivf._cell_candidates(cells, c, 12, 3) for c in range(cells.offsets.size - 1)]
    monkeypatch.setattr(_ivf, "_PART", 5)
    for c, want in enumerate(whole):
        np.testing.assert_array_equal(_ivf._cell_candidates(cells, c, 12, 3), want)


def test_merge_small_hand_example():
    """Cells of 3, 1 and 2 rows with min_rows 2: the 1-row cell's row goes to the nearest
    remaining centroid; labels renumbered over the remaining cells."""
    z = np.array([[0.0], [0.1], [0.2], [5.0], [9.0], [9.1]], dtype=np.float32)
    lab = np.array([0, 0, 0, 1, 2, 2])
    cent = np.array([[0.1], [5.0], [9.05]], dtype=np.float32)
    new, kept = _ivf._merge_small(z, lab, cent, 2)
    np.testing.assert_array_equal(new, [0, 0, 0, 1, 1, 1])  # 5.0 is nearer 9.05 than 0.1
    np.testing.assert_array_equal(kept, cent[[0, 2]])
    alone, kept = _ivf._merge_small(z, np.zeros(6, dtype=np.int64), cent[:1], 10)
    np.testing.assert_array_equal(alone, 0)  # all cells small: the largest stays


def test_auto_is_exact_up_to_exact_max_then_ivf(small_cells):
    X = _clustered(400, 3, 10)
    assert build_knn_graph(X, n_neighbors=3, exact_max=400).exact
    auto = build_knn_graph(X, n_neighbors=3, exact_max=399)
    ivf = build_knn_graph(X, n_neighbors=3, method="ivf")
    assert not auto.exact
    np.testing.assert_array_equal(auto.indices, ivf.indices)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"method": "ivff"}, "method: got 'ivff'.*did you mean 'ivf'"),
        ({"exact_max": -1}, "exact_max: got -1"),
        ({"max_dims": 0}, "max_dims: got 0"),
        ({"chunk_size": 0, "method": "ivf"}, "chunk_size: got 0"),
        ({"random_state": "a"}, "random_state: got 'a'"),
        ({"n_neighbors": 0}, "n_neighbors: got 0"),
        ({"n_neighbors": 50}, "n_neighbors: 50 neighbours for 50 items"),
    ],
)
def test_knn_graph_bad_arguments_name_the_argument(kwargs, match):
    from truelabel.exceptions import ValidationError

    X = _clustered(50, 3, 11)
    with pytest.raises(ValidationError, match=match):
        build_knn_graph(X, **kwargs)


class _SerialBackend:
    """A backend that is not a LocalBackend (as a Ray backend would be): no shared scratch."""

    n_workers = 2

    def map(self, fn, chunks, shared):
        for chunk in chunks:
            yield fn(chunk, shared)


def test_split_chunk_into_a_scratch_slot_returns_the_same_cells_as_a_new_array(small_cells):
    """The projection is written into slot ``index % slots`` of the scratch (no new array)
    and every output is identical, bit for bit, to the call without scratch."""
    X = _clustered(1600, 12, 9)
    pca, _ = _knn_common.fit_pca(X, 4, 0)
    members = [np.arange(0, 1600, 2), np.arange(1, 1600, 2), np.arange(0, 1600, 3)]
    scratch = np.full((2, 900, 4), np.nan, dtype=np.float32)
    for t in range(3):
        plain = _ivf._split_chunk(Chunk(t, t, t + 1), (X, pca, members, 20, 0))
        slot = _ivf._split_chunk(Chunk(t, t, t + 1), (X, pca, members, 20, 0, scratch))
        for a, b in zip(plain, slot, strict=True):
            np.testing.assert_array_equal(a, b)
        assert np.shares_memory(slot[1], scratch[t % 2]) and slot[1].shape[0] == members[t].size
        np.testing.assert_array_equal(scratch[t % 2, : members[t].size], plain[1])


def test_build_cells_with_scratch_equals_a_backend_without_it(small_cells):
    """LocalBackend(2) projects into shared scratch slots (two top cells in flight at once);
    a non-local backend gets no scratch: the same cells and projection, bit for bit."""
    X = _clustered(3000, 12, 10)
    pca, sample = _knn_common.fit_pca(X, 4, 0)
    a = _ivf.build_cells(X, pca, sample, 20, 0, LocalBackend(2))
    b = _ivf.build_cells(X, pca, sample, 20, 0, _SerialBackend())
    assert a.offsets.size > 20  # several top cells, so slots are reused
    for field in ("order", "offsets", "centroids", "links", "z", "half_sq"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))


@pytest.mark.parametrize("project", [True, False])
def test_build_cells_with_spilled_slots_equals_a_backend_without_them(
    small_cells, monkeypatch, project
):
    """Forced spilling: the local backend's projection slots are a spill file (asserted on
    the array build_cells makes), and the cells equal a serial backend's without slots, bit
    for bit, with a PCA projection or the rows as they are (gathered by row ids)."""
    from truelabel._spill import is_spilled, spill_at

    X = _clustered(3000, 12, 10)
    pca, sample = _knn_common.fit_pca(X, 4 if project else 12, 0)
    assert (pca is None) == (not project)
    made: list[np.ndarray] = []
    real = _ivf.scratch

    def recording(*args, **kwargs):
        made.append(real(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(_ivf, "scratch", recording)
    with spill_at(0):
        a = _ivf.build_cells(X, pca, sample, 20, 0, LocalBackend(2))
    slots = [m for m in made if m.ndim == 3]
    assert len(slots) == 1 and is_spilled(slots[0]) and slots[0].shape[0] == 2
    b = _ivf.build_cells(X, pca, sample, 20, 0, _SerialBackend())
    assert a.offsets.size > 20
    for field in ("order", "offsets", "centroids", "links", "z", "half_sq"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))


def test_project_rows_without_pca_gathers_row_ids_into_out_by_blocks():
    X = _clustered(9000, 6, 13)
    rows = np.random.default_rng(1).permutation(9000)[:8500]  # three 4096-row blocks
    out = np.full((8500, 6), np.nan, dtype=np.float32)
    assert _knn_common.project_rows(X, rows, None, out=out) is out
    np.testing.assert_array_equal(out, X[rows])
    sl_out = np.empty((5000, 6), dtype=np.float32)
    np.testing.assert_array_equal(
        _knn_common.project_rows(X, slice(100, 5100), None, out=sl_out), X[100:5100]
    )


def test_project_rows_by_slice_with_pca_never_makes_an_n_row_index(monkeypatch):
    """A slice's rows are its own ids: no ``np.arange(n)`` of every row per call."""
    X = _clustered(6000, 12, 14)
    pca, _ = _knn_common.fit_pca(X, 4, 0)
    want = pca.transform(X[1000:1500])
    sizes: list[int] = []
    real = np.arange

    def counting(*args, **kwargs):
        out = real(*args, **kwargs)
        sizes.append(out.size)
        return out

    monkeypatch.setattr(_knn_common.np, "arange", counting)
    got = _knn_common.project_rows(X, slice(1000, 1500), pca)
    monkeypatch.undo()
    np.testing.assert_array_equal(got, want)
    assert max(sizes) == 500


def test_project_rows_into_out_equals_the_plain_projection():
    X = _clustered(5000, 12, 11)
    pca, _ = _knn_common.fit_pca(X, 4, 0)
    rows = np.random.default_rng(0).permutation(5000)[:4500]
    want = np.concatenate([pca.transform(X[rows[s : s + 4096]]) for s in (0, 4096)])
    out = np.empty((4500, 4), dtype=np.float32)
    got = _knn_common.project_rows(X, rows, pca, out=out)
    assert got is out
    np.testing.assert_array_equal(out, want)
    np.testing.assert_array_equal(_knn_common.project_rows(X, rows, pca), want)
    # float64 rows keep the float64 centring and product (rounded once, on storing)
    X64 = X.astype(np.float64) + 1e-3
    want64 = (X64[rows] - pca.mean) @ pca.components
    got64 = _knn_common.project_rows(X64, rows, pca, out=np.empty((4500, 4), np.float32))
    np.testing.assert_array_equal(got64, want64.astype(np.float32))
    np.testing.assert_array_equal(X[:3], _clustered(5000, 12, 11)[:3])  # input untouched


@pytest.mark.parametrize("method", ["exact", "ivf"])
def test_graph_indices_are_int32_and_int64_only_past_int32(small_cells, method):
    X = _clustered(1500, 12, 12)
    g = build_knn_graph(X, n_neighbors=5, method=method, max_dims=4)
    assert g.indices.dtype == np.int32 and g.distances.dtype == np.float32
    assert _knn.index_dtype(2**31 - 1) is np.int32 and _knn.index_dtype(2**31) is np.int64
