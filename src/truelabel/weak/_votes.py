"""The vote matrix: its check at the public edge and the LF analysis table.

The analysis is a chunk map over item rows whose statistics are integer counts, so any
backend and any chunk size give the same table.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..backend import Backend, Chunk, chunk_ranges, get_backend, map_reduce
from ..exceptions import ValidationError

__all__ = ["check_votes", "lf_summary"]


def check_votes(
    votes: Any, n_classes: int | None = None, *, argument: str = "L", n_lfs: int | None = None
) -> tuple[np.ndarray, int]:
    """A 2-D integer vote matrix with values in ``[-1, n_classes)``; returns it and K.

    ``n_classes=None`` infers ``max vote + 1`` (at least 2).
    """
    arr = np.asarray(votes)
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValidationError(
            argument,
            f"expected a non-empty 2-D vote matrix (n_items, n_lfs), got shape {arr.shape}",
            "pass one row per item and one column per labeling function (apply_lfs builds it)",
        )
    if arr.dtype.kind == "f":
        bad = ~np.isfinite(arr) | (arr != np.round(arr))
        if bad.any():
            i, j = (int(v[0]) for v in np.nonzero(bad))
            raise ValidationError(
                argument,
                f"entry ({i}, {j}) is {float(arr[i, j])!r}, not an integer vote",
                "use -1 (ABSTAIN) for no vote and 0..n_classes-1 for classes",
            )
        arr = arr.astype(np.int64)
    elif arr.dtype.kind not in "iu":
        raise ValidationError(
            argument,
            f"dtype {arr.dtype} is not integer",
            "encode votes as class indices with -1 for ABSTAIN (apply_lfs(..., classes=))",
        )
    if n_lfs is not None and arr.shape[1] != n_lfs:
        raise ValidationError(
            argument,
            f"has {arr.shape[1]} LF columns, the model was fitted on {n_lfs}",
            "pass the LFs in the same order as at fit time",
        )
    lo, hi = int(arr.min()), int(arr.max())
    if n_classes is None:
        n_classes = max(hi + 1, 2)
    elif not isinstance(n_classes, int | np.integer) or n_classes < 2:
        raise ValidationError("n_classes", f"got {n_classes!r}", "pass an int >= 2")
    if lo < -1 or hi >= n_classes:
        bad_value = lo if lo < -1 else hi
        i, j = (int(v[0]) for v in np.nonzero(arr == bad_value))
        raise ValidationError(
            argument,
            f"vote {bad_value} at ({i}, {j}) is outside the class range [-1, {n_classes})",
            "use -1 (ABSTAIN) for no vote and 0..n_classes-1 for classes, or raise n_classes",
        )
    return arr, int(n_classes)


def _summary_chunk(chunk: Chunk, shared: tuple[np.ndarray, np.ndarray | None, int]) -> np.ndarray:
    """Integer counts per LF: [coverage, overlaps, conflicts, correct, incorrect,
    votes per class (K)] for the rows of one chunk."""
    votes, gold, k = shared
    lv = votes[chunk.slice]
    fired = lv >= 0
    n_fired = fired.sum(axis=1)
    hi = lv.max(axis=1)
    lo = np.where(fired, lv, np.iinfo(np.int64).max).min(axis=1)
    conflict_row = (n_fired >= 2) & (lo != hi)
    out = np.zeros((lv.shape[1], 5 + k), dtype=np.int64)
    out[:, 0] = fired.sum(axis=0)
    out[:, 1] = (fired & (n_fired >= 2)[:, None]).sum(axis=0)
    out[:, 2] = (fired & conflict_row[:, None]).sum(axis=0)
    if gold is not None:
        g = gold[chunk.slice][:, None]
        known = fired & (g >= 0)
        out[:, 3] = (known & (lv == g)).sum(axis=0)
        out[:, 4] = (known & (lv != g)).sum(axis=0)
    for c in range(k):
        out[:, 5 + c] = (lv == c).sum(axis=0)
    return out


def lf_summary(
    L: Any,
    *,
    lf_names: Sequence[str] | None = None,
    labels: Any = None,
    classes: Sequence[Any] | None = None,
    backend: Backend | str | None = None,
    chunk_size: int | None = None,
) -> pd.DataFrame:
    """Coverage, overlaps, conflicts, polarity and empirical accuracy of each LF.

    Parameters
    ----------
    L : array of shape (n_items, n_lfs)
        Vote matrix, -1 = abstain.
    lf_names : sequence of str, optional
        Row names (default ``lf_0``, ``lf_1``, ...).
    labels : array of shape (n_items,), optional
        Gold class indices, -1 where unknown; adds ``correct``, ``incorrect`` and
        ``emp_accuracy`` (NaN for an LF that never voted on a gold item).
    classes : sequence, optional
        Class names (their number is K; polarity is written with them).
    backend, chunk_size
        The chunk map over item rows (counts only: identical for any chunking).

    Returns
    -------
    DataFrame indexed by LF name
        ``polarity`` (sorted classes the LF voted), ``coverage`` (share of items it voted on),
        ``overlaps`` (share of items where it and another LF voted), ``conflicts`` (share
        where another LF voted a different class), then the gold columns.

    Examples
    --------
    >>> L = np.array([[0, 0], [0, 1], [-1, 1], [-1, -1]])
    >>> lf_summary(L, labels=[0, 0, 1, -1])[["coverage", "conflicts", "emp_accuracy"]].round(3)
    ... # doctest: +NORMALIZE_WHITESPACE
          coverage  conflicts  emp_accuracy
    lf
    lf_0      0.50       0.25         1.000
    lf_1      0.75       0.25         0.667
    """
    names_k = None if classes is None else list(classes)
    votes, k = check_votes(L, None if names_k is None else len(names_k))
    n, m = votes.shape
    names = [f"lf_{j}" for j in range(m)] if lf_names is None else [str(s) for s in lf_names]
    if len(names) != m:
        raise ValidationError(
            "lf_names", f"has {len(names)} names for {m} LF columns", "pass one name per column"
        )
    gold = None
    if labels is not None:
        gold = np.asarray(labels)
        if gold.shape != (n,) or gold.dtype.kind not in "iu":
            raise ValidationError(
                "labels",
                f"expected {n} integer class indices (-1 = unknown), got shape {gold.shape} "
                f"and dtype {gold.dtype}",
                "pass one gold index per row of L",
            )
        if gold.min() < -1 or gold.max() >= k:
            raise ValidationError(
                "labels", f"values span [{gold.min()}, {gold.max()}], outside [-1, {k})", "fix"
            )
        gold = gold.astype(np.int64)
    counts = map_reduce(
        _summary_chunk,
        chunk_ranges(n, chunk_size),
        (votes, gold, k),
        combine=np.add,
        backend=get_backend(backend),
    )
    class_names = names_k if names_k is not None else list(range(k))
    table = pd.DataFrame(
        {
            "polarity": [[class_names[c] for c in np.flatnonzero(row[5:])] for row in counts],
            "coverage": counts[:, 0] / n,
            "overlaps": counts[:, 1] / n,
            "conflicts": counts[:, 2] / n,
        },
        index=pd.Index(names, name="lf"),
    )
    if gold is not None:
        judged = counts[:, 3] + counts[:, 4]
        table["correct"] = counts[:, 3]
        table["incorrect"] = counts[:, 4]
        with np.errstate(invalid="ignore", divide="ignore"):
            table["emp_accuracy"] = np.where(judged > 0, counts[:, 3] / judged, np.nan)
    return table
