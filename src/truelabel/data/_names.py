"""Class-name hygiene: natural order (``"c2"`` before ``"c10"``) and warnings for labels
that were stripped of spaces or differ only in case or spacing (``"ham"`` / ``"Ham"``)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from ..exceptions import TruelabelWarning, warn_at_caller

__all__ = ["natural_key", "natural_sorted"]

_DIGIT_RUNS = re.compile(r"([0-9]+)")
#: variant groups named in one warning message
_MAX_VARIANT_GROUPS = 5


def natural_key(name: str) -> tuple[tuple[Any, ...], str]:
    """Sort key comparing runs of digits as numbers: ``"c2"`` sorts before ``"c10"``.

    Ties (``"c01"`` and ``"c1"``) fall back to plain text order, so the order is total.

    Examples
    --------
    >>> sorted(["c10", "c2", "c1", "b"], key=natural_key)
    ['b', 'c1', 'c2', 'c10']
    """
    parts = _DIGIT_RUNS.split(name)
    # split() alternates text (even positions) and digit runs (odd): same types line up
    return tuple(int(p) if i % 2 else p for i, p in enumerate(parts)), name


def natural_sorted(names: Iterable[str]) -> list[str]:
    """``names`` in natural order (see :func:`natural_key`)."""
    return sorted(names, key=natural_key)


def _stripped_names(present: np.ndarray, argument: str) -> np.ndarray:
    """The labels as stripped strings; warn (once) when stripping changed any."""
    raw = pd.Series(present, dtype=object).astype(str)
    stripped = raw.str.strip()
    changed = (raw != stripped).to_numpy()
    if changed.any():
        examples = pd.unique(raw[changed])[:3].tolist()
        shown = ", ".join(f"{e!r} -> {e.strip()!r}" for e in examples)
        warn_at_caller(
            f"{argument}: {int(changed.sum())} label(s) had leading or trailing spaces "
            f"({shown}); they were stripped, so they count as the stripped class",
            TruelabelWarning,
        )
    return np.asarray(stripped.to_numpy(), dtype=object)


def _warn_case_variants(names: np.ndarray, argument: str) -> None:
    """Warn when class names differ only in case or inner spacing ('ham' / 'Ham')."""
    counts = pd.Series(names, dtype=object).value_counts(sort=False)
    unique = counts.index.to_numpy(dtype=object)
    keys = pd.Series([" ".join(n.split()).casefold() for n in unique], dtype=object)
    dup = keys.duplicated(keep=False).to_numpy()
    if not dup.any():
        return
    groups: dict[str, list[str]] = {}
    for name, key in zip(unique[dup], keys[dup], strict=True):
        groups.setdefault(key, []).append(name)
    described, merge = [], {}
    for members in sorted(groups.values(), key=lambda m: natural_key(min(m))):
        members.sort(key=lambda n: (-int(counts[n]), natural_key(n)))
        described.append(" / ".join(f"{m!r} ({int(counts[m])} items)" for m in members))
        merge.update({m: members[0] for m in members[1:]})
    more = len(groups) - _MAX_VARIANT_GROUPS
    shown = "; ".join(described[:_MAX_VARIANT_GROUPS]) + (f"; and {more} more" if more > 0 else "")
    fix = dict(list(merge.items())[:10])
    warn_at_caller(
        f"{argument}: {len(groups)} group(s) of labels differ only in case or spacing and are "
        f"kept as separate classes: {shown}. If each group is one class, merge them before "
        f"auditing, e.g. df[label_col] = df[label_col].replace({fix!r})",
        TruelabelWarning,
    )
