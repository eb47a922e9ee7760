"""Certified auto-labeling: accept model labels only where the error rate is certified.

Statement
---------
Given a calibration set (items whose true labels are trusted) and model probabilities,
choose a confidence threshold t so that, with probability at least ``1 - delta`` over the
draw of the calibration set, the error rate among items auto-labeled (confidence >= t) is
at most ``max_error``.

Procedure (Learn then Test with fixed-sequence testing)
-------------------------------------------------------
* A grid of thresholds is fixed in advance (``default_threshold_grid``: 0.00-0.99 in
  steps of 0.01 plus 1 - 10^-2 ... 1 - 10^-6), ordered from strict to lenient.
* For each threshold t, H0(t): "the error rate among items with confidence >= t exceeds
  max_error". With n(t) calibration items above t, of which e(t) are wrong, the exact
  binomial tail p(t) = P(Bin(n(t), max_error) <= e(t)) is a valid p-value: given n(t),
  the accepted calibration items are i.i.d. draws from the accepted population, so e(t)
  is Binomial(n(t), risk(t)) and risk(t) > max_error makes small e(t) unlikely.
* Hypotheses are tested in the fixed order from strict to lenient, stopping at the first
  that is not rejected (fixed-sequence testing, Bauer 1991). Three such sequences run at
  level delta / 3 each (Bonferroni), starting at the first threshold where an observed
  error rate of 0, max_error / 4 or max_error / 2 would already reject (rules on counts,
  never on labels): a strict start loses power to one early error, a lenient one starts
  where errors are near the limit. The family-wise error rate is at most delta.
* The certified threshold is the most lenient rejected one; the reported bound is the
  one-sided Clopper-Pearson (1 - delta / 3) upper confidence bound at that threshold.

``fit`` certifies the error *rate* (an endless stream of items like the calibration
set). ``decide(pool)`` certifies the realised error among the accepted items of that
pool (what a user counts): the same fixed sequence, with H0(t) "at least
floor(max_error * m(t)) + 1 of the m(t) pool items above t are wrong" and the
exchangeability p-value P(HG(n + m, e + k, n) <= e) (calibration and pool items are
exchangeable; given the total number of errors among accepted items, the calibration
share is hypergeometric). This accounts for the pool's own sampling noise, which a bound
on the rate alone does not: with small pools a rate of 1.5% still yields realised errors
above 2% in a sizeable share of pools.

Class-conditional mode runs the same procedure per predicted class, so a weak class
cannot hide behind strong ones: each class's auto-label error is <= max_error with
probability >= 1 - delta (per class, as Mondrian conformal prediction guarantees coverage
per class). With ``simultaneous=True`` the level is delta / (number of classes tested)
(Bonferroni): then with probability >= 1 - delta *every* class is within max_error at
once, at the price of needing ln(delta / K) / ln(1 - max_error) calibration items per
predicted class even with no errors.

Calibration-label noise
-----------------------
If a share eta of calibration labels is itself wrong, the observed disagreement rate is
not the true error rate. When label errors strike independently of the item and the
model (uniform noise), a truly wrong prediction still disagrees with the noisy label with
probability >= 1 - eta, so risk <= P(disagree) / (1 - eta). Testing the observed
disagreements against ``max_error * (1 - eta)`` (``calibration_label_error=eta``) keeps
the guarantee; correct predictions marked wrong by noise only make it more conservative.
Without the correction, noise that hides errors (the noisy label agreeing with a wrong
prediction) can make the certificate optimistic.

References
----------
Angelopoulos, Bates, Candès, Jordan, Lei (2021), "Learn then Test: Calibrating predictive
algorithms to achieve risk control", arXiv:2110.01052. Bauer (1991), "Multiple testing in
clinical trials", Stat. Med. 10. Clopper & Pearson (1934), Biometrika 26. Geifman &
El-Yaniv (2017), "Selective classification for deep neural networks", NeurIPS.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from .._validation import check_labels, check_pred_probs
from ..exceptions import NotFittedError, ValidationError
from ._bounds import binomial_pvalue, clopper_pearson_upper, min_items_to_certify
from ._grid import START_RATES, counts_above, default_threshold_grid, fixed_sequence
from ._pool import _certify_pool

__all__ = ["Certificate", "CertifiedAutoLabeler"]


@dataclass(frozen=True)
class Certificate:
    """The outcome of certification for one group (all items, or one predicted class).

    ``threshold`` is None when nothing could be certified; ``n_more_needed`` then
    estimates how many more reviewed calibration items would be needed (None when no
    amount would do, because the model errs too often even on its surest items).
    """

    threshold: float | None
    bound: float | None
    n_calibration: int
    n_accepted_calibration: int
    errors_accepted_calibration: int
    n_more_needed: int | None
    message: str


def _certify(
    conf: np.ndarray,
    wrong: np.ndarray,
    grid: np.ndarray,
    max_error: float,
    delta: float,
) -> Certificate:
    n_cal = int(conf.shape[0])
    n_t, e_t = counts_above(conf, grid, wrong)
    level = delta / len(START_RATES)
    pvals = binomial_pvalue(e_t, n_t, max_error)
    could = [
        binomial_pvalue(np.floor(rate * max_error * n_t), n_t, max_error) <= level
        for rate in START_RATES
    ]
    chosen = fixed_sequence(pvals, could, level)
    if chosen is not None:
        bound = float(clopper_pearson_upper(e_t[chosen], n_t[chosen], level))
        return Certificate(
            threshold=float(grid[chosen]),
            bound=bound,
            n_calibration=n_cal,
            n_accepted_calibration=int(n_t[chosen]),
            errors_accepted_calibration=int(e_t[chosen]),
            n_more_needed=0,
            message=f"certified: threshold {grid[chosen]:.6g}, error <= {bound:.2%}",
        )
    # power estimate: best observed error rate among thresholds with some items
    has = n_t > 0
    if not has.any():
        return Certificate(None, None, n_cal, 0, 0, None, "no calibration items")
    rates = np.where(has, e_t / np.maximum(n_t, 1), np.inf)
    share = n_t / max(n_cal, 1)
    best_needed: int | None = None
    for g in np.flatnonzero(has & (rates < max_error)).tolist():
        need = min_items_to_certify(float(rates[g]), max_error, level)
        if need is None or share[g] == 0:
            continue
        total = math.ceil(need / share[g])
        if best_needed is None or total < best_needed:
            best_needed = total
    if best_needed is None:
        msg = (
            f"nothing certified: the model's error rate is above {max_error:.2%} even on its "
            "most confident calibration items; improve the model or raise max_error"
        )
        return Certificate(None, None, n_cal, 0, 0, None, msg)
    if best_needed > n_cal:
        more = best_needed - n_cal
        msg = (
            f"nothing certified: {n_cal} calibration items are too few to certify "
            f"{max_error:.2%} at {1 - delta:.0%} confidence; about {more} more reviewed items "
            "would be needed"
        )
    else:  # enough items in principle, but errors among the surest items end the tests
        more = n_cal
        msg = (
            f"nothing certified: errors among the most confident of the {n_cal} calibration "
            f"items end the tests early; about {more} more reviewed items (or a larger "
            "max_error) would help"
        )
    return Certificate(None, None, n_cal, 0, 0, more, msg)


class CertifiedAutoLabeler(BaseEstimator):
    """Auto-label what can be labeled with error <= ``max_error`` at confidence ``1 - delta``.

    Parameters
    ----------
    max_error : float in (0, 1), default 0.02
    delta : float in (0, 1), default 0.05
        Allowed probability that the certificate is wrong.
    class_conditional : bool, default False
        Certify each predicted class separately (each at confidence ``1 - delta``).
    simultaneous : bool, default False
        With ``class_conditional``, make the guarantee hold for all classes at once
        (Bonferroni: level ``delta / n_classes``; needs much more calibration data).
    calibration_label_error : float in [0, 1), default 0.0
        Stated share of wrong labels in the calibration set (conservative correction).
    classes : sequence of str, optional
        Class names for the ``label`` column of :meth:`decide`.
    guarantee : {"pool", "rate"}, default "pool"
        What :meth:`decide` certifies. ``"pool"``: the realised error among the accepted
        items of the pool being decided (the threshold is certified again for that
        pool; safer for small pools, which fluctuate). ``"rate"``: the error rate of the
        accepted population, with the threshold certified by :meth:`fit` (more coverage
        on small pools; the realised error of one small pool can exceed ``max_error``).

    Attributes
    ----------
    threshold_ : float or ndarray (n_classes,) or None
        Certified confidence threshold (per class when class-conditional; NaN where
        nothing was certified).
    bound_ : float or None
        Clopper-Pearson upper bound on the error among accepted items (the largest over
        classes when class-conditional).
    certificates_ : dict
        :class:`Certificate` per group (``"all"`` or the class index).
    certified_ : bool
        Whether anything can be auto-labeled.

    Examples
    --------
    >>> import numpy as np
    >>> from truelabel import CertifiedAutoLabeler
    >>> rng = np.random.default_rng(0)
    >>> conf = rng.uniform(0.5, 1.0, 5000)
    >>> p = np.c_[conf, 1 - conf]
    >>> y = (rng.random(5000) > conf).astype(int)  # a calibrated model
    >>> cal = CertifiedAutoLabeler(max_error=0.05, delta=0.05).fit(p, y)
    >>> 0.85 < cal.threshold_ < 0.95
    True
    >>> out = cal.decide(p[:3])
    >>> list(out.columns[:4])
    ['label', 'confidence', 'accepted', 'reason']
    """

    def __init__(
        self,
        *,
        max_error: float = 0.02,
        delta: float = 0.05,
        class_conditional: bool = False,
        calibration_label_error: float = 0.0,
        classes: Any = None,
        guarantee: str = "pool",
        simultaneous: bool = False,
    ) -> None:
        self.max_error = max_error
        self.delta = delta
        self.class_conditional = class_conditional
        self.calibration_label_error = calibration_label_error
        self.classes = classes
        self.guarantee = guarantee
        self.simultaneous = simultaneous

    def _check_params(self) -> None:
        from .._validation import check_choice

        check_choice("guarantee", self.guarantee, ("pool", "rate"))
        for name in ("max_error", "delta"):
            v = getattr(self, name)
            if not 0.0 < v < 1.0:
                raise ValidationError(name, f"got {v}, expected a value in (0, 1)", "e.g. 0.02")
        eta = self.calibration_label_error
        if not 0.0 <= eta < 1.0:
            raise ValidationError(
                "calibration_label_error", f"got {eta}, expected a value in [0, 1)", "e.g. 0.01"
            )

    def fit(self, pred_probs_cal: Any, labels_cal: Any) -> CertifiedAutoLabeler:
        """Certify thresholds on a calibration set with trusted labels."""
        self._check_params()
        p = check_pred_probs(pred_probs_cal, argument="pred_probs_cal")
        y = check_labels(
            labels_cal, n_classes=p.shape[1], n_items=p.shape[0], argument="labels_cal"
        )
        if self.classes is not None and len(self.classes) != p.shape[1]:
            raise ValidationError(
                "classes", f"{len(self.classes)} names for {p.shape[1]} classes", "one per class"
            )
        pred = p.argmax(axis=1)
        conf = p[np.arange(p.shape[0]), pred].astype(np.float64)
        wrong = pred != y
        eps = self.max_error * (1.0 - self.calibration_label_error)
        grid = default_threshold_grid()
        self.n_classes_ = int(p.shape[1])
        self.certificates_: dict[Any, Certificate] = {}
        # confidences and mistakes per group, for certifying each pool in decide()
        self._cal: dict[Any, tuple[np.ndarray, np.ndarray]] = (
            {int(k): (conf[pred == k], wrong[pred == k]) for k in np.unique(pred)}
            if self.class_conditional
            else {"all": (conf, wrong)}
        )
        if not self.class_conditional:
            cert = _certify(conf, wrong, grid, eps, self.delta)
            self.certificates_["all"] = cert
            self.threshold_: Any = cert.threshold
            self.bound_ = self._unadjust(cert.bound)
        else:
            present = np.flatnonzero(np.bincount(pred, minlength=self.n_classes_))
            level = self.delta / max(present.size, 1) if self.simultaneous else self.delta
            thr = np.full(self.n_classes_, np.nan)
            bounds: list[float] = []
            for k in present:
                sel = pred == k
                cert = _certify(conf[sel], wrong[sel], grid, eps, level)
                self.certificates_[int(k)] = cert
                if cert.threshold is not None:
                    thr[k] = cert.threshold
                    bounds.append(self._unadjust(cert.bound) or 0.0)
            self.threshold_ = thr
            self.bound_ = max(bounds) if bounds else None
        self.certified_ = any(c.threshold is not None for c in self.certificates_.values())
        return self

    def _unadjust(self, bound: float | None) -> float | None:
        """Bound on the true error from the bound on observed disagreement."""
        if bound is None:
            return None
        return min(1.0, bound / (1.0 - self.calibration_label_error))

    @property
    def message(self) -> str:
        """One line saying what was certified, or why not and what would help."""
        self._check_fitted()
        if not self.class_conditional:
            return self.certificates_["all"].message
        ok = [k for k, c in self.certificates_.items() if c.threshold is not None]
        msg = f"certified {len(ok)} of {len(self.certificates_)} predicted classes"
        if len(ok) < len(self.certificates_):
            eps = self.max_error * (1.0 - self.calibration_label_error)
            n_groups = len(self.certificates_) if self.simultaneous else 1
            need = min_items_to_certify(0.0, eps, self.delta / max(n_groups, 1))
            msg += (
                f"; at {self.max_error:.2%} each class needs at least {need} calibration items "
                "predicted as it even with no errors"
                + (" (delta is shared by the classes)" if self.simultaneous else "")
            )
        return msg

    def _check_fitted(self) -> None:
        if not hasattr(self, "certificates_"):
            raise NotFittedError(
                "CertifiedAutoLabeler is not fitted; call fit(pred_probs_cal, labels_cal) first"
            )

    def decide(self, pred_probs: Any) -> pd.DataFrame:
        """Accept or send to review each item of a pool.

        The threshold is certified again for this pool (transductively): hypotheses
        "at least floor(max_error * m) + 1 of the m pool items above threshold t are
        wrong" are tested from strict to lenient t by fixed-sequence testing with the
        exchangeability (hypergeometric) p-value of :func:`pool_error_pvalue`. So, with
        probability at least ``1 - delta``, the realised error among *these* accepted
        items is at most ``max_error``, not only the error rate of an endless stream.

        Returns
        -------
        DataFrame with ``label`` (predicted class), ``confidence``, ``accepted`` (bool),
        ``reason`` and ``threshold``; ``attrs`` and the attributes ``pool_threshold_``,
        ``pool_bound_`` (upper bound on the error among accepted items) and
        ``coverage_`` (accepted share) describe the decision.
        """
        self._check_fitted()
        self._check_params()
        p = check_pred_probs(pred_probs, n_classes=self.n_classes_)
        pred = p.argmax(axis=1)
        conf = p[np.arange(p.shape[0]), pred].astype(np.float64)
        eps = self.max_error * (1.0 - self.calibration_label_error)
        groups: dict[Any, np.ndarray] = (
            {k: pred == k for k in range(self.n_classes_)}
            if self.class_conditional
            else {"all": np.ones(pred.shape[0], dtype=bool)}
        )
        tested = [g for g in groups if g in self._cal and groups[g].any()]
        simultaneous = self.class_conditional and self.simultaneous
        level = self.delta / max(len(tested), 1) if simultaneous else self.delta
        thr = np.full(pred.shape[0], np.nan)
        thresholds: dict[Any, float | None] = {}
        bounds = []
        for g in tested:
            sel = groups[g]
            if self.guarantee == "rate":
                t, bound = self.certificates_[g].threshold, self.certificates_[g].bound or 1.0
            else:
                cal_conf, cal_wrong = self._cal[g]
                t, bound = _certify_pool(cal_conf, cal_wrong, conf[sel], eps, level)
            thresholds[g] = t
            if t is not None:
                thr[sel] = t
                bounds.append(min(1.0, bound / (1.0 - self.calibration_label_error)))
        certified = ~np.isnan(thr)
        accepted = certified & (conf >= np.where(certified, thr, np.inf))
        pct = f"{self.max_error:.1%}"
        conf_txt = f"{1 - self.delta:.0%}"
        reasons = np.where(
            accepted,
            "accepted: confidence at or above the certified threshold "
            f"(error <= {pct} at {conf_txt} confidence)",
            "review: confidence below the certified threshold",
        ).astype(object)
        if (~certified).any():
            if self.class_conditional:
                reasons[~certified] = "review: this predicted class could not be certified"
            else:
                msg = self.certificates_["all"].message
                if self.certificates_["all"].threshold is not None:
                    msg = "nothing certified for this pool (too few calibration items)"
                reasons[~certified] = "review: " + msg
        labels: Any = pred
        if self.classes is not None:
            labels = np.asarray(list(self.classes), dtype=object)[pred]
        out = pd.DataFrame(
            {
                "label": labels,
                "confidence": conf,
                "accepted": accepted,
                "reason": reasons,
                "threshold": thr,
            }
        )
        self.coverage_ = float(accepted.mean()) if accepted.size else 0.0
        self.pool_threshold_ = thresholds.get("all") if not self.class_conditional else thresholds
        self.pool_bound_ = max(bounds) if bounds else None
        out.attrs["bound"] = self.pool_bound_
        out.attrs["coverage"] = self.coverage_
        return out
