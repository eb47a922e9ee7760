"""Issue 11, flat memory: the one counting sort by bucket (``truelabel._spill.bucket_positions``)
that issues.csv's range sort, the exact-copy leaders and ``prune_by_noise_rate``'s grouping by
class share. Its positions are NumPy's stable argsort of the buckets, value by value, for any
block size, spilled or not; the filter built on it flags what the in-memory path flags."""

from __future__ import annotations

import numpy as np
import pytest

from truelabel._spill import bucket_positions, is_spilled, spill_at
from truelabel.detect import _confident_learning as cl
from truelabel.detect import _filter as f
from truelabel.detect import find_label_issues

NEVER = 1 << 40


def _cases(rng: np.random.Generator) -> list[tuple[np.ndarray, int]]:
    """(buckets, n_buckets): many small buckets, empty buckets, one bucket, skewed sizes,
    buckets in descending row order (every row moves), a single row, no rows."""
    return [
        (rng.integers(0, 7, 500), 7),
        (rng.integers(0, 3, 300) * 3, 10),  # buckets 1, 2, 4, 5, ... and the last stay empty
        (np.zeros(40, dtype=np.int64), 1),
        (np.where(rng.random(400) < 0.9, 2, rng.integers(0, 5, 400)), 5),
        (np.repeat(np.arange(6)[::-1], 11), 6),
        (np.array([3]), 4),
        (np.empty(0, dtype=np.int64), 3),
    ]


@pytest.mark.parametrize("block", [1, 2, 7, 64, 1 << 18])
@pytest.mark.parametrize("spill", [False, True])
def test_positions_are_the_stable_argsort_and_starts_the_cumulative_counts(block, spill):
    rng = np.random.default_rng(block)
    for b, k in _cases(rng):
        with spill_at(0 if spill else NEVER):
            pos, starts = bucket_positions(b.size, lambda sl, b=b: b[sl], k, block=block)
        assert pos.dtype == np.int64 and pos.shape == (b.size,)
        assert is_spilled(pos) == (spill and b.size > 0)
        np.testing.assert_array_equal(pos, np.argsort(b, kind="stable"), err_msg=str(b[:9]))
        assert starts.tolist() == [0, *np.cumsum(np.bincount(b, minlength=k)).tolist()]
        for i in range(k):  # bucket i's rows, in row order
            rows = pos[starts[i] : starts[i + 1]]
            assert rows.tolist() == np.flatnonzero(b == i).tolist()


def test_bucket_of_sees_blocks_of_at_most_block_rows_covering_the_rows_twice():
    """Two passes (count, scatter) over the same blocks, in row order, none above ``block``
    rows: what bounds the memory besides the result."""
    seen: list[tuple[int, int]] = []
    b = np.arange(10) % 3

    def bucket_of(sl: slice) -> np.ndarray:
        seen.append((sl.start, sl.stop))
        return b[sl]

    pos, _ = bucket_positions(10, bucket_of, 3, block=4)
    assert seen == [(0, 4), (4, 8), (8, 10)] * 2
    assert pos.tolist() == [0, 3, 6, 9, 1, 4, 7, 2, 5, 8]


@pytest.mark.parametrize("spill", [False, True])
def test_class_slices_group_rows_by_class_in_row_order(spill, monkeypatch):
    monkeypatch.setattr(f, "_CLASS_BLOCK", 13)  # many blocks on 200 rows
    labels = np.random.default_rng(0).integers(0, 5, 200)
    labels[labels == 3] = 4  # class 3 empty
    with spill_at(0 if spill else NEVER):
        order, bounds = f._class_slices(labels, 6)  # class 5 empty too, at the end
    assert is_spilled(order) == spill
    np.testing.assert_array_equal(order, np.argsort(labels, kind="stable"))
    assert bounds.tolist() == [0, *np.cumsum(np.bincount(labels, minlength=6)).tolist()]


@pytest.mark.parametrize("filter_by", ["prune_by_noise_rate", "both"])
def test_prune_by_noise_rate_spilled_equals_in_memory_and_the_reference(filter_by, monkeypatch):
    """The class grouping in a spill file (every array spilled, blocks of 64 labels) flags
    exactly the items the in-memory path flags, which are the full ranking's."""
    from .test_confident_learning import _reference_prune_by_noise_rate

    rng = np.random.default_rng(11)
    n, k = 2000, 5
    true = rng.integers(0, k, n)
    labels = np.where(rng.random(n) < 0.25, rng.integers(0, k, n), true)
    raw = rng.dirichlet(np.ones(k), size=n) + 1.5 * np.eye(k)[true]
    p = raw / raw.sum(axis=1, keepdims=True)
    cl._CACHE.clear()
    in_memory = find_label_issues(labels, p, filter_by=filter_by)
    monkeypatch.setattr(f, "_CLASS_BLOCK", 64)
    cl._CACHE.clear()
    with spill_at(0):
        spilled = find_label_issues(labels, p, filter_by=filter_by)
    cl._CACHE.clear()
    np.testing.assert_array_equal(np.asarray(spilled), in_memory)
    assert 0 < in_memory.sum() < n
    if filter_by == "prune_by_noise_rate":
        counts = f._prune_counts(cl._compute_stats(labels, p), 1, 1.0)
        np.testing.assert_array_equal(in_memory, _reference_prune_by_noise_rate(labels, p, counts))
