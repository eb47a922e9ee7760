"""What certification returns: per calibration group (:class:`Certificate`) and per pool
(:class:`AutoLabelResult`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

__all__ = ["AutoLabelResult", "Certificate"]


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
