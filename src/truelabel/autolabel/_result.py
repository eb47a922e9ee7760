"""What certification returns: per calibration group (:class:`Certificate`) and per pool
(:class:`AutoLabelResult`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

__all__ = ["AutoLabelResult", "Certificate", "accepted_message", "nothing_message"]


@dataclass(frozen=True)
class Certificate:
    """What calibration certifies for one group (all items, or one predicted class).

    ``threshold`` is the confidence above which the error *rate* is certified, None when
    no threshold is; ``n_more_needed`` then estimates how many more reviewed calibration
    items would certify one (None when no amount would, because the model errs too often
    even on its surest items).
    """

    threshold: float | None
    bound: float | None
    n_calibration: int
    n_accepted_calibration: int
    errors_accepted_calibration: int
    n_more_needed: int | None
    message: str


@dataclass(frozen=True)
class AutoLabelResult:
    """The decisions on one pool and what they certify.

    Attributes
    ----------
    decisions : DataFrame
        One row per pool item: ``label`` (predicted class), ``confidence``, ``accepted``,
        ``reason`` and ``threshold`` (NaN where the item's group certified nothing).
    certified : bool
        True only when at least one pool item is auto-labeled.
    n_accepted, n_pool : int
    coverage : float
        Share of the pool auto-labeled (``n_accepted / n_pool``).
    threshold : float, dict or None
        The confidence threshold applied (per predicted class when class-conditional).
    bound : float or None
        Upper confidence bound on the error of the accepted items: on their realised error
        (``guarantee="pool"``) or on the error rate (``"rate"``); None when none accepted.
    guarantee : {"rate", "pool"}
    message : str
        One line: what was certified, or why not and what would help.
    n_more_needed : int or None
        When nothing is accepted: about how many more reviewed calibration items, at the
        observed error rates, would make this pool certify something (None if no amount
        would, or when something is accepted).
    other_guarantee : str
        The guarantee not used; ``other_guarantee_accepted`` items of this pool it would
        accept now.
    """

    decisions: pd.DataFrame
    certified: bool
    n_accepted: int
    n_pool: int
    coverage: float
    threshold: Any
    bound: float | None
    guarantee: str
    message: str
    n_more_needed: int | None
    other_guarantee: str
    other_guarantee_accepted: int

    def __repr__(self) -> str:
        return f"AutoLabelResult({self.message!r})"


def accepted_message(
    guarantee: str,
    delta: float,
    n_acc: int,
    n_pool: int,
    thresholds: dict[Any, float | None],
    bound: float,
) -> str:
    """What was certified, when items are accepted (``thresholds``: per group)."""
    what = "error rate" if guarantee == "rate" else "error among these items"
    at = f"at {1 - delta:.0%} confidence"
    head = f"certified: auto-labeled {n_acc} of {n_pool} items ({n_acc / n_pool:.1%})"
    if "all" not in thresholds:
        ok = sum(t is not None for t in thresholds.values())
        return (
            f"{head} in {ok} of {len(thresholds)} predicted classes; {what} <= {bound:.2%} "
            f"per class {at}"
        )
    return f"{head} with confidence >= {thresholds['all']:.3g}; {what} <= {bound:.2%} {at}"


def nothing_message(
    guarantee: str, n_pool: int, threshold: float | None, reason: str, other_accepted: int
) -> str:
    """Why nothing is accepted, what would help, and what the other guarantee would do."""
    msg = f"nothing certified: auto-labeled 0 of {n_pool} items"
    if threshold is not None:
        msg += f"; the certified threshold {threshold:.3g} is above every pool item's confidence"
    msg += "; " + reason
    other = "pool" if guarantee == "rate" else "rate"
    if other_accepted:
        bounded = (
            "it bounds this pool's realised error"
            if other == "pool"
            else "it bounds the error rate, not this pool's realised error"
        )
        return (
            msg + f"; guarantee={other!r} would auto-label {other_accepted} items now ({bounded})"
        )
    return msg + f"; guarantee={other!r} would not accept any either"
