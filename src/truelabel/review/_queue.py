"""The review queue: merge candidate rows from any number of sources, by priority.

A source is anything with a ``name`` and a ``candidates()`` method returning a DataFrame with
the columns ``item_id``, ``reason``, ``priority`` (in [0, 1], higher = review first) and
optionally ``suggested_label`` (:class:`ReviewSource`). The queue never looks at where the
rows came from, so a new source (active learning, ...) plugs in without changing it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd

from ..exceptions import ValidationError

__all__ = ["CANDIDATE_COLUMNS", "ReviewQueue", "ReviewSource"]

#: columns every source's candidates() frame has (``suggested_label`` is optional)
CANDIDATE_COLUMNS = ("item_id", "reason", "priority")


@runtime_checkable
class ReviewSource(Protocol):
    """Something that proposes items for review."""

    name: str

    def candidates(self) -> pd.DataFrame:
        """Rows ``item_id, reason, priority[, suggested_label]``; one item may appear more
        than once (several reasons)."""
        ...


def _checked(source: ReviewSource) -> pd.DataFrame:
    frame = source.candidates()
    missing = [c for c in CANDIDATE_COLUMNS if c not in frame.columns]
    if missing:
        raise ValidationError(
            "sources",
            f"source {source.name!r} gave candidates without the columns {missing}",
            f"return a DataFrame with {list(CANDIDATE_COLUMNS)} (+ suggested_label)",
        )
    priority = frame["priority"].to_numpy(np.float64)
    bad = ~((priority >= 0.0) & (priority <= 1.0))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValidationError(
            "sources",
            f"source {source.name!r} gave priority {priority[row]} (row {row})",
            "give priorities in [0, 1], higher = review first",
        )
    out = pd.DataFrame(
        {
            "item_id": frame["item_id"].to_numpy(),
            "source": source.name,
            "reason": frame["reason"].astype(str).to_numpy(object),
            "priority": priority,
            "suggested_label": (
                frame["suggested_label"].to_numpy(object)
                if "suggested_label" in frame
                else np.full(len(frame), None, dtype=object)
            ),
        }
    )
    return out


class ReviewQueue:
    """Merge review sources into one queue: one row per item, highest priority first.

    An item proposed by several sources (or for several reasons) appears once, with the
    highest of its priorities and every reason kept (``reasons``, highest priority first).
    Its ``suggested_label`` is the one of its highest-priority reason that suggests one.
    Ties in priority are broken by item id, so the order is reproducible.

    Parameters
    ----------
    sources : sequence of ReviewSource

    Examples
    --------
    >>> import pandas as pd
    >>> class Fixed:
    ...     def __init__(self, name, rows):
    ...         self.name, self.rows = name, rows
    ...     def candidates(self):
    ...         return pd.DataFrame(self.rows, columns=["item_id", "reason", "priority"])
    >>> queue = ReviewQueue([Fixed("a", [(1, "x", 0.2), (2, "y", 0.9)]), Fixed("b", [(1, "z", 0.5)])])
    >>> built = queue.build()
    >>> built["item_id"].tolist(), built["priority"].tolist(), built["n_reasons"].tolist()
    ([2, 1], [0.9, 0.5], [1, 2])
    """

    def __init__(self, sources: Sequence[ReviewSource]) -> None:
        names = [s.name for s in sources]
        if len(set(names)) != len(names):
            raise ValidationError("sources", f"names repeat: {names}", "give each source a name")
        self.sources = list(sources)

    def candidates(self) -> pd.DataFrame:
        """Every source's rows, stacked: ``item_id, source, reason, priority, suggested_label``."""
        frames = [_checked(s) for s in self.sources]
        if not frames:
            return pd.DataFrame(
                columns=["item_id", "source", "reason", "priority", "suggested_label"]
            )
        return pd.concat(frames, ignore_index=True)

    def build(self) -> pd.DataFrame:
        """The queue: ``item_id, priority, suggested_label, reasons, n_reasons, sources``.

        ``reasons`` is a list of ``{source, reason, priority, suggested_label}`` dicts.
        """
        rows = self.candidates()
        columns = ["item_id", "priority", "suggested_label", "reasons", "n_reasons", "sources"]
        if rows.empty:
            return pd.DataFrame(columns=columns)
        # within an item: highest priority first, then source order, then row order
        rows["_order"] = np.arange(len(rows))
        rows = rows.sort_values(
            ["item_id", "priority", "_order"], ascending=[True, False, True], kind="stable"
        )
        groups = rows.groupby("item_id", sort=True)
        first = groups.head(1).set_index("item_id")
        has_label = rows[rows["suggested_label"].notna()]
        suggested = has_label.groupby("item_id", sort=True)["suggested_label"].first()
        reasons: dict[object, list[dict[str, object]]] = {}
        columns_in_order = zip(
            rows["item_id"].tolist(),
            rows["source"].tolist(),
            rows["reason"].tolist(),
            rows["priority"].tolist(),
            rows["suggested_label"].tolist(),
            strict=True,
        )
        for item, source, reason, priority, label in columns_in_order:
            record: dict[str, object] = {
                "source": source,
                "reason": reason,
                "priority": priority,
                "suggested_label": _plain(label),
            }
            reasons.setdefault(item, []).append(record)
        out = pd.DataFrame(
            {
                "item_id": first.index.to_numpy(),
                "priority": first["priority"].to_numpy(np.float64),
                "suggested_label": suggested.reindex(first.index).to_numpy(object),
            }
        )
        out["suggested_label"] = pd.Series(
            [_plain(v) for v in out["suggested_label"]], dtype=object, index=out.index
        )
        per_item = [reasons[i] for i in out["item_id"].tolist()]
        out["reasons"] = pd.Series(per_item, dtype=object, index=out.index)
        out["n_reasons"] = [len(r) for r in per_item]
        out["sources"] = pd.Series(
            [sorted({str(r["source"]) for r in rs}) for rs in per_item],
            dtype=object,
            index=out.index,
        )
        order = np.lexsort((out["item_id"].to_numpy(), -out["priority"].to_numpy()))
        return out.iloc[order].reset_index(drop=True)[columns]

    def batches(self, size: int) -> Iterator[pd.DataFrame]:
        """The queue in consecutive batches of ``size`` items (the last may be shorter)."""
        if not isinstance(size, int | np.integer) or size < 1:
            raise ValidationError("size", f"got {size!r}", "pass an int >= 1")
        queue = self.build()
        for start in range(0, len(queue), int(size)):
            yield queue.iloc[start : start + int(size)].reset_index(drop=True)


def _plain(value: object) -> object:
    """None for missing values (NaN/None), the value otherwise."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    return value
