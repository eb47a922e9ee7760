"""Label passes as chunk maps: identical for every backend and chunk size, naive oracles,
validation fused into the chunk pass, and the statistics cache that must never go stale."""

from __future__ import annotations

import numpy as np
import pytest

from truelabel import ValidationError, find_label_issues, get_label_quality_scores
from truelabel.backend import LocalBackend
from truelabel.detect import _confident_learning as cl
from truelabel.detect import _rank as rank
from truelabel.detect import compute_confident_joint, estimate_noise_matrices
from truelabel.detect._filter import FILTER_METHODS
from truelabel.detect._rank import QUALITY_METHODS
from truelabel.detect._topn import _lowest_of

SETUPS = [(LocalBackend(1), None), (LocalBackend(2), 7), (LocalBackend(2), 100), (None, 1000)]


@pytest.fixture
def problem():
    rng = np.random.default_rng(5)
    n, k = 2500, 6
    true = rng.integers(0, k, n)
    labels = np.where(rng.random(n) < 0.2, rng.integers(0, k, n), true)
    z = rng.normal(size=(n, k)) + 2.0 * np.eye(k)[true]
    p = (np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)).astype(np.float32)
    return labels, p


def _naive_confident_joint(labels, p):
    """Textbook loops: thresholds = per-class mean self-confidence, then count item by item."""
    k = p.shape[1]
    t = np.array([p[labels == c, c].astype(np.float64).mean() for c in range(k)])
    cj = np.zeros((k, k), dtype=np.int64)
    for i in range(labels.shape[0]):
        ok = [c for c in range(k) if p[i, c] >= t[c] - 1e-6]
        if ok:
            cj[labels[i], max(ok, key=lambda c: p[i, c])] += 1
    return cj


@pytest.mark.parametrize("backend,chunk_size", SETUPS)
def test_confident_joint_equals_naive_loop_for_every_backend_and_chunk(
    problem, backend, chunk_size
):
    labels, p = problem
    cl._CACHE.clear()
    got = compute_confident_joint(
        labels, p, calibrate=False, backend=backend, chunk_size=chunk_size
    )
    np.testing.assert_array_equal(got, _naive_confident_joint(labels, p))


@pytest.mark.parametrize("backend,chunk_size", SETUPS[1:])
def test_every_filter_and_score_identical_across_backends_and_chunks(problem, backend, chunk_size):
    labels, p = problem
    cl._CACHE.clear()
    ref_masks = {f: find_label_issues(labels, p, filter_by=f) for f in FILTER_METHODS}
    ref_ranked = find_label_issues(labels, p, return_ranked=True, rank_by="normalized_margin")
    ref_scores = {m: get_label_quality_scores(labels, p, method=m) for m in QUALITY_METHODS}
    ref_noise = estimate_noise_matrices(labels, p)
    for f, ref in ref_masks.items():
        cl._CACHE.clear()  # each call recomputes its statistics with this chunking
        got = find_label_issues(labels, p, filter_by=f, backend=backend, chunk_size=chunk_size)
        np.testing.assert_array_equal(got, ref, err_msg=f)
    got_ranked = find_label_issues(
        labels,
        p,
        return_ranked=True,
        rank_by="normalized_margin",
        backend=backend,
        chunk_size=chunk_size,
    )
    np.testing.assert_array_equal(got_ranked, ref_ranked)
    for m, ref in ref_scores.items():
        cl._CACHE.clear()
        got = get_label_quality_scores(labels, p, method=m, backend=backend, chunk_size=chunk_size)
        np.testing.assert_allclose(got, ref, rtol=1e-12, atol=0, err_msg=m)
    cl._CACHE.clear()
    noise = estimate_noise_matrices(labels, p, backend=backend, chunk_size=chunk_size)
    np.testing.assert_array_equal(noise.confident_joint, ref_noise.confident_joint)
    np.testing.assert_allclose(noise.noise_matrix, ref_noise.noise_matrix, rtol=1e-12)


def test_thresholds_are_exact_sums_whatever_the_grouping(problem):
    labels, p = problem
    parts = [
        cl._pass_one_chunk(c, (labels, p, cl._projection(p.shape[1], p.dtype), False))[0]
        for c in cl.chunk_ranges(labels.shape[0], 13)
    ]
    left = parts[0]
    for part in parts[1:]:
        left = left.merge(part)
    right = parts[-1]
    for part in reversed(parts[:-1]):
        right = part.merge(right)
    np.testing.assert_array_equal(left.thresholds(), right.thresholds())
    naive = [p[labels == c, c].astype(np.float64).mean() for c in range(p.shape[1])]
    np.testing.assert_allclose(left.thresholds(), naive, rtol=0, atol=1e-11)


