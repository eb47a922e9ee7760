"""Labeling functions and the applier that turns a DataFrame into a vote matrix.

A labeling function (LF) votes a class or abstains (:data:`ABSTAIN` = -1, ``None`` or NaN).
Three kinds, by what the function receives:

- ``mode="frame"``: the whole DataFrame, returns one vote per row (vectorized);
- ``mode="column"``: one column as a Series, returns one vote per row (vectorized);
- ``mode="row"``: one row at a time (a namedtuple from ``DataFrame.itertuples``, so ``x.text``
  works; a column whose name is not a Python identifier is renamed ``_<position>`` there),
  returns one vote. This is a **Python loop over rows** (about a microsecond of
  overhead per row plus the function's own cost): fine for tens of thousands of rows, write a
  frame/column LF or use :func:`keyword_lf` / :func:`regex_lf` (pandas ``str.contains``,
  vectorized) for more.

Votes may be class names (mapped through ``classes=``) or class indices.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .._validation import check_column, closest
from ..exceptions import ValidationError

__all__ = [
    "ABSTAIN",
    "LabelingFunction",
    "apply_lfs",
    "keyword_lf",
    "labeling_function",
    "regex_lf",
]

#: The vote of a labeling function that does not vote.
ABSTAIN = -1

_MODES = ("row", "column", "frame")


class LabelingFunction:
    """A named function that votes one class per item or abstains.

    Parameters
    ----------
    name : str
        Unique name (a column of the vote matrix and a row of :func:`lf_summary`).
    fn : callable
        ``fn(x, **resources)``; ``x`` is a row, a Series or the DataFrame (see ``mode``).
    resources : mapping, optional
        Keyword arguments passed to every call (word lists, lookup tables, models).
    mode : {"row", "column", "frame"}, default "row"
        What ``fn`` receives; "row" is a Python loop over rows, the others are vectorized.
    column : str, optional
        The column given to a ``mode="column"`` function (required there).
    """

    def __init__(
        self,
        name: str,
        fn: Callable[..., Any],
        *,
        resources: Mapping[str, Any] | None = None,
        mode: str = "row",
        column: str | None = None,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ValidationError("name", f"got {name!r}", "give every LF a non-empty str name")
        if mode not in _MODES:
            raise ValidationError(
                "mode", f"got {mode!r}, expected one of {_MODES}", "pass mode='row' or 'frame'"
            )
        if mode == "column" and not column:
            raise ValidationError(
                "column", f"LF {name!r} has mode='column' but no column", "pass column='text'"
            )
        self.name = name
        self.fn = fn
        self.resources = dict(resources or {})
        self.mode = mode
        self.column = column

    def __repr__(self) -> str:
        return f"LabelingFunction({self.name!r}, mode={self.mode!r})"

    def __call__(self, x: Any) -> Any:
        return self.fn(x, **self.resources)

    def raw_votes(self, frame: pd.DataFrame) -> np.ndarray:
        """The function's outputs for every row of ``frame`` (before mapping to indices)."""
        if self.mode == "frame":
            out = self.fn(frame, **self.resources)
        elif self.mode == "column":
            col = check_column("column", str(self.column), frame.columns)
            out = self.fn(frame[col], **self.resources)
        else:  # the documented Python loop over rows
            out = [self.fn(row, **self.resources) for row in frame.itertuples(index=False)]
        arr = np.asarray(out, dtype=object) if isinstance(out, list) else np.asarray(out)
        if arr.shape != (len(frame),):
            raise ValidationError(
                "lfs",
                f"LF {self.name!r} returned shape {arr.shape} for {len(frame)} rows",
                "a frame/column LF must return one vote per row (ABSTAIN = -1 for none)",
            )
        return arr


def labeling_function(
    name: str | None = None,
    *,
    resources: Mapping[str, Any] | None = None,
    mode: str = "row",
    column: str | None = None,
) -> Callable[[Callable[..., Any]], LabelingFunction]:
    """Decorator making a function a :class:`LabelingFunction` (name defaults to its own).

    Examples
    --------
    >>> @labeling_function(resources={"words": ("win", "prize")})
    ... def lf_prize(x, words):
    ...     return "spam" if any(w in x.text.lower() for w in words) else None
    >>> frame = pd.DataFrame({"text": ["You WIN a prize", "see you at 5"]})
    >>> apply_lfs(frame, [lf_prize], classes=["ham", "spam"]).tolist()
    [[1], [-1]]
    """

    def wrap(fn: Callable[..., Any]) -> LabelingFunction:
        return LabelingFunction(
            name or fn.__name__, fn, resources=resources, mode=mode, column=column
        )

    return wrap


def _pattern_lf(
    name: str, pattern: str, label: Any, column: str, case: bool, flags: int
) -> LabelingFunction:
    try:
        re.compile(pattern, flags)
    except re.error as exc:
        raise ValidationError(
            "pattern", f"LF {name!r}: {pattern!r} is not a valid regex ({exc})", "escape it"
        ) from None

    def fires(series: pd.Series) -> np.ndarray:
        with warnings.catch_warnings():  # groups in a user's pattern are fine here
            warnings.filterwarnings("ignore", "This pattern is interpreted", UserWarning)
            hit = series.astype("string").str.contains(pattern, case=case, flags=flags)
        mask = hit.fillna(False).to_numpy(dtype=bool)
        out = np.full(mask.shape[0], ABSTAIN, dtype=object)
        out[mask] = label
        return out

    return LabelingFunction(name, fires, mode="column", column=column)


