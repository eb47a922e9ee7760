"""The stopping estimate: stabilizing predictions on a held-back unlabeled set plus the
remaining gain those changes bound.

After each refit, the predictions on a fixed held-back set of unlabeled items are compared
with the previous model's (Bloodgood & Vijay-Shanker 2009, "stabilizing predictions"):
``agreement`` is Cohen's kappa between the two. A model whose accuracy changes by ``g``
must change at least ``g`` of its predictions, so the share of predictions that changed per
answer, times ``horizon`` answers, bounds the accuracy the next ``horizon`` answers can add
(if changes keep their recent pace; they usually slow down). ``should_stop`` fires when the
last ``window`` refits all reached ``min_agreement`` and that bound is below ``min_gain``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["StopEstimate", "StopTracker", "cohen_kappa"]


def cohen_kappa(a: np.ndarray, b: np.ndarray, n_classes: int) -> float:
    """Cohen's kappa of two label vectors (1.0 when both are constant and equal)."""
    if a.size == 0:
        return 1.0
    observed = float(np.mean(a == b))
    pa = np.bincount(a, minlength=n_classes) / a.size
    pb = np.bincount(b, minlength=n_classes) / b.size
    chance = float(pa @ pb)
    if chance >= 1.0:
        return 1.0 if observed == 1.0 else 0.0
    return (observed - chance) / (1.0 - chance)


@dataclass(frozen=True)
class StopEstimate:
    """Whether more answers are worth it, and why.

    Attributes
    ----------
    should_stop : bool
        ``agreement >= min_agreement`` for the last ``window`` refits and ``expected_gain <
        min_gain``.
    expected_gain : float
        Upper bound on the accuracy the next ``horizon`` answers add (share of held-back
        predictions that changed per answer over the last ``window`` refits, times
        ``horizon``, at most 1); NaN before two refits.
    agreement : float
        Cohen's kappa between the last two models' predictions on the held-back set (NaN
        before two refits).
    n_answers : int
        Answers taught when the estimate was made.
    message : str
        The estimate in words.
    """

    should_stop: bool
    expected_gain: float
    agreement: float
    n_answers: int
    message: str


@dataclass
class StopTracker:
    horizon: int
    min_gain: float
    min_agreement: float
    window: int = 3
    history: list[tuple[int, float, float]] = field(default_factory=list)
    _last: tuple[int, np.ndarray] | None = None

    def update(self, n_answers: int, predictions: np.ndarray, n_classes: int) -> None:
        if self._last is not None and n_answers > self._last[0]:
            prev_n, prev = self._last
            changed = float(np.mean(prev != predictions))
            kappa = cohen_kappa(prev, predictions, n_classes)
            self.history.append((n_answers, kappa, changed / (n_answers - prev_n)))
        if self._last is None or n_answers > self._last[0]:
            self._last = (n_answers, predictions.copy())

    def estimate(self, n_answers: int) -> StopEstimate:
        if not self.history:
            return StopEstimate(
                False,
                float("nan"),
                float("nan"),
                n_answers,
                "not enough refits yet: the estimate needs two models trained on different labels",
            )
        recent = self.history[-self.window :]
        kappa = recent[-1][1]
        gain = float(min(1.0, np.mean([r[2] for r in recent]) * self.horizon))
        stable = len(recent) == self.window and all(r[1] >= self.min_agreement for r in recent)
        stop = bool(stable and gain < self.min_gain)
        msg = (
            f"predictions on the held-back set agree with the previous model's at kappa "
            f"{kappa:.3f}; the next {self.horizon} answers can add at most ~{gain:.1%} accuracy "
            f"at the recent pace of change; "
            + ("labeling more is not worth it" if stop else "labeling more may still pay")
        )
        return StopEstimate(stop, gain, float(kappa), n_answers, msg)