@pytest.mark.parametrize("spill", [False, True])
def test_lowest_of_is_the_n_smallest_by_score_then_index(monkeypatch, spill):
    """The n lowest values, ties by the lower index, in index order, over several blocks of
    the selection pass (the tied ones split across blocks), spilled or not."""
    from truelabel._spill import spill_at
    from truelabel.detect import _topn

    monkeypatch.setattr(_topn, "_BLOCK", 7)
    rng = np.random.default_rng(0)
    for val in (rng.integers(0, 5, 200).astype(float), rng.random(200), np.zeros(200)):
        for n in (0, 1, 17, 199, 200, 500):
            with spill_at(0 if spill else 1 << 40):
                got_i, got_v = _lowest_of(val, n)
            want = np.sort(np.lexsort((np.arange(200), val))[:n])
            np.testing.assert_array_equal(got_i, want)
            np.testing.assert_array_equal(got_v, val[want])
            assert got_v.dtype == val.dtype and got_i.dtype.kind == "i"  # indices, even none


@pytest.mark.parametrize("chunk_size", [1, 3, 1000])
def test_low_score_filter_equals_naive_selection(problem, chunk_size):
    """noise_aware filter: the n lowest scores overall, then argmax != label, then per class.

    The filter ranks by the posterior under the unshrunk (smoothed) noise matrix, not the
    default score's regime-shrunk one.
    """
    labels, p = problem
    from truelabel.detect._filter import _prune_counts
    from truelabel.detect._rank import _noise_aware_chunk

    stats = cl._compute_stats(labels, p)
    n_issues = int(_prune_counts(stats, 1, 1.0).sum())
    scores = _noise_aware_chunk(labels, p, cl._smoothed_noise_matrix(stats))
    lowest = np.lexsort((np.arange(labels.size), scores))[:n_issues]
    expected = np.zeros(labels.size, dtype=bool)
    expected[lowest] = True
    expected &= p.argmax(axis=1) != labels
    got = find_label_issues(labels, p, chunk_size=chunk_size, backend=LocalBackend(2))
    np.testing.assert_array_equal(got, expected)


def test_validation_runs_inside_the_chunk_pass_and_names_the_global_row(problem):
    labels, p = problem
    bad = p.copy()
    bad[1234, 2] = np.nan
    for fn in (find_label_issues, get_label_quality_scores):
        with pytest.raises(
            ValidationError, match=r"pred_probs: contains nan at row 1234, column 2"
        ):
            fn(labels, bad, chunk_size=100, backend=LocalBackend(2))
    bad = p.copy()
    bad[2001] *= 1.5
    with pytest.raises(ValidationError, match=r"rows must sum to 1 \(row 2001 sums to 1\.5"):
        get_label_quality_scores(labels, bad, method="self_confidence", chunk_size=64)
    bad = p.copy()
    bad[77, 0] = 1.5
    with pytest.raises(ValidationError, match=r"value 1\.5 at row 77 is outside \[0, 1\]"):
        estimate_noise_matrices(labels, bad, chunk_size=10)


class _CountingBackend:
    """LocalBackend that counts how often each per-chunk function ran."""

    def __init__(self) -> None:
        self.inner = LocalBackend(2)
        self.calls: dict[str, int] = {}

    @property
    def n_workers(self) -> int:
        return 2

    def map(self, fn, chunks, shared):
        self.calls[fn.__name__] = self.calls.get(fn.__name__, 0) + 1
        return self.inner.map(fn, chunks, shared)


def _fresh(labels, p):
    cl._CACHE.clear()
    return get_label_quality_scores(labels, p), find_label_issues(labels, p)


def test_second_call_on_the_same_arrays_skips_the_confident_pass(problem):
    labels, p = problem
    cl._CACHE.clear()
    be = _CountingBackend()
    find_label_issues(labels, p, backend=be)
    assert be.calls["_confident_chunk"] == 1
    scores = get_label_quality_scores(labels, p, backend=be)
    assert be.calls["_confident_chunk"] == 1  # reused
    assert be.calls["_pass_one_chunk"] == 2  # but validated and fingerprinted again
    # the default score shrinks the noise matrix by regime, the noise_aware filter does not:
    # the filter's single pass scores both matrices and keeps the default score
    assert "_score_chunk" not in be.calls
    assert be.calls["_ranked_chunk"] == 1
    cl._CACHE.clear()
    np.testing.assert_array_equal(scores, get_label_quality_scores(labels, p))
    scores[:] = -1.0  # the caller owns what it got back: the kept copy is unchanged
    again = get_label_quality_scores(labels, p)
    assert (again >= 0).all()


