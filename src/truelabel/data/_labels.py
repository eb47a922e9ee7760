"""Label encodings: class names <-> integer indices, and multi-label parsing.

A label is *missing* when it is ``None``, NaN (``pd.NA`` too) or an empty (or blank) string.
Missing labels encode to ``-1``. String labels are stripped of surrounding whitespace (a
:class:`~truelabel.exceptions.TruelabelWarning` says so when it happens). Class names found in
the data are put in natural order: ``"c2"`` before ``"c10"``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from .._validation import closest
from ..exceptions import ValidationError
from ._names import _stripped_names, _warn_case_variants, natural_key, natural_sorted

__all__ = [
    "LabelEncoding",
    "as_object_array",
    "missing_mask",
    "natural_key",
    "natural_sorted",
    "parse_multilabel",
]

_SEPARATORS = ("|", ";", ",")
_COLLECTIONS = (list, tuple, set, frozenset, np.ndarray)
_NO_LABELS_FIX = "label at least one item, or name the classes (classes=[...]) to start with none"


def as_object_array(values: Any) -> np.ndarray:
    """A 1-D object array of the values (Series, Index, lists, arrays)."""
    if isinstance(values, pd.Series | pd.Index):
        return values.to_numpy(dtype=object)
    if isinstance(values, np.ndarray):
        return values.astype(object) if values.ndim == 1 else values
    items = list(values)
    out = np.empty(len(items), dtype=object)
    for i, v in enumerate(items):  # element-wise, so lists of lists stay 1-D
        out[i] = v
    return out


def missing_mask(values: Any) -> npt.NDArray[np.bool_]:
    """True where a label is missing: None, NaN, ``pd.NA`` or a blank string."""
    if isinstance(values, np.ndarray) and values.dtype.kind in "iub":
        return np.zeros(values.shape[0], dtype=bool)
    if isinstance(values, np.ndarray) and values.dtype.kind == "f":
        return np.isnan(values)
    arr = as_object_array(values)
    mask = np.asarray(pd.isna(arr), dtype=bool)
    blank = np.fromiter(
        (isinstance(v, str) and not v.strip() for v in arr), dtype=bool, count=len(arr)
    )
    return mask | blank


def _py(v: Any) -> Any:
    """A plain Python value for messages (``1`` rather than ``np.int64(1)``)."""
    return v.item() if isinstance(v, np.generic) else v


def _is_int_like(v: Any) -> bool:
    if isinstance(v, bool | np.bool_):
        return False
    if isinstance(v, int | np.integer):
        return True
    return isinstance(v, float | np.floating) and float(v).is_integer()


def _check_classes(classes: Iterable[Any], argument: str = "classes") -> tuple[str, ...]:
    """A tuple of unique, non-empty class names (ints become their string form)."""
    if isinstance(classes, str):
        raise ValidationError(
            argument, f"got the string {classes!r}", "pass a list of class names, e.g. ['a', 'b']"
        )
    names = tuple(str(c).strip() for c in classes)
    if not names:
        raise ValidationError(argument, "is empty", "pass at least one class name")
    if "" in names:
        raise ValidationError(argument, "contains an empty class name", "name every class")
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValidationError(
                argument, f"class {name!r} is listed twice", "list each class once"
            )
        seen.add(name)
    return names


def _unknown_label(value: Any, row: int, classes: Sequence[str], argument: str) -> ValidationError:
    value = _py(value)
    hint = closest(str(value), classes)
    fix = f"did you mean {hint!r}?" if hint else f"classes are {', '.join(map(repr, classes[:20]))}"
    return ValidationError(argument, f"row {row} has label {value!r}, which is not in classes", fix)


def _label_kind(present: np.ndarray, argument: str) -> str:
    """'int' if every present value is an integer, 'name' if every one is a string or bool."""
    if present.dtype.kind in "iu":
        return "int"
    if present.dtype.kind in "bUS":
        return "name"
    if present.dtype.kind == "f":
        if not np.all(present == np.round(present)):
            v = _py(present[np.flatnonzero(present != np.round(present))[0]])
            raise ValidationError(
                argument,
                f"label {v!r} is not an integer class index",
                "pass class names (strings) or integer class indices",
            )
        return "int"
    # vectorised verdict for the common cases (all strings / all ints / all bools);
    # anything else gets the element-wise check below, which names the offending value
    inferred = pd.api.types.infer_dtype(present, skipna=True)
    if inferred in ("string", "boolean", "empty"):
        return "name"
    if inferred == "integer":
        return "int"
    kinds = set()
    for v in present:
        if isinstance(v, str | np.str_ | bool | np.bool_):
            kinds.add("name")
        elif _is_int_like(v):
            kinds.add("int")
        else:
            raise ValidationError(
                argument,
                f"label {_py(v)!r} is neither a class name nor an integer class index",
                "pass class names (strings) or integer class indices",
            )
        if len(kinds) > 1:
            raise ValidationError(
                argument,
                "mixes integer class indices and class names",
                "use one kind of label, e.g. convert all labels to strings",
            )
    return kinds.pop() if kinds else "name"


def _int_codes(present: np.ndarray, n_classes: int | None, argument: str) -> np.ndarray:
    codes = np.asarray(present.astype(np.int64) if present.dtype == object else present)
    codes = codes.astype(np.int64, copy=False)
    if codes.size and codes.min() < 0:
        v = int(codes.min())
        raise ValidationError(
            argument,
            f"label {v} is negative",
            "integer labels must be class indices 0..K-1; mark missing labels with None or NaN",
        )
    if n_classes is not None and codes.size and codes.max() >= n_classes:
        v = int(codes.max())
        raise ValidationError(
            argument,
            f"label {v} is outside the class set [0, {n_classes})",
            "integer labels must index classes= (0-based), or pass more class names",
        )
    return codes


@dataclass(frozen=True)
class LabelEncoding:
    """The class names, in index order: class ``i`` is ``classes[i]``.

    Parameters
    ----------
    classes : tuple of str
        Unique, non-empty class names.

    Examples
    --------
    >>> enc = LabelEncoding.from_labels(["dog", "cat", None, "dog"])
    >>> enc.classes
    ('cat', 'dog')
    >>> enc.encode(["dog", None, "cat"]).tolist()
    [1, -1, 0]
    >>> enc.decode([0, -1]).tolist()
    ['cat', None]
    """

    classes: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "classes", _check_classes(self.classes))

    @property
    def n_classes(self) -> int:
        """Number of classes ``K``."""
        return len(self.classes)

    @classmethod
    def from_labels(
        cls, values: Any, *, classes: Iterable[Any] | None = None, argument: str = "labels"
    ) -> LabelEncoding:
        """Build the encoding for ``values`` (class names or integer class indices).

        Class names give the unique names in natural order (``"c2"`` before ``"c10"``),
        unless ``classes`` lists them (in the order wanted). Integers ``0..K-1`` stay as they
        are; the classes are named ``"0".."K-1"`` unless ``classes`` names them. Labels
        outside ``classes`` raise :class:`~truelabel.exceptions.ValidationError`.

        Warns (:class:`~truelabel.exceptions.TruelabelWarning`) when labels had surrounding
        spaces (they are stripped) and, when ``classes`` is not given, when names differ only
        in case or spacing (``"ham"`` / ``"Ham"``: kept apart; the warning suggests the merge).
        """
        arr = as_object_array(values) if not isinstance(values, np.ndarray) else values
        if arr.ndim != 1:
            raise ValidationError(
                argument,
                f"expected one label per item, got shape {arr.shape}",
                "for multi-label data pass multi_label=True or use parse_multilabel",
            )
        present = arr[~missing_mask(arr)]
        given = None if classes is None else _check_classes(classes)
        if _label_kind(present, argument) == "int":
            codes = _int_codes(present, None if given is None else len(given), argument)
            if given is not None:
                return cls(given)
            k = int(codes.max()) + 1 if codes.size else 0
            if k == 0:
                raise ValidationError(argument, "no labelled rows", _NO_LABELS_FIX)
            return cls(tuple(str(i) for i in range(k)))
        names = _stripped_names(present, argument)
        if given is None:
            if names.size == 0:
                raise ValidationError(argument, "no labelled rows", _NO_LABELS_FIX)
            _warn_case_variants(names, argument)
            return cls(tuple(natural_sorted(pd.unique(names).tolist())))
        enc = cls(given)
        enc.encode(arr, argument=argument)  # raises on labels outside ``classes``
        return enc

    def encode(self, values: Any, *, argument: str = "labels") -> npt.NDArray[np.int64]:
        """Class indices, shape ``(n_items,)`` int64, ``-1`` where the label is missing.

        Strings are looked up by name; integers are kept as class indices.
        """
        arr = as_object_array(values) if not isinstance(values, np.ndarray) else values
        if arr.ndim != 1:
            raise ValidationError(
                argument, f"expected shape (n_items,), got {arr.shape}", "pass one label per item"
            )
        missing = missing_mask(arr)
        out = np.full(arr.shape[0], -1, dtype=np.int64)
        present = arr[~missing]
        if present.size == 0:
            return out
        if _label_kind(present, argument) == "int":
            out[~missing] = _int_codes(present, self.n_classes, argument)
            return out
        names = [str(v).strip() for v in present]
        codes = pd.Index(self.classes).get_indexer(pd.Index(names, dtype=object))
        if (codes < 0).any():
            j = int(np.flatnonzero(codes < 0)[0])
            row = int(np.flatnonzero(~missing)[j])
            raise _unknown_label(names[j], row, self.classes, argument)
        out[~missing] = codes
        return out

    def decode(self, ints: Any) -> np.ndarray:
        """Class names (object array) for class indices; ``None`` where the index is ``-1``."""
        idx = np.asarray(ints, dtype=np.int64)
        if idx.size and (idx.max() >= self.n_classes or idx.min() < -1):
            bad = int(idx.max() if idx.max() >= self.n_classes else idx.min())
            raise ValidationError(
                "ints",
                f"index {bad} is outside [-1, {self.n_classes})",
                "pass class indices (or -1 for missing)",
            )
        names = np.asarray((*self.classes, None), dtype=object)
        return names[np.where(idx < 0, self.n_classes, idx)]

    def index_of(self, name: str) -> int:
        """The index of class ``name``."""
        if str(name) in self.classes:
            return self.classes.index(str(name))
        hint = closest(str(name), self.classes)
        fix = f"did you mean {hint!r}?" if hint else f"classes are {', '.join(self.classes[:20])}"
        raise ValidationError("name", f"no class named {name!r}", fix)


def _split(value: str, sep: str | None) -> list[str]:
    parts = [value] if sep is None else value.split(sep)
    return [p.strip() for p in parts if p.strip()]


def _detect_sep(arr: np.ndarray) -> str | None:
    strings = [v for v in arr if isinstance(v, str)]
    for sep in _SEPARATORS:
        if any(sep in v for v in strings):
            return sep
    return None


def _matrix_input(
    values: Any, classes: Iterable[Any] | None
) -> tuple[np.ndarray, tuple[str, ...], np.ndarray]:
    if isinstance(values, pd.DataFrame):
        names = _check_classes(values.columns if classes is None else classes)
        mat = values.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        mat = np.asarray(values, dtype=np.float64)
        names = _check_classes(
            (str(i) for i in range(mat.shape[1])) if classes is None else classes
        )
    if mat.shape[1] != len(names):
        raise ValidationError(
            "labels",
            f"matrix has {mat.shape[1]} columns but classes has {len(names)} names",
            "pass one class name per column",
        )
    missing = np.isnan(mat).all(axis=1)
    filled = np.nan_to_num(mat[~missing], nan=-1.0)
    bad = (filled != 0) & (filled != 1)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        row = int(np.flatnonzero(~missing)[r])
        raise ValidationError(
            "labels",
            f"row {row}, column {names[c]!r} is {mat[row, c]!r}; a label matrix holds 0/1",
            "pass 0/1 indicators (or NaN for a whole unlabelled row)",
        )
    out = np.zeros(mat.shape, dtype=np.int8)
    out[~missing] = filled.astype(np.int8)
    return out, names, missing


def parse_multilabel(
    values: Any, *, sep: str | None = None, classes: Iterable[Any] | None = None
) -> tuple[npt.NDArray[np.int8], tuple[str, ...], npt.NDArray[np.bool_]]:
    """Parse multi-label annotations into a 0/1 indicator matrix.

    Parameters
    ----------
    values : sequence or 2-D array
        One entry per item, each either a list/tuple/set of class names or integer class
        indices, a delimited string such as ``"a|b"``, or missing (None, NaN, ``""``).
        A 2-D NumPy array or DataFrame is read as a 0/1 matrix (a row of NaN is missing).
        An empty list is a labelled item with no classes.
    sep : str, optional
        Separator for delimited strings. If None, the first of ``"|"``, ``";"``, ``","``
        found in the strings is used (a string without any is a single class name).
    classes : sequence of str, optional
        The class names in order. Default: sorted unique names found, or ``"0".."K-1"``
        for integer indices, or the DataFrame's columns.

    Returns
    -------
    matrix : ndarray of int8, shape (n_items, n_classes)
        1 where the item has the class; rows of missing items are all 0.
    classes : tuple of str
    missing : ndarray of bool, shape (n_items,)

    Examples
    --------
    >>> m, classes, missing = parse_multilabel(["a|b", ["b"], None])
    >>> m.tolist(), classes, missing.tolist()
    ([[1, 1], [0, 1], [0, 0]], ('a', 'b'), [False, False, True])
    """
    if isinstance(values, pd.DataFrame) or (isinstance(values, np.ndarray) and values.ndim == 2):
        return _matrix_input(values, classes)
    arr = as_object_array(values)
    if arr.ndim != 1:
        raise ValidationError(
            "labels", f"expected shape (n_items,), got {arr.shape}", "pass one entry per item"
        )
    n = arr.shape[0]
    missing = np.zeros(n, dtype=bool)
    if sep is None:
        sep = _detect_sep(arr)
    rows: list[list[Any]] = []
    for i, v in enumerate(arr):
        if isinstance(v, _COLLECTIONS):
            items = list(v)
            rows.append([x.strip() if isinstance(x, str) else x for x in items])
        elif isinstance(v, str):
            parts = _split(v, sep)
            missing[i] = not parts
            rows.append(parts)
        elif v is None or pd.isna(v):
            missing[i] = True
            rows.append([])
        else:
            rows.append([v])
    tokens = np.asarray([t for row in rows for t in row], dtype=object)
    kind = _label_kind(tokens, "labels")
    given = None if classes is None else _check_classes(classes)
    if kind == "int":
        codes = _int_codes(tokens, None if given is None else len(given), "labels")
        k = len(given) if given is not None else (int(codes.max()) + 1 if codes.size else 0)
        names = given if given is not None else tuple(str(i) for i in range(k))
        lookup: dict[Any, int] = {}
    else:
        found = natural_sorted({str(t) for t in tokens})
        names = given if given is not None else tuple(found)
        lookup = {name: j for j, name in enumerate(names)}
    if not names:
        raise ValidationError("labels", "no classes found", "label some rows or pass classes=")
    out = np.zeros((n, len(names)), dtype=np.int8)
    for i, row in enumerate(rows):
        for t in row:
            if kind == "int":
                out[i, int(t)] = 1
                continue
            j = lookup.get(str(t))
            if j is None:
                raise _unknown_label(t, i, names, "labels")
            out[i, j] = 1
    return out, names, missing
