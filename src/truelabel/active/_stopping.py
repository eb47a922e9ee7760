"""The stopping estimate: stabilizing predictions on a held-back unlabeled set plus an
estimate of the remaining gain.

After each refit, the predictions on a fixed held-back set of unlabeled items are compared
with the previous model's (Bloodgood & Vijay-Shanker 2009, "stabilizing predictions"):
``agreement`` is Cohen's kappa between the two. The accuracy the last answers added is
estimated on the same items with the new model's calibrated probabilities ``p``: an item whose
prediction moved from ``a`` to ``b`` is right now with probability ``p(b)`` and was right with
``p(a)``, so the gain is ``mean_i p_i(b_i) - p_i(a_i)`` (unchanged items add 0). It is the new
model's own view, so it is optimistic (``p(b) >= p(a)``) and at most the share of changed
predictions (the bound used before: every change counted as a correction, which kept the rule
from firing on SMS, where late changes are coin flips between ``p`` = 0.5 and 0.6). The gain
per answer over the last ``window`` refits, times ``horizon`` answers, is ``expected_gain``
(if gains keep their recent pace; they usually slow down). ``should_stop`` fires when the last
``window`` refits all reached ``min_agreement`` and ``expected_gain`` is below ``min_gain``.
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
        Accuracy the next ``horizon`` answers are expected to add: the gain per answer the
        current model measures on the held-back set over the last ``window`` refits, times
        ``horizon`` (at most 1); NaN before two refits.
    changed : float
        Share of held-back predictions that changed per answer over the same refits, times
        ``horizon`` (at most 1): the bound on the gain if every change were a correction.
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
    changed: float = float("nan")


@dataclass
class StopTracker:
    horizon: int
    min_gain: float
    min_agreement: float
    window: int = 3
    history: list[tuple[int, float, float, float]] = field(default_factory=list)
    _last: tuple[int, np.ndarray] | None = None

    def update(self, n_answers: int, probs: np.ndarray) -> None:
        """Record the model after ``n_answers`` answers: ``probs`` ``(n_held, K)`` are its
        calibrated probabilities on the held-back items (predictions = their argmax)."""
        predictions = np.argmax(probs, axis=1)
        if self._last is not None and n_answers > self._last[0]:
            prev_n, prev = self._last
            rows = np.arange(predictions.size)
            gain = float(np.mean(probs[rows, predictions] - probs[rows, prev]))
            changed = float(np.mean(prev != predictions))
            kappa = cohen_kappa(prev, predictions, probs.shape[1])
            span = n_answers - prev_n
            self.history.append((n_answers, kappa, gain / span, changed / span))
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
        gain = min(1.0, float(np.mean([r[2] for r in recent])) * self.horizon)
        changed = min(1.0, float(np.mean([r[3] for r in recent])) * self.horizon)
        stable = len(recent) == self.window and all(r[1] >= self.min_agreement for r in recent)
        stop = bool(stable and gain < self.min_gain)
        msg = (
            f"predictions on the held-back set agree with the previous model's at kappa "
            f"{kappa:.3f} (at least {self.min_agreement} over the last {self.window} refits: "
            f"{'yes' if stable else 'no'}); at the pace of the last {self.window} refits the "
            f"next {self.horizon} answers would change {changed:.1%} of its predictions and "
            f"add ~{gain:.1%} accuracy (the model's own estimate; "
            f"{'below' if gain < self.min_gain else 'not below'} {self.min_gain:.1%}): "
            + ("labeling more is not worth it" if stop else "labeling more may still pay")
        )
        return StopEstimate(stop, gain, float(kappa), n_answers, msg, changed)