@pytest.mark.parametrize("backend,chunk_size", SETUPS)
def test_default_score_kept_by_the_filter_equals_the_unfused_score_pass(
    problem, backend, chunk_size
):
    """Scores after find_label_issues (fused into the filter's pass) are bit-identical to a
    plain score pass, and differ from the filter's own unshrunk-matrix scores."""
    labels, p = problem
    kw = {"backend": backend, "chunk_size": chunk_size}
    cl._CACHE.clear()
    plain = get_label_quality_scores(labels, p, **kw)
    cl._CACHE.clear()
    find_label_issues(labels, p, **kw)
    fused = get_label_quality_scores(labels, p, **kw)
    np.testing.assert_array_equal(fused, plain)
    stats = cl._compute_stats(labels, p)
    unshrunk = rank._noise_aware_chunk(labels, p, cl._smoothed_noise_matrix(stats))
    assert not np.array_equal(fused, unshrunk)  # the wrong matrix would be caught


def _swap_non_max_columns(labels, p):
    """Swap two columns of one row that are neither its label nor its argmax: the row sum,
    self-confidence and argmax stay, the thresholds too; only the confident guess may move."""
    for i in range(labels.size):
        others = [c for c in range(p.shape[1]) if c not in (labels[i], p[i].argmax())]
        a, b = others[0], others[1]
        if p[i, a] != p[i, b]:
            p[i, [a, b]] = p[i, [b, a]]
            return


MUTATIONS = {
    "swap two non-max columns of a row": lambda y, p: _swap_non_max_columns(y, p),
    "move one label": lambda y, p: y.__setitem__(3, (y[3] + 1) % p.shape[1]),
    "permute rows": lambda y, p: p.__setitem__(slice(None), p[::-1].copy()),
    "replace one row": lambda y, p: p.__setitem__(5, p[6]),
}


@pytest.mark.parametrize("mutation", list(MUTATIONS))
def test_cache_never_returns_stale_statistics_after_in_place_mutation(problem, mutation):
    labels, p = problem
    labels, p = labels.copy(), p.copy()
    cl._CACHE.clear()
    before = find_label_issues(labels, p)
    MUTATIONS[mutation](labels, p)
    got_scores = get_label_quality_scores(labels, p)  # must not reuse the old statistics
    got_mask = find_label_issues(labels, p)
    want_scores, want_mask = _fresh(labels, p)
    np.testing.assert_array_equal(got_scores, want_scores)
    np.testing.assert_array_equal(got_mask, want_mask)
    assert before is not None


def test_swap_mutation_really_changes_the_statistics():
    """The column swap above changes the confident joint (so the cache test can bite)."""
    p = np.array([[0.5, 0.3, 0.2], [0.45, 0.3, 0.25], [0.1, 0.25, 0.65], [0.6, 0.2, 0.2]])
    labels = np.array([0, 1, 2, 0])
    cl._CACHE.clear()
    cj = compute_confident_joint(labels, p, calibrate=False)
    q = p.copy()
    q[0, [1, 2]] = q[0, [2, 1]]  # label 0, argmax 0: swap the two others
    cj2 = compute_confident_joint(labels, q, calibrate=False)
    cl._CACHE.clear()
    np.testing.assert_array_equal(cj2, compute_confident_joint(labels, q, calibrate=False))
    # thresholds (0.55, 0.3, 0.65): row 0 is confident in class 1 before the swap, in none after
    np.testing.assert_array_equal(cj, [[1, 1, 0], [0, 1, 0], [0, 0, 1]])
    np.testing.assert_array_equal(cj2, [[1, 0, 0], [0, 1, 0], [0, 0, 1]])


def test_label_swap_that_keeps_counts_and_sums_is_still_seen():
    """Swapping the labels of rows 0 and 1 keeps class counts, self-confidence sums and
    argmax; only the labels' checksum tells the cached statistics are stale."""
    p = np.array(
        [
            [0.4, 0.3, 0.25, 0.05],
            [0.4, 0.3, 0.05, 0.25],
            [0.8, 0.1, 0.05, 0.05],
            [0.05, 0.9, 0.025, 0.025],
            [0.3, 0.3, 0.2, 0.2],
            [0.3, 0.3, 0.2, 0.2],
        ]
    )
    labels = np.array([0, 1, 0, 1, 2, 3])
    cl._CACHE.clear()
    before = compute_confident_joint(labels, p, calibrate=False)
    labels[[0, 1]] = labels[[1, 0]]
    after = compute_confident_joint(labels, p, calibrate=False)
    # thresholds (0.6, 0.6, 0.2, 0.2): row 0 is confident in class 2 only, row 1 in class 3
    assert before[0, 2] == 1 and before[1, 3] == 1
    assert after[1, 2] == 1 and after[0, 3] == 1 and after[0, 2] == 0


