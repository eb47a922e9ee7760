"""Input checks at the public edge. Private ``_compute_*`` functions trust their input.

Every failure raises :class:`~truelabel.exceptions.ValidationError` naming the argument,
the bad value, what was expected and the fix.
"""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from .exceptions import TruelabelWarning, ValidationError

__all__ = [
    "CHUNK_ROWS",
    "check_choice",
    "check_column",
    "check_features",
    "check_labels",
    "check_pred_probs",
    "check_pred_probs_block",
    "check_random_state",
    "closest",
    "iter_chunks",
    "relay_warnings",
]

#: Rows per chunk for streaming passes over large arrays (bounded memory).
CHUNK_ROWS = 1 << 15


def iter_chunks(n: int, chunk: int = CHUNK_ROWS) -> Iterable[slice]:
    """Row ranges covering ``range(n)``."""
    for start in range(0, n, chunk):
        yield slice(start, min(start + chunk, n))


@contextmanager
def relay_warnings(sink: list[str]) -> Iterator[None]:
    """Record the warnings raised in the block, then re-emit every one of them (same
    category and origin) and append the text of truelabel's own warnings to ``sink``
    (each text once), so results can carry what was noticed while computing them."""
    failed = False
    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as recorded:
            warnings.simplefilter("always")
            try:
                yield
            finally:
                caught = list(recorded or [])
    except BaseException:
        failed = True
        raise
    finally:
        for w in caught:
            if issubclass(w.category, TruelabelWarning) and str(w.message) not in sink:
                sink.append(str(w.message))
            try:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
            except Warning:
                if not failed:  # warnings turned into errors: raise unless already failing
                    raise


def closest(name: str, options: Iterable[str]) -> str | None:
    """The option closest to ``name`` (for 'did you mean' hints), or None."""
    opts = [str(o) for o in options]
    match = difflib.get_close_matches(str(name), opts, n=1, cutoff=0.5)
    if match:
        return match[0]
    lowered = {o.lower(): o for o in opts}
    return lowered.get(str(name).lower())


def check_choice(argument: str, value: Any, options: Sequence[str]) -> str:
    """``value`` must be one of ``options``."""
    if value in options:
        return str(value)
    hint = closest(str(value), options)
    fix = f"did you mean {hint!r}?" if hint else f"use one of {', '.join(map(repr, options))}"
    raise ValidationError(
        argument, f"got {value!r}, expected one of {', '.join(map(repr, options))}", fix
    )


def check_column(argument: str, column: str, columns: Iterable[Any]) -> str:
    """``column`` must name a column of the table; suggest the closest one otherwise."""
    cols = [str(c) for c in columns]
    if column in cols:
        return column
    hint = closest(column, cols)
    fix = f"did you mean {hint!r}?" if hint else f"available columns: {', '.join(cols[:20])}"
    raise ValidationError(argument, f"no column named {column!r}", fix)


def check_random_state(random_state: Any) -> np.random.Generator:
    """A NumPy Generator from an int seed, a Generator or None."""
    if random_state is None or isinstance(random_state, int | np.integer):
        return np.random.default_rng(None if random_state is None else int(random_state))
    if isinstance(random_state, np.random.Generator):
        return random_state
    raise ValidationError(
        "random_state",
        f"got {type(random_state).__name__}",
        "pass an int seed, a numpy.random.Generator or None",
    )


def check_pred_probs(
    pred_probs: Any,
    *,
    n_items: int | None = None,
    n_classes: int | None = None,
    argument: str = "pred_probs",
    multi_label: bool = False,
    atol: float = 1e-3,
    check_values: bool = True,
) -> np.ndarray:
    """A 2-D float array of probabilities, rows summing to 1 (unless ``multi_label``).

    float32 and float64 input is kept as is (no copy); other dtypes become float64.
    Checks run chunk by chunk so memory stays bounded for large inputs;
    ``check_values=False`` checks only dtype and shape, for callers that check the values
    chunk by chunk themselves (:func:`check_pred_probs_block`) inside their own pass.
    """
    arr = np.asarray(pred_probs)
    if arr.dtype not in (np.float32, np.float64):
        if not np.issubdtype(arr.dtype, np.number):
            raise ValidationError(
                argument, f"dtype {arr.dtype} is not numeric", "pass a float array of probabilities"
            )
        arr = arr.astype(np.float64)
    if arr.ndim != 2:
        raise ValidationError(
            argument,
            f"expected shape (n_items, n_classes), got shape {arr.shape}",
            "pass one row per item and one column per class",
        )
    if arr.shape[0] == 0:
        raise ValidationError(argument, "has no rows", "pass at least one item")
    if arr.shape[1] < 2:
        raise ValidationError(
            argument,
            f"has {arr.shape[1]} column(s)",
            "pass at least two classes (one column per class)",
        )
    if n_items is not None and arr.shape[0] != n_items:
        raise ValidationError(
            argument,
            f"has {arr.shape[0]} rows but labels has {n_items} items",
            "pass one row of probabilities per labelled item, in the same order",
        )
    if n_classes is not None and arr.shape[1] != n_classes:
        raise ValidationError(
            argument,
            f"has {arr.shape[1]} columns but there are {n_classes} classes",
            "pass one column per class, in class order",
        )
    if check_values:
        for sl in iter_chunks(arr.shape[0]):
            check_pred_probs_block(
                arr[sl], sl.start, argument=argument, multi_label=multi_label, atol=atol
            )
    return arr