def keyword_lf(
    name: str,
    keywords: Sequence[str],
    label: Any,
    *,
    column: str = "text",
    case: bool = False,
) -> LabelingFunction:
    """An LF voting ``label`` when ``column`` contains any of ``keywords`` as whole words.

    Vectorized (one pandas ``str.contains`` over the column). Keywords are matched literally
    between word boundaries, case-insensitively unless ``case=True``.

    >>> lf = keyword_lf("kw_free", ["free", "txt"], "spam")
    >>> frame = pd.DataFrame({"text": ["FREE entry", "freedom", "txt me"]})
    >>> apply_lfs(frame, [lf], classes=["ham", "spam"]).ravel().tolist()
    [1, -1, 1]
    """
    words = [keywords] if isinstance(keywords, str) else list(keywords)
    if not words or not all(isinstance(w, str) and w for w in words):
        raise ValidationError(
            "keywords", f"LF {name!r} got {keywords!r}", "pass a non-empty list of non-empty str"
        )
    pattern = r"\b(?:" + "|".join(re.escape(w) for w in words) + r")\b"
    return _pattern_lf(name, pattern, label, column, case, 0)


def regex_lf(
    name: str, pattern: str, label: Any, *, column: str = "text", flags: int = re.IGNORECASE
) -> LabelingFunction:
    """An LF voting ``label`` when ``column`` matches the regular expression ``pattern``.

    Vectorized (pandas ``str.contains``); ``flags`` default to case-insensitive.

    >>> lf = regex_lf("money", r"[$£]\\d+", "spam")
    >>> apply_lfs(pd.DataFrame({"text": ["win £100", "ok"]}), [lf], classes=["ham", "spam"]).ravel()
    array([ 1, -1], dtype=int8)
    """
    return _pattern_lf(name, pattern, label, column, True, flags)


def _vote_dtype(n_classes: int) -> type[np.signedinteger[Any]]:
    if n_classes <= 127:
        return np.int8
    return np.int16 if n_classes <= 32767 else np.int32


def _to_indices(raw: np.ndarray, lf: str, names: list[str]) -> np.ndarray:
    """Map one LF's raw outputs (names, indices, None/NaN/-1) to class indices, -1 abstain."""
    k = len(names)
    if raw.dtype.kind == "b":
        raise ValidationError(
            "lfs", f"LF {lf!r} returned booleans", "return a class name, index or ABSTAIN"
        )
    if raw.dtype.kind in "iu":
        num = raw.astype(np.float64)
    else:  # names, indices, None/NaN mixed: look names up first, then read numbers
        ser = pd.Series(raw, dtype=object)
        missing = ser.isna().to_numpy()
        by_name = pd.Index(names).get_indexer(pd.Index(ser.where(~missing, "").astype(str)))
        by_num = pd.to_numeric(ser, errors="coerce").to_numpy(dtype=np.float64)
        num = np.where(by_name >= 0, by_name, by_num)
        num[missing] = ABSTAIN
        unknown = np.flatnonzero(np.isnan(num))
        if unknown.size:
            value = raw[unknown[0]]
            hint = closest(str(value), names)
            raise ValidationError(
                "lfs",
                f"LF {lf!r} voted {value!r} (row {int(unknown[0])}), not a class in {names}",
                f"did you mean {hint!r}?" if hint else "vote a class name from classes= or ABSTAIN",
            )
    frac = np.flatnonzero(num != np.round(num))
    if frac.size:
        raise ValidationError(
            "lfs", f"LF {lf!r} voted {num[frac[0]]!r} (row {int(frac[0])})", "vote integer indices"
        )
    idx = num.astype(np.int64)
    bad = np.flatnonzero((idx < ABSTAIN) | (idx >= k))
    if bad.size:
        raise ValidationError(
            "lfs",
            f"LF {lf!r} voted {int(idx[bad[0]])} (row {int(bad[0])}), outside [-1, {k})",
            "vote a class index 0..n_classes-1 or ABSTAIN (-1)",
        )
    return idx


def apply_lfs(
    frame: pd.DataFrame, lfs: Sequence[LabelingFunction], *, classes: Sequence[Any]
) -> np.ndarray:
    """Apply labeling functions to every row of ``frame``: the vote matrix.

    Parameters
    ----------
    frame : DataFrame
        One row per item.
    lfs : sequence of LabelingFunction
        Names must be unique; columns of the result follow this order.
    classes : sequence
        Class names in index order; an LF voting a name gets its position here, an LF voting
        an int is taken as an index.

    Returns
    -------
    ndarray of shape (n_items, n_lfs)
        Class indices, :data:`ABSTAIN` (-1) where an LF did not vote; the smallest signed
        integer dtype holding the classes (int8 up to 127 classes).
    """
    if not isinstance(frame, pd.DataFrame):
        raise ValidationError(
            "frame", f"expected a pandas DataFrame, got {type(frame).__name__}", "wrap it"
        )
    names = [str(c) for c in classes]
    if len(names) < 2 or len(set(names)) != len(names):
        raise ValidationError(
            "classes", f"got {list(classes)!r}", "pass at least two distinct class names"
        )
    lf_list = list(lfs)
    if not lf_list or not all(isinstance(lf, LabelingFunction) for lf in lf_list):
        raise ValidationError(
            "lfs", f"got {lfs!r}", "pass a list of @labeling_function / keyword_lf objects"
        )
    seen: set[str] = set()
    for lf in lf_list:
        if lf.name in seen:
            raise ValidationError("lfs", f"two LFs are named {lf.name!r}", "rename one of them")
        seen.add(lf.name)
    out = np.empty((len(frame), len(lf_list)), dtype=_vote_dtype(len(names)))
    for j, lf in enumerate(lf_list):
        out[:, j] = _to_indices(lf.raw_votes(frame), lf.name, names)
    return out
