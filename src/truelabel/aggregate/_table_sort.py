"""The answers of an annotation table in (item, annotator, row) order, without N-sized
temporaries beyond the outputs (issue 11: memory flat in the number of answers).

:func:`pair_order` replaces a stable ``np.argsort`` of the int64 pair codes (at 3e7 answers:
the pair codes, the permutation, its sorted copy and the sort's buffer, about 1 GB of
anonymous memory) by one in-place sort of int64 keys in a scratch array
(``truelabel._spill``: a spill file when large); :func:`gathered` applies the permutation a
block at a time. ``Annotations._encode`` (``_table.py``) uses both.
"""

from __future__ import annotations

import numpy as np

from .._spill import scratch
from .._validation import iter_chunks

__all__ = ["gathered", "pair_order"]

#: widest sort key (pair code and row number in one int64) before the argsort fallback
_KEY_BITS = 63


def gathered(codes: np.ndarray, keep: np.ndarray, chunk: int) -> np.ndarray:
    """``codes[keep]`` into a scratch array, a block of ``keep`` at a time (``np.take`` of a
    whole int32 ``keep`` would first copy it to int64)."""
    out = scratch(keep.size, codes.dtype)
    for sl in iter_chunks(keep.size, chunk):
        np.take(codes, keep[sl], out=out[sl], mode="clip")
    return out


def pair_order(
    items: np.ndarray, annots: np.ndarray, n_items: int, n_annots: int, chunk: int
) -> tuple[np.ndarray, np.ndarray]:
    """The rows ordered by (item, annotator, row) and the first row of each pair in that order.

    What ``np.argsort(items * n_annots + annots, kind="stable")`` gives, without its N-sized
    temporaries (the int64 pair codes, the int64 permutation, the sorted copy and the sort's
    buffer: about 1 GB beside the codes at 3e7 answers): each row becomes one int64 key
    ``pair << bits(row) | row`` in a scratch array (a spill file when large), sorted in place;
    the keys are distinct, so any sort is the stable one. The permutation comes out as int32
    (int64 from 2**31 rows), a scratch array too. Keys wider than :data:`_KEY_BITS` (about
    2**63 pairs x rows) take the argsort.
    """
    n = len(items)
    shift = max(int(n - 1).bit_length(), 1)
    if max(int(n_items * n_annots - 1).bit_length(), 1) + shift > _KEY_BITS:
        pair = items.astype(np.int64) * n_annots + annots
        order = np.argsort(pair, kind="stable")
        pair = pair[order]
        first = np.ones(n, dtype=bool)
        first[1:] = pair[1:] != pair[:-1]
        return order, first
    key = scratch(n, np.int64)
    for sl in iter_chunks(n, chunk):
        block = items[sl].astype(np.int64)
        block *= n_annots
        block += annots[sl]
        block <<= shift
        block += np.arange(sl.start, sl.stop, dtype=np.int64)
        key[sl] = block
    key.sort()  # in place (introsort): no N-sized buffer
    mask = (1 << shift) - 1
    order = scratch(n, np.int32 if n < 2**31 else np.int64)
    first = scratch(n, bool)
    for sl in iter_chunks(n, chunk):
        block = key[sl]
        order[sl] = block & mask
        pair = block >> shift
        first[sl.start + 1 : sl.stop] = pair[1:] != pair[:-1]
        first[sl.start] = sl.start == 0 or bool(pair[0] != key[sl.start - 1] >> shift)
    return order, first
