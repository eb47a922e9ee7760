"""Input checks of the active-learning API (each names the argument, the value and the fix)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..exceptions import ValidationError

__all__ = ["check_costs", "check_number", "check_teach"]


def check_number(
    argument: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    integer: bool = False,
) -> float:
    kinds = (int, np.integer) if integer else (int, float, np.integer, np.floating)
    ok = isinstance(value, kinds) and not isinstance(value, bool) and np.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if ok:
        return float(value)
    lo = "" if low is None else f"{'(' if low_open else '['}{low:g}"
    hi = "" if high is None else f"{high:g}{')' if high_open else ']'}"
    span = (
        f" in {lo}, {hi}" if lo and hi else (f" {'>' if low_open else '>='} {low:g}" if lo else "")
    )
    what = "an int" if integer else "a number"
    raise ValidationError(argument, f"got {value!r}, expected {what}{span}", f"pass {what}{span}")


def check_costs(costs: Any, n_items: int) -> np.ndarray:
    if costs is None:
        return np.ones(n_items)
    arr = np.asarray(costs, dtype=float) if not isinstance(costs, str) else np.array([np.nan])
    if arr.ndim == 0:
        arr = np.full(n_items, float(arr))
    if arr.shape != (n_items,):
        raise ValidationError(
            "item_costs",
            f"has shape {arr.shape}, expected ({n_items},)",
            "pass one cost per pool item, or one number for all",
        )
    bad = ~(np.isfinite(arr) & (arr > 0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValidationError(
            "item_costs", f"item {i} costs {arr[i]!r}", "pass finite costs > 0 (e.g. seconds)"
        )
    return arr


def check_teach(
    item_ids: Any,
    labels: Any,
    annotator_ids: Any,
    n_items: int,
    classes: list[Any] | None,
    default_annotator: str,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    items = np.asarray(item_ids).ravel()
    labs = (
        np.asarray(labels, dtype=object).ravel()
        if not hasattr(labels, "dtype")
        else np.asarray(labels).ravel()
    )
    if items.size == 0:
        raise ValidationError("item_ids", "is empty", "pass at least one item id")
    if items.dtype.kind not in "iu":
        if (
            items.dtype.kind == "f"
            and np.all(np.isfinite(items))
            and np.all(items == np.round(items))
        ):
            items = items.astype(np.int64)
        else:
            raise ValidationError(
                "item_ids",
                f"holds {items[:3].tolist()} (dtype {items.dtype})",
                f"pass integer row indices into features, in [0, {n_items})",
            )
    bad = (items < 0) | (items >= n_items)
    if bad.any():
        raise ValidationError(
            "item_ids",
            f"holds {items[bad][0]!r}, outside the pool of {n_items} items",
            f"pass row indices of features, in [0, {n_items})",
        )
    if labs.size != items.size:
        raise ValidationError(
            "labels",
            f"has {labs.size} values for {items.size} item ids",
            "pass one label per item id",
        )
    missing = np.array([v is None or (isinstance(v, float) and np.isnan(v)) for v in labs.tolist()])
    if missing.any():
        raise ValidationError(
            "labels",
            f"position {int(np.flatnonzero(missing)[0])} has no label",
            "drop unanswered items",
        )
    if classes is not None:
        unknown = [v for v in labs.tolist() if v not in classes]
        if unknown:
            raise ValidationError(
                "labels",
                f"{unknown[0]!r} is not one of classes {classes[:20]!r}",
                "pass labels from classes, or leave classes=None",
            )
    if annotator_ids is None:
        annots = np.full(items.size, default_annotator, dtype=object)
    elif np.ndim(annotator_ids) == 0:
        annots = np.full(items.size, annotator_ids, dtype=object)
    else:
        annots = np.asarray(annotator_ids, dtype=object).ravel()
        if annots.size != items.size:
            raise ValidationError(
                "annotator_ids",
                f"has {annots.size} values for {items.size} item ids",
                "pass one annotator id per answer, one id for all, or None",
            )
    return items.astype(np.int64), labs, annots
