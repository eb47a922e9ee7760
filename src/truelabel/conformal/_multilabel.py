"""Multi-label conformal prediction: which label states (absent/present) are plausible.

Input is one independent probability per label, ``p_k = P(label k present)``. Two
guarantees are offered:

``fwer``
    Joint coverage: with probability >= 1 - alpha, the true state of *every* label of a
    test item is among its plausible states. Nonconformity of an item is
    ``max_k (1 - p(true state of k))``; its conformal quantile ``q`` makes state ``s`` of
    label ``k`` plausible when ``1 - p(s) <= q``.
``fdr``
    Conformal p-values per label (Bates et al. 2023, "Testing for outliers with conformal
    p-values"), then Benjamini-Hochberg over the items of the predicted batch, per label
    and per direction. For every label k: among the test items declared *certainly
    present* for k, the expected share that actually lack k is <= alpha (and the same
    for *certainly absent*). This holds for exchangeable calibration and test items
    because conformal p-values sharing one calibration set are PRDS (Bates et al. 2023).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator

from .._validation import check_choice, check_pred_probs, iter_chunks
from ..exceptions import ValidationError
from ._quantile import _compute_quantile, check_alpha, check_calibration_size
from ._split import check_fitted

__all__ = ["MULTILABEL_MODES", "MultiLabelConformal"]

MULTILABEL_MODES = ("fwer", "fdr")


def check_label_matrix(labels: Any, shape: tuple[int, int], argument: str) -> np.ndarray:
    """A 0/1 (n_items, n_labels) int8 matrix matching ``shape``."""
    arr = np.asarray(labels)
    if arr.shape != shape:
        raise ValidationError(
            argument,
            f"expected shape {shape} (one 0/1 column per label), got shape {arr.shape}",
            "pass a 0/1 indicator matrix aligned with the probabilities "
            "(truelabel.detect.multilabel_matrix converts lists of labels)",
        )
    if not np.isin(arr, (0, 1)).all():
        bad = arr[~np.isin(arr, (0, 1))].ravel()[0].item()
        raise ValidationError(argument, f"holds the value {bad!r}", "pass only 0 and 1")
    return arr.astype(np.int8)


def _benjamini_hochberg(p_values: np.ndarray, alpha: float) -> np.ndarray:
    """BH rejections down each column of (m, K) p-values, all columns at once."""
    m = p_values.shape[0]
    sorted_p = np.sort(p_values, axis=0)
    below = sorted_p <= alpha * np.arange(1, m + 1)[:, None] / m
    any_below = below.any(axis=0)
    last = m - 1 - np.argmax(below[::-1], axis=0)  # last index i with p_(i) <= alpha i / m
    cutoff = np.where(any_below, sorted_p[last, np.arange(p_values.shape[1])], -np.inf)
    return np.asarray(p_values <= cutoff)


class MultiLabelConformal(BaseEstimator):
    """Per-label plausible states with a joint (FWER) or FDR guarantee.

    Parameters
    ----------
    alpha : float in (0, 1), default 0.1
    mode : {"fwer", "fdr"}, default "fwer"
        See the module docstring: ``fwer`` covers all labels of an item jointly with
        probability >= 1 - alpha; ``fdr`` controls, per label, the expected share of
        wrong "certain" decisions among the items of a predicted batch.

    Attributes
    ----------
    quantile_ : float
        ``fwer``: the threshold on ``max_k (1 - p(true state))``. ``fdr``: NaN.
    n_labels_, n_calibration_ : int
    label_counts_ : ndarray of shape (n_labels,)
        Calibration items having each label.

    Notes
    -----
    ``predict`` returns 1 (certainly present), 0 (certainly absent) or -1 (uncertain).
    In ``fwer`` mode a label whose two states both fail the threshold (possible when
    ``quantile_ < 0.5``) is reported -1, which only enlarges the set. In ``fdr`` mode the
    decisions depend on the whole batch passed to ``predict`` (BH is run across its
    items); a label seen present (absent) in fewer than ``1/alpha - 1`` calibration items
    can never be declared certainly absent (present). A label declared both (rare, when
    its calibration classes do not overlap) is reported -1.

    The FDR bound is an expectation over calibration and test draws. Because all test
    items share one calibration set, the realized share in one batch is lumpy: when the
    calibration negatives of a label happen to sit low, many test items of that label
    pass together and that batch's share can be well above alpha, balanced by the many
    batches where nothing is certified (in a sparse simulation, per-label mean 0.03 but
    pooled share 0.28 over the labels that certified anything). Use ``fwer`` when every
    batch must be safe.

    Examples
    --------
    >>> import numpy as np
    >>> from truelabel.conformal import MultiLabelConformal
    >>> rng = np.random.default_rng(0)
    >>> p = rng.beta(0.3, 0.3, size=(300, 4))
    >>> y = (rng.random((300, 4)) < p).astype(int)
    >>> mlc = MultiLabelConformal(alpha=0.1).fit(p, y)
    >>> pred = mlc.predict(p[:3])
    >>> pred.dtype, pred.shape
    (dtype('int8'), (3, 4))
    """

    def __init__(self, *, alpha: float = 0.1, mode: str = "fwer") -> None:
        self.alpha = alpha
        self.mode = mode

    def fit(
        self, pred_probs: np.typing.ArrayLike, labels: np.typing.ArrayLike
    ) -> MultiLabelConformal:
        """Calibrate on items with known label sets.

        Parameters
        ----------
        pred_probs : array of shape (n_calibration, n_labels)
            Independent per-label probabilities ``P(label k present)``.
        labels : array of shape (n_calibration, n_labels)
            True 0/1 label matrix.

        Returns
        -------
        self
        """
        alpha = check_alpha(self.alpha)
        mode = check_choice("mode", self.mode, MULTILABEL_MODES)
        p = check_pred_probs(pred_probs, argument="pred_probs", multi_label=True)
        y = check_label_matrix(labels, p.shape, "labels")
        n, k = p.shape
        if mode == "fwer":
            check_calibration_size(n, alpha)
            worst = np.empty(n, dtype=np.float64)
            for sl in iter_chunks(n):
                ps = p[sl].astype(np.float64)
                worst[sl] = np.where(y[sl] == 1, 1.0 - ps, ps).max(axis=1)
            self.quantile_ = _compute_quantile(worst, alpha)
        else:
            self.quantile_ = float("nan")
            # per label: sorted p among calibration negatives and among positives
            self._negatives = [np.sort(p[y[:, j] == 0, j].astype(np.float64)) for j in range(k)]
            self._positives = [np.sort(p[y[:, j] == 1, j].astype(np.float64)) for j in range(k)]
        self._mode = mode
        self._alpha = alpha
        self.n_labels_ = int(k)
        self.n_calibration_ = int(n)
        self.label_counts_ = y.sum(axis=0, dtype=np.int64)
        return self

    def _check_input(self, pred_probs: Any) -> np.ndarray:
        check_fitted(self, "n_labels_")
        return check_pred_probs(pred_probs, n_classes=self.n_labels_, multi_label=True)

    def p_values(self, pred_probs: np.typing.ArrayLike) -> np.ndarray:
        """Conformal p-values of the two states of every label (``fdr`` mode).

        Returns
        -------
        ndarray of shape (n_items, n_labels, 2)
            ``[..., 0]``: p-value of "absent" (small = the label is present);
            ``[..., 1]``: p-value of "present" (small = the label is absent).
        """
        p = self._check_input(pred_probs)
        if self._mode != "fdr":
            raise ValidationError(
                "mode",
                f"p_values needs mode='fdr', this estimator was fitted with {self._mode!r}",
                "fit MultiLabelConformal(mode='fdr')",
            )
        out = np.empty((*p.shape, 2), dtype=np.float64)
        for j in range(p.shape[1]):
            t = p[:, j].astype(np.float64)
            neg, pos = self._negatives[j], self._positives[j]
            n_neg_above = neg.size - np.searchsorted(neg, t, side="left")
            n_pos_below = np.searchsorted(pos, t, side="right")
            out[:, j, 0] = (1.0 + n_neg_above) / (neg.size + 1.0)
            out[:, j, 1] = (1.0 + n_pos_below) / (pos.size + 1.0)
        return out

    def predict_state_sets(self, pred_probs: np.typing.ArrayLike) -> np.ndarray:
        """Plausible states, bool array of shape (n_items, n_labels, 2): [absent, present].

        In ``fwer`` mode the raw threshold test (a label may have no plausible state);
        in ``fdr`` mode a state is plausible unless the other one was declared certain.
        """
        p = self._check_input(pred_probs)
        if self._mode == "fwer":
            p64 = p.astype(np.float64)
            return np.stack([p64 <= self.quantile_, 1.0 - p64 <= self.quantile_], axis=-1)
        pred = self.predict(p)
        return np.stack([pred != 1, pred != 0], axis=-1)

    def predict(self, pred_probs: np.typing.ArrayLike) -> np.ndarray:
        """1 = certainly present, 0 = certainly absent, -1 = uncertain; int8 (n_items, n_labels).

        Parameters
        ----------
        pred_probs : array of shape (n_items, n_labels)
        """
        p = self._check_input(pred_probs)
        if self._mode == "fwer":
            p64 = p.astype(np.float64)
            absent_ok = p64 <= self.quantile_
            present_ok = 1.0 - p64 <= self.quantile_
            present, absent = present_ok & ~absent_ok, absent_ok & ~present_ok
        else:
            pv = self.p_values(p)
            present = _benjamini_hochberg(pv[..., 0], self._alpha)
            absent = _benjamini_hochberg(pv[..., 1], self._alpha)
            present, absent = present & ~absent, absent & ~present
        out = np.full(p.shape, -1, dtype=np.int8)
        out[present] = 1
        out[absent] = 0
        return out