def check_pred_probs_block(
    block: np.ndarray,
    start: int,
    *,
    argument: str = "pred_probs",
    multi_label: bool = False,
    atol: float = 1e-3,
    row_sums: np.ndarray | None = None,
) -> np.ndarray | None:
    """Check the values of rows ``start:start + len(block)``: finite, in [0, 1], rows sum to 1.

    ``row_sums`` may be given when the caller's pass already computed them. Returns the
    row sums (None when ``multi_label``). Raises for the first bad row of the block.
    """
    lo, hi = block.min(), block.max()
    if not (lo >= -1e-6 and hi <= 1 + 1e-6):  # NaN fails both comparisons
        finite = np.isfinite(block)
        if not finite.all():
            r, c = np.argwhere(~finite)[0]
            raise ValidationError(
                argument,
                f"contains {block[r, c]} at row {start + r}, column {c}",
                "remove NaN/inf values (check the model's output)",
            )
        bad = np.argwhere((block < -1e-6) | (block > 1 + 1e-6))[0]
        raise ValidationError(
            argument,
            f"value {block[bad[0], bad[1]]:.4g} at row {start + bad[0]} is outside [0, 1]",
            "pass probabilities, e.g. softmax(logits)",
        )
    if multi_label:
        return None
    sums = block.sum(axis=1, dtype=np.float64) if row_sums is None else row_sums
    off = np.abs(sums - 1.0) > atol
    if off.any():
        r = int(np.flatnonzero(off)[0])
        raise ValidationError(
            argument,
            f"rows must sum to 1 (row {start + r} sums to {float(sums[r]):.4g})",
            "pass probabilities, e.g. softmax(logits)",
        )
    return sums


def _as_int64(arr: np.ndarray) -> np.ndarray:
    """``arr.astype(np.int64)`` into a scratch array: a spill file above the spill threshold
    (:mod:`truelabel._spill`), so converted labels (int32, floats) are not 8 bytes per item
    of anonymous memory; int64 input is never copied."""
    from ._spill import scratch

    out = scratch(arr.shape, np.int64)
    np.copyto(out, arr, casting="unsafe")
    return out


def check_labels(
    labels: Any,
    *,
    n_classes: int | None = None,
    n_items: int | None = None,
    argument: str = "labels",
    require_all_classes: bool = False,
) -> np.ndarray:
    """A 1-D int64 array of class indices in ``[0, n_classes)``."""
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise ValidationError(
            argument,
            f"expected a 1-D array of class indices, got shape {arr.shape}",
            "for multi-label data use find_multilabel_issues; otherwise pass one label per item",
        )
    if arr.size == 0:
        raise ValidationError(argument, "is empty", "pass at least one label")
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all():
            i = int(np.flatnonzero(~np.isfinite(arr))[0])
            raise ValidationError(
                argument,
                f"item {i} has a missing label ({arr[i]})",
                "drop unlabelled items first (Dataset.labeled_mask) or fill them",
            )
        if not np.all(arr == np.round(arr)):
            i = int(np.flatnonzero(arr != np.round(arr))[0])
            raise ValidationError(
                argument, f"item {i} has non-integer label {arr[i]}", "pass integer class indices"
            )
        arr = _as_int64(arr)
    elif arr.dtype.kind in "iu":
        arr = arr if arr.dtype == np.dtype(np.int64) else _as_int64(arr)
    else:
        raise ValidationError(
            argument,
            f"dtype {arr.dtype} is not integer (first value {arr[0]!r})",
            "encode class names to integers first, e.g. with truelabel.Dataset",
        )
    if n_items is not None and arr.shape[0] != n_items:
        raise ValidationError(
            argument, f"has {arr.shape[0]} items, expected {n_items}", "pass one label per item"
        )
    lo, hi = int(arr.min()), int(arr.max())
    if lo < 0 or (n_classes is not None and hi >= n_classes):
        bad = lo if lo < 0 else hi
        i = int(np.flatnonzero(arr == bad)[0])
        expected = f"[0, {n_classes})" if n_classes is not None else "non-negative"
        raise ValidationError(
            argument,
            f"label {bad} at item {i} is outside the class set {expected}",
            "labels must index columns of pred_probs (0-based)",
        )
    if require_all_classes and n_classes is not None:
        counts = np.bincount(arr, minlength=n_classes)
        if (counts == 0).any():
            missing = np.flatnonzero(counts == 0)
            raise ValidationError(
                argument,
                f"class(es) {missing[:10].tolist()} have no examples",
                "drop the empty classes from pred_probs or add examples for them",
            )
    return arr


def check_features(
    features: Any, *, n_items: int | None = None, argument: str = "features"
) -> np.ndarray:
    """A finite 2-D float array, one row per item."""
    arr = np.asarray(features)
    if arr.ndim != 2:
        raise ValidationError(
            argument, f"expected shape (n_items, n_dims), got shape {arr.shape}", "pass a 2-D array"
        )
    if arr.shape[1] == 0:
        raise ValidationError(
            argument,
            f"has shape {arr.shape}: no feature column",
            "pass at least one number per item, e.g. embeddings from truelabel.encode",
        )
    if not np.issubdtype(arr.dtype, np.number):
        raise ValidationError(argument, f"dtype {arr.dtype} is not numeric", "pass numbers")
    if arr.dtype not in (np.float32, np.float64):
        arr = arr.astype(np.float32)
    if n_items is not None and arr.shape[0] != n_items:
        raise ValidationError(
            argument,
            f"has {arr.shape[0]} rows, expected {n_items}",
            "pass one feature row per item, in the same order as labels",
        )
    for sl in iter_chunks(arr.shape[0]):
        if not np.isfinite(arr[sl]).all():
            r = int(np.flatnonzero(~np.isfinite(arr[sl]).all(axis=1))[0]) + sl.start
            raise ValidationError(
                argument, f"row {r} contains NaN or inf", "impute or drop those rows first"
            )
    return arr
