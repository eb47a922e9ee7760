"""The stopping estimate: stabilizing predictions on a held-back unlabeled set plus an
estimate of the remaining gain.

After each refit, the predictions on a fixed held-back set of unlabeled items are compared
with the previous model's (Bloodgood & Vijay-Shanker 2009, "stabilizing predictions"):
``agreement`` is Cohen's kappa between the two. The accuracy that the last ``horizon``
answers added is estimated on the same items with the current model's calibrated
probabilities ``p``: an item whose prediction moved from ``a`` (the model of ``horizon``
answers ago) to ``b`` is right now with probability ``p(b)`` and was right with ``p(a)``, so
the gain is ``mean_i p_i(b_i) - p_i(a_i)`` (unchanged items add 0). The next ``horizon``
answers are expected to add as much (learning curves flatten, so usually less):
``expected_gain``. It is the current model's own view, so it leans optimistic (``p(b) >=
p(a)``), and it is at most ``changed``, the share of predictions that moved (the bound used
before: every change counted as a correction, which kept the rule from firing on SMS, where
late changes are coin flips between ``p`` = 0.5 and 0.6). Comparing with the model of
``horizon`` answers ago rather than adding up refit-to-refit changes keeps the estimate from
following the noise of single batches (on Banking77, 10-answer windows swung between 0.5% and
5% per 100 answers around a true pace of ~1.3%). ``should_stop`` fires when the last
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
        Accuracy the next ``horizon`` answers are expected to add: the gain of the last
        ``horizon`` answers as the current model measures it on the held-back set (scaled to
        ``horizon`` answers while fewer have been given since the first model; at most 1);
        NaN before two refits.
    changed : float
        Share of held-back predictions that changed over the same answers (same scaling):
        the bound on the gain if every change were a correction.
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
    #: per refit compared: (n_answers, kappa with the previous refit, gain, changed), the
    #: last two over ``horizon`` answers
    history: list[tuple[int, float, float, float]] = field(default_factory=list)
    _models: list[tuple[int, np.ndarray]] = field(default_factory=list)

    def update(self, n_answers: int, probs: np.ndarray) -> None:
        """Record the model after ``n_answers`` answers: ``probs`` ``(n_held, K)`` are its
        calibrated probabilities on the held-back items (predictions = their argmax). A refit
        without new answers is ignored."""
        if self._models and n_answers <= self._models[-1][0]:
            return
        predictions = np.argmax(probs, axis=1)
        if self._models:
            prev = self._models[-1][1]
            kappa = cohen_kappa(prev, predictions, probs.shape[1])
            # the reference: the last model at least `horizon` answers back, else the first
            back = [i for i, (n, _) in enumerate(self._models) if n <= n_answers - self.horizon]
            ref_n, ref = self._models[back[-1] if back else 0]
            rows = np.arange(predictions.size)
            scale = self.horizon / (n_answers - ref_n)
            gain = float(np.mean(probs[rows, predictions] - probs[rows, ref])) * scale
            changed = float(np.mean(ref != predictions)) * scale
            self.history.append((n_answers, kappa, min(1.0, gain), min(1.0, changed)))
            del self._models[: back[-1] if back else 0]  # older models are never a reference
        self._models.append((n_answers, predictions.copy()))

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
        kappa, gain, changed = recent[-1][1:]
        stable = len(recent) == self.window and all(r[1] >= self.min_agreement for r in recent)
        stop = bool(stable and gain < self.min_gain)
        msg = (
            f"predictions on the held-back set agree with the previous model's at kappa "
            f"{kappa:.3f} (at least {self.min_agreement} over the last {self.window} refits: "
            f"{'yes' if stable else 'no'}); over the last {self.horizon} answers {changed:.1%} "
            f"of them changed, adding ~{gain:.1%} accuracy by the current model's estimate, "
            f"and the next {self.horizon} are expected to add as much or less "
            f"({'below' if gain < self.min_gain else 'not below'} {self.min_gain:.1%}): "
            + ("labeling more is not worth it" if stop else "labeling more may still pay")
        )
        return StopEstimate(stop, gain, float(kappa), n_answers, msg, changed)