def test_cli_memory_maps_npy_inputs_and_the_passes_read_them(tmp_path, problem):
    from truelabel.cli._app import _load_npy

    labels, p = problem
    path = tmp_path / "p.npy"
    np.save(path, p)
    mm = _load_npy(path, "--pred-probs")
    assert isinstance(mm.base, np.memmap) and not mm.flags.writeable
    cl._CACHE.clear()
    np.testing.assert_array_equal(
        find_label_issues(labels, mm, chunk_size=100), find_label_issues(labels, p)
    )


def _reference_prune_by_noise_rate(labels, p, counts):
    """Textbook version: rank every column of every class in full, ties by index."""
    mask = np.zeros(labels.shape[0], dtype=bool)
    for s in range(p.shape[1]):
        rows = np.flatnonzero(labels == s)
        for y in np.flatnonzero(counts[s]):
            margin = p[rows, y] - p[rows, s]
            mask[rows[np.argsort(-margin, kind="stable")[: counts[s, y]]]] = True
    return mask & (p.argmax(axis=1) != labels)


@pytest.mark.parametrize("chunk_rows", [5, 1 << 15])
def test_prune_by_noise_rate_with_many_tied_margins_equals_full_ranking(monkeypatch, chunk_rows):
    """Probabilities on a coarse grid: many items share the threshold margin, and only the
    first ones in index order may fill the remaining slots."""
    import truelabel.detect._filter as f

    monkeypatch.setattr(f, "CHUNK_ROWS", chunk_rows)
    rng = np.random.default_rng(4)
    n, k = 3000, 4
    true = rng.integers(0, k, n)
    labels = np.where(rng.random(n) < 0.3, rng.integers(0, k, n), true)
    raw = rng.dirichlet(np.ones(k), size=n) + 1.2 * np.eye(k)[true]
    p = np.round(raw / raw.sum(axis=1, keepdims=True) * 5) / 5  # multiples of 0.2
    p[:, -1] = 1.0 - p[:, :-1].sum(axis=1)
    p = np.clip(p, 0, 1)
    p /= p.sum(axis=1, keepdims=True)
    cl._CACHE.clear()
    counts = f._prune_counts(cl._compute_stats(labels, p), 1, 1.0)
    want = _reference_prune_by_noise_rate(labels, p, counts)
    got = find_label_issues(labels, p, filter_by="prune_by_noise_rate", chunk_size=333)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("block_words", [1, 7, 64, 1 << 21])
def test_exact_groups_equal_a_naive_grouping_whatever_the_hash_block(monkeypatch, block_words):
    """Rows hashed in blocks of any size (down to one row) group exactly as identical bytes,
    also when many rows are duplicates (the re-check pass runs over several blocks)."""
    import truelabel.detect._duplicates as dup

    rng = np.random.default_rng(3)
    base = rng.normal(size=(9, 5)).astype(np.float32)
    X = base[rng.integers(0, 9, 200)]
    X[::17] += 1.0  # a few unique rows too
    monkeypatch.setattr(dup, "_HASH_BLOCK_WORDS", block_words)
    groups = dup._exact_groups(X)
    keys = [row.tobytes() for row in X]
    for i in range(len(keys)):
        for j in range(i):
            assert (groups[i] == groups[j]) == (keys[i] == keys[j]), (i, j)


def test_float32_radius_keeps_the_float64_comparison_at_the_boundary():
    """near_duplicate compares float32 distances with the largest float32 <= the radius:
    the same pairs as comparing them in float64, including radii just around a distance."""
    import truelabel.detect._duplicates as dup

    rng = np.random.default_rng(0)
    d = (rng.random(400) * 3.0).astype(np.float32)
    for x in d[:100].astype(np.float64):
        for radius in (x, x * (1 + 1e-9), x * (1 - 1e-9), np.nextafter(x, 0.0)):
            r32 = dup._float32_at_most(float(radius))
            want = d.astype(np.float64) <= radius
            np.testing.assert_array_equal(-d >= -r32, want)
