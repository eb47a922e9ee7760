"""Certified auto-labeling: accept model labels only where the error rate is certified.

Statement
---------
Given a calibration set (items whose true labels are trusted) and model probabilities,
choose a confidence threshold t so that, with probability at least ``1 - delta`` over the
draw of the calibration set, the error rate among items auto-labeled (confidence >= t) is
at most ``max_error``.

The threshold search (Learn then Test on a fixed grid, fallback procedure, rate and
pool hypotheses) is described in :mod:`truelabel.autolabel._search`. ``fit`` certifies
the error *rate*; ``decide(pool)`` applies that threshold (``guarantee="rate"``, the
default) or certifies the realised error among that pool's accepted items
(``guarantee="pool"``).

Class-conditional mode runs the same procedure per predicted class, so a weak class
cannot hide behind strong ones: each class's auto-label error is <= max_error with
probability >= 1 - delta (per class, as Mondrian conformal prediction guarantees coverage
per class). With ``simultaneous=True`` the level is delta / (number of classes tested)
(Bonferroni): then with probability >= 1 - delta *every* class is within max_error at
once, at the price of needing ln(delta / K) / ln(1 - max_error) calibration items per
predicted class even with no errors.

Calibration-label noise: with ``calibration_label_error=eta`` the observed disagreements
are tested against ``max_error * (1 - eta)`` (valid under uniform label noise; see
docs/ARCHITECTURE.md, "Certified auto-labeling").

References
----------
Wiens (2003), "A fixed sequence Bonferroni procedure for testing multiple endpoints",
Pharm. Stat. 2. Angelopoulos, Bates, Candès, Jordan, Lei (2021), "Learn then Test:
Calibrating predictive algorithms to achieve risk control", arXiv:2110.01052. Bauer (1991), "Multiple testing in
clinical trials", Stat. Med. 10. Clopper & Pearson (1934), Biometrika 26. Geifman &
El-Yaniv (2017), "Selective classification for deep neural networks", NeurIPS.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from .._validation import check_labels, check_pred_probs
from ..backend import Backend
from ..exceptions import NotFittedError, ValidationError
from ._bounds import min_items_to_certify
from ._grid import counts_above, default_threshold_grid
from ._result import AutoLabelResult, accepted_message, nothing_message
from ._search import Found, certificate, more_items_needed, search_pool, search_rate, why

__all__ = ["CertifiedAutoLabeler"]

_FITTED = ("threshold_", "bound_", "certificates_", "n_classes_")


class CertifiedAutoLabeler(BaseEstimator):
    """Auto-label what can be labeled with error <= ``max_error`` at confidence ``1 - delta``.

    Parameters
    ----------
    max_error : float in (0, 1), default 0.02
    delta : float in (0, 1), default 0.05
        Allowed probability that the certificate is wrong.
    class_conditional : bool, default False
        Certify each predicted class separately (each at confidence ``1 - delta``).
    calibration_label_error : float in [0, 1), default 0.0
        Stated share of wrong labels in the calibration set (conservative correction).
    classes : sequence of str, optional
        Class names for the ``label`` column of :meth:`decide`.
    guarantee : {"rate", "pool"}, default "rate"
        What :meth:`decide` certifies. ``"rate"``: the error rate of the accepted
        population, with the threshold certified by :meth:`fit`. ``"pool"``: the realised
        error among the accepted items of the pool being decided (certified again for that
        pool; safer for small pools, whose realised error fluctuates around the rate, at a
        price in coverage).
    simultaneous : bool, default False
        With ``class_conditional``, make the guarantee hold for all classes at once
        (Bonferroni: level ``delta / n_classes``; needs much more calibration data).

    Attributes
    ----------
    threshold_ : float or ndarray (n_classes,) or None
        Confidence threshold certified for the error rate (per class when
        class-conditional; NaN or None where nothing was certified).
    bound_ : float or None
        Clopper-Pearson upper bound on the error rate above ``threshold_`` (the largest
        over classes when class-conditional).
    certificates_ : dict
        :class:`Certificate` per group (``"all"`` or the class index).
    n_classes_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from truelabel import CertifiedAutoLabeler
    >>> rng = np.random.default_rng(0)
    >>> conf = rng.uniform(0.5, 1.0, 5000)
    >>> p = np.c_[conf, 1 - conf]
    >>> y = (rng.random(5000) > conf).astype(int)  # a calibrated model
    >>> auto = CertifiedAutoLabeler(max_error=0.05, delta=0.05).fit(p, y)
    >>> 0.85 < auto.threshold_ < 0.95
    True
    >>> result = auto.decide(p[:1000])
    >>> result.certified, bool(result.n_accepted == result.decisions["accepted"].sum())
    (True, True)
    >>> list(result.decisions.columns)
    ['label', 'confidence', 'accepted', 'reason', 'threshold']
    """

    def __init__(
        self,
        *,
        max_error: float = 0.02,
        delta: float = 0.05,
        class_conditional: bool = False,
        calibration_label_error: float = 0.0,
        classes: Any = None,
        guarantee: str = "rate",
        simultaneous: bool = False,
    ) -> None:
        self.max_error = max_error
        self.delta = delta
        self.class_conditional = class_conditional
        self.calibration_label_error = calibration_label_error
        self.classes = classes
        self.guarantee = guarantee
        self.simultaneous = simultaneous

    def __getattr__(self, name: str) -> Any:
        if name in _FITTED:
            raise NotFittedError(
                f"CertifiedAutoLabeler.{name} is set by fit; call "
                "fit(pred_probs, labels) with the calibration set first"
            )
        raise AttributeError(f"'CertifiedAutoLabeler' object has no attribute {name!r}")

    def _check_params(self) -> None:
        from .._validation import check_choice

        check_choice("guarantee", self.guarantee, ("rate", "pool"))
        for name in ("max_error", "delta"):
            v = getattr(self, name)
            if not 0.0 < v < 1.0:
                raise ValidationError(name, f"got {v}, expected a value in (0, 1)", "e.g. 0.02")
        eta = self.calibration_label_error
        if not 0.0 <= eta < 1.0:
            raise ValidationError(
                "calibration_label_error", f"got {eta}, expected a value in [0, 1)", "e.g. 0.01"
            )

    @property
    def _eps(self) -> float:
        """The limit the observed disagreement rate is tested against."""
        return self.max_error * (1.0 - self.calibration_label_error)

    def _unadjust(self, bound: float | None) -> float | None:
        """Bound on the true error from the bound on observed disagreement."""
        if bound is None:
            return None
        return min(1.0, bound / (1.0 - self.calibration_label_error))

    def fit(
        self, pred_probs: Any, labels: Any, *, backend: Backend | str | None = None
    ) -> CertifiedAutoLabeler:
        """Certify thresholds on a calibration set with trusted labels.

        Parameters
        ----------
        pred_probs : array of shape (n_calibration, n_classes)
            Model probabilities of the calibration items (not used to train the model).
        labels : array of shape (n_calibration,)
            Their trusted (reviewed) labels.
        backend : Backend, "local" or None
            Runs the counting on the threshold grid (a chunk map).

        Returns
        -------
        self
        """
        self._check_params()
        p = check_pred_probs(pred_probs)
        y = check_labels(labels, n_classes=p.shape[1], n_items=p.shape[0])
        if self.classes is not None and len(self.classes) != p.shape[1]:
            raise ValidationError(
                "classes", f"{len(self.classes)} names for {p.shape[1]} classes", "one per class"
            )
        pred = p.argmax(axis=1)
        conf = p[np.arange(p.shape[0]), pred].astype(np.float64)
        wrong = pred != y
        grid = default_threshold_grid()
        self.n_classes_ = int(p.shape[1])
        # grid counts per group: all that certifying a pool in decide() needs
        self._counts: dict[Any, tuple[np.ndarray, np.ndarray]] = {}
        if not self.class_conditional:
            self._counts["all"] = counts_above(conf, grid, wrong, backend=backend)
        else:
            for k in np.flatnonzero(np.bincount(pred, minlength=self.n_classes_)).tolist():
                sel = pred == k
                self._counts[k] = counts_above(conf[sel], grid, wrong[sel], backend=backend)
        level = self._level(len(self._counts))
        self.certificates_ = {
            # per class, the message states the minimum per class instead of an estimate
            g: certificate(n, e, self._eps, level, estimate_more=not self.class_conditional)
            for g, (n, e) in self._counts.items()
        }
        if not self.class_conditional:
            cert = self.certificates_["all"]
            self.threshold_: Any = cert.threshold
            self.bound_ = self._unadjust(cert.bound)
        else:
            thr = np.full(self.n_classes_, np.nan)
            bounds = []
            for k, cert in self.certificates_.items():
                if cert.threshold is not None:
                    thr[k] = cert.threshold
                    bounds.append(self._unadjust(cert.bound) or 0.0)
            self.threshold_ = thr
            self.bound_ = max(bounds) if bounds else None
        return self

    def _level(self, n_groups: int) -> float:
        simultaneous = self.class_conditional and self.simultaneous
        return self.delta / max(n_groups, 1) if simultaneous else self.delta

    @property
    def message(self) -> str:
        """One line saying what calibration certified (the error rate), or why not."""
        self._check_fitted()
        if not self.class_conditional:
            return self.certificates_["all"].message
        ok = [k for k, c in self.certificates_.items() if c.threshold is not None]
        msg = f"error rate certified for {len(ok)} of {len(self.certificates_)} predicted classes"
        if len(ok) < len(self.certificates_):
            msg += "; " + self._per_class_need()
        return msg

    def _per_class_need(self) -> str:
        n_groups = len(self.certificates_) if self.simultaneous else 1
        need = min_items_to_certify(0.0, self._eps, self.delta / max(n_groups, 1))
        return (
            f"at {self.max_error:.2%} each class needs at least {need} calibration items "
            "predicted as it even with no errors"
            + (" (delta is shared by the classes)" if self.simultaneous else "")
        )

    def _check_fitted(self) -> None:
        if "certificates_" not in self.__dict__:
            raise NotFittedError(
                "CertifiedAutoLabeler is not fitted; call fit(pred_probs, labels) with the "
                "calibration set first"
            )

    def decide(self, pred_probs: Any, *, backend: Backend | str | None = None) -> AutoLabelResult:
        """Accept or send to review each item of a pool.

        ``guarantee="rate"`` accepts the items at or above the threshold :meth:`fit`
        certified. ``guarantee="pool"`` certifies the threshold again for this pool
        (transductively): hypotheses "at least floor(max_error * m) + 1 of the m pool
        items above threshold t are wrong" are tested with the exchangeability
        (hypergeometric) p-value of :func:`pool_error_pvalue`, so with probability at
        least ``1 - delta`` the realised error among *these* accepted items is at most
        ``max_error``. Nothing is written onto the estimator: every pool gets its own
        result.

        Parameters
        ----------
        pred_probs : array of shape (n_pool, n_classes)
        backend : Backend, "local" or None
            Runs the counting of pool confidences on the threshold grid.

        Returns
        -------
        AutoLabelResult
            ``decisions`` (one row per item), ``certified`` (True only when something is
            accepted), ``coverage``, ``threshold``, ``bound``, ``message`` (with, when
            nothing is accepted, how many more reviewed items would help and what the
            other guarantee would accept now).
        """
        self._check_fitted()
        self._check_params()
        p = check_pred_probs(pred_probs, n_classes=self.n_classes_)
        pred = p.argmax(axis=1)
        conf = p[np.arange(p.shape[0]), pred].astype(np.float64)
        grid = default_threshold_grid()
        n_pool = int(p.shape[0])
        groups = (
            {g: pred == g for g in self._counts}
            if self.class_conditional
            else {"all": np.ones(n_pool, dtype=bool)}
        )
        tested = [g for g, sel in groups.items() if sel.any()]
        level = self._level(len(tested))
        thr = np.full(n_pool, np.nan)
        thresholds: dict[Any, float | None] = {}
        bounds: list[float] = []
        other_accepted = 0
        pool_counts: dict[Any, np.ndarray] = {}
        for g in tested:
            sel = groups[g]
            n, e = self._counts[g]
            m, _ = counts_above(conf[sel], grid, backend=backend)
            pool_counts[g] = m
            cert = self.certificates_[g]
            pool: Found | None = search_pool(n, e, m, self._eps, level)
            pool_t = float(grid[pool.index]) if pool is not None else None
            if self.guarantee == "rate":
                t, bound, other_t = cert.threshold, cert.bound, pool_t
            else:
                t, bound, other_t = pool_t, (pool.bound if pool else None), cert.threshold
            thresholds[g] = t
            if other_t is not None:
                other_accepted += int((conf[sel] >= other_t).sum())
            if t is not None:
                thr[sel] = t
                if (conf[sel] >= t).any():
                    bounds.append(self._unadjust(bound) or 0.0)
        has_t = ~np.isnan(thr)
        accepted = has_t & (conf >= np.where(has_t, thr, np.inf))
        n_acc = int(accepted.sum())
        more = self._more_needed(pool_counts, level) if n_acc == 0 else None
        if n_acc > 0:
            message = accepted_message(
                self.guarantee, self.delta, n_acc, n_pool, thresholds, max(bounds)
            )
        else:
            reason = (
                self._per_class_need()
                if self.class_conditional
                else why(self.certificates_["all"].n_calibration, more)
            )
            message = nothing_message(
                self.guarantee, n_pool, thresholds.get("all"), reason, other_accepted
            )
        what = "error rate" if self.guarantee == "rate" else "error among accepted pool items"
        reasons = np.where(
            accepted,
            f"accepted: confidence at or above the certified threshold ({what} <= "
            f"{self.max_error:.1%} at {1 - self.delta:.0%} confidence)",
            "review: confidence below the certified threshold",
        ).astype(object)
        if self.class_conditional:
            reasons[~has_t] = "review: this predicted class could not be certified"
        else:
            reasons[~accepted & (n_acc == 0)] = "review: " + message
        labels: Any = pred
        if self.classes is not None:
            labels = np.asarray(list(self.classes), dtype=object)[pred]
        decisions = pd.DataFrame(
            {"label": labels, "confidence": conf, "accepted": accepted, "reason": reasons}
        )
        decisions["threshold"] = thr
        return AutoLabelResult(
            decisions=decisions,
            certified=n_acc > 0,
            n_accepted=n_acc,
            n_pool=n_pool,
            coverage=n_acc / n_pool if n_pool else 0.0,
            threshold=thresholds if self.class_conditional else thresholds.get("all"),
            bound=max(bounds) if bounds else None,
            guarantee=self.guarantee,
            message=message,
            n_more_needed=more,
            other_guarantee="pool" if self.guarantee == "rate" else "rate",
            other_guarantee_accepted=other_accepted,
        )

    def _more_needed(self, pool_counts: dict[Any, np.ndarray], level: float) -> int | None:
        """More reviewed items that would make this pool certify (single group only)."""
        if self.class_conditional or "all" not in pool_counts:
            return None
        n, e = self._counts["all"]
        m = pool_counts["all"]
        eps = self._eps
        if self.guarantee == "rate":
            return more_items_needed(n, e, m, lambda nn, ee: search_rate(nn, ee, eps, level))
        return more_items_needed(n, e, m, lambda nn, ee: search_pool(nn, ee, m, eps, level))
