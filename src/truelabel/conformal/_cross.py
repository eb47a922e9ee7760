"""Cross-conformal (CV+) classification from out-of-fold probabilities: no item is wasted.

Every labelled item serves both to train (the models of the other folds) and to calibrate
(its out-of-fold score). Rule (Romano, Sesia & Candès 2020, CV+; Barber et al. 2021,
jackknife+): label ``y`` is in the set of test item ``x`` when

    #{i : s_i < S_fold(i)(x, y)} < (1 - alpha)(n + 1),

with ``s_i`` the out-of-fold score of calibration item ``i`` and ``S_f`` the score under
the model of fold ``f``. Counting uses per-fold sorted scores and ``np.searchsorted``.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator

from .._validation import check_labels, check_pred_probs, iter_chunks
from ..backend import Backend
from ..exceptions import ValidationError
from ._quantile import check_calibration_size, quantile_rank
from ._scores import _compute_scores, _label_scores_chunked
from ._split import check_fitted, check_settings, draw_seeds, draw_test_u

__all__ = ["CrossConformalClassifier"]


def _check_folds(folds: np.typing.ArrayLike, n_items: int) -> tuple[np.ndarray, np.ndarray]:
    """Fold ids -> (unique fold ids, 0-based fold index per item)."""
    arr = np.asarray(folds)
    if arr.ndim != 1 or arr.shape[0] != n_items:
        raise ValidationError(
            "folds",
            f"expected shape ({n_items},), got shape {arr.shape}",
            "pass the fold id of every item, as returned by truelabel.out_of_fold_pred_probs",
        )
    if arr.dtype.kind not in "iu":
        raise ValidationError(
            "folds",
            f"dtype {arr.dtype} is not integer",
            "pass integer fold ids, as returned by truelabel.out_of_fold_pred_probs",
        )
    uniq, index = np.unique(arr, return_inverse=True)
    return uniq, index.astype(np.int64)


class CrossConformalClassifier(BaseEstimator):
    """CV+ prediction sets from out-of-fold probabilities (no calibration split).

    Parameters
    ----------
    method : {"lac", "aps", "raps"}, default "lac"
    alpha : float in (0, 1), default 0.1
    randomized : bool, default True
        APS/RAPS randomization (ignored by LAC).
    lam : float, default 0.01
    k_reg : int, default 1
    random_state : int, Generator or None
    backend : Backend, "local" or None
        Runs the calibration scores of ``fit`` as a chunk map (None: every core); the
        result does not depend on it nor on ``chunk_size``.
    chunk_size : int, optional
        Rows per chunk (default 32,768).

    Attributes
    ----------
    folds_ : ndarray of shape (n_folds,)
        The sorted fold ids; ``predict_set`` expects fold models in this order.
    n_folds_, n_classes_, n_calibration_ : int

    Notes
    -----
    Guarantee: marginal coverage >= 1 - 2 alpha for any model and exchangeable data
    (Barber et al. 2021, Romano et al. 2020); in practice coverage is close to
    1 - alpha (the worst case needs adversarially unstable fold models). Sets can be
    empty, as with :class:`SplitConformalClassifier`. The calibration size rule of split
    conformal applies: at least ``ceil(1/alpha - 1)`` items. With a single 2-D
    ``pred_probs`` the rule compares with all out-of-fold scores at once.

    Examples
    --------
    >>> import numpy as np
    >>> from truelabel.conformal import CrossConformalClassifier
    >>> rng = np.random.default_rng(0)
    >>> p = rng.dirichlet(np.ones(3), size=100)
    >>> y = np.array([rng.choice(3, p=row) for row in p])
    >>> folds = np.arange(100) % 5
    >>> cc = CrossConformalClassifier(method="lac", alpha=0.1).fit(p, y, folds)
    >>> per_fold = np.stack([p[:4]] * 5)  # (n_folds, n_items, n_classes)
    >>> cc.predict_set(per_fold).shape
    (4, 3)
    """

    def __init__(
        self,
        *,
        method: str = "lac",
        alpha: float = 0.1,
        randomized: bool = True,
        lam: float = 0.01,
        k_reg: int = 1,
        random_state: int | np.random.Generator | None = None,
        backend: Backend | str | None = None,
        chunk_size: int | None = None,
    ) -> None:
        self.method = method
        self.alpha = alpha
        self.randomized = randomized
        self.lam = lam
        self.k_reg = k_reg
        self.random_state = random_state
        self.backend = backend
        self.chunk_size = chunk_size

    def fit(
        self,
        pred_probs: np.typing.ArrayLike,
        labels: np.typing.ArrayLike,
        folds: np.typing.ArrayLike,
    ) -> CrossConformalClassifier:
        """Store the out-of-fold scores of every item, sorted per fold.

        Parameters
        ----------
        pred_probs : array of shape (n_items, n_classes)
            Out-of-fold probabilities (each item predicted by the model of its fold).
        labels : array of shape (n_items,)
        folds : array of shape (n_items,)
            Fold id of each item, e.g. from :func:`truelabel.out_of_fold_pred_probs`.

        Returns
        -------
        self
        """
        method, alpha, randomized, lam, k_reg = check_settings(self)
        p = check_pred_probs(pred_probs, argument="pred_probs")
        y = check_labels(labels, n_classes=p.shape[1], n_items=p.shape[0])
        uniq, fold_index = _check_folds(folds, p.shape[0])
        n = p.shape[0]
        check_calibration_size(n, alpha, argument="pred_probs")
        u_cal, self._test_seed = draw_seeds(self.random_state, randomized, n)
        scores = _label_scores_chunked(
            p, y, method, u_cal, lam, k_reg, backend=self.backend, chunk_size=self.chunk_size
        )
        order = np.lexsort((scores, fold_index))
        counts = np.bincount(fold_index, minlength=uniq.size)
        self._sorted_scores = np.split(scores[order], np.cumsum(counts)[:-1])
        self._all_sorted = np.sort(scores)
        self._score_settings = (method, randomized, lam, k_reg)
        self._rank = int(quantile_rank(n, alpha))
        self.folds_ = uniq
        self.n_folds_ = int(uniq.size)
        self.n_classes_ = int(p.shape[1])
        self.n_calibration_ = int(n)
        return self

    def _per_fold(self, pred_probs: np.typing.ArrayLike) -> list[np.ndarray]:
        arr = np.asarray(pred_probs)
        if arr.ndim == 2:
            return [check_pred_probs(arr, n_classes=self.n_classes_)]
        if arr.ndim != 3 or arr.shape[0] != self.n_folds_:
            raise ValidationError(
                "pred_probs",
                f"expected shape (n_folds={self.n_folds_}, n_items, n_classes) or "
                f"(n_items, n_classes), got shape {arr.shape}",
                "stack the test predictions of each fold's model in the order of folds_, "
                "or pass one 2-D array when one model serves all folds",
            )
        return [
            check_pred_probs(arr[f], n_classes=self.n_classes_, argument=f"pred_probs[{f}]")
            for f in range(arr.shape[0])
        ]

    def predict_set(self, pred_probs: np.typing.ArrayLike) -> np.ndarray:
        """CV+ prediction sets.

        Parameters
        ----------
        pred_probs : array of shape (n_folds, n_items, n_classes) or (n_items, n_classes)
            Test probabilities from each fold's model (in the order of ``folds_``), or
            one 2-D array when a single model serves all folds.

        Returns
        -------
        ndarray of shape (n_items, n_classes), bool
        """
        check_fitted(self, "folds_")
        per_fold = self._per_fold(pred_probs)
        method, randomized, lam, k_reg = self._score_settings
        n_items, k = per_fold[0].shape
        u = draw_test_u(self._test_seed, n_items, randomized)
        references = [self._all_sorted] if len(per_fold) == 1 else self._sorted_scores
        out = np.empty((n_items, k), dtype=bool)
        for sl in iter_chunks(n_items):
            counts = np.zeros((sl.stop - sl.start, k), dtype=np.int64)
            u_sl = None if u is None else u.block(sl.start, sl.stop)
            for p_f, ref in zip(per_fold, references, strict=True):
                s = _compute_scores(p_f[sl], method, u_sl, lam, k_reg)
                counts += np.searchsorted(ref, s.ravel(), side="left").reshape(s.shape)
            # count < (1 - alpha)(n + 1)  <=>  count < ceil((1 - alpha)(n + 1)) for integers
            out[sl] = counts < self._rank
        return out
