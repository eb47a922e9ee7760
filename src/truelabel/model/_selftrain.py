"""Self-training over an unlabeled pool, wrapping a text classifier: one with its own
views of the texts (``compute_views`` / ``fit_views`` / ``predict_proba_views``, e.g.
:class:`FewShotClassifier`) or any with ``fit_embeddings`` / ``predict_proba_embeddings``.
The rounds are in ``_strounds.py``, the base's side in ``_stbase.py``."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator

from .._validation import check_choice, check_features, check_random_state
from ..backend import Backend
from ..exceptions import NotFittedError, TruelabelWarning, ValidationError, warn_at_caller
from ._prior_shift import adjust_to_pool_priors
from ._pseudo import fit_temperature, stratified_folds, temper, unit_rows
from ._stbase import BaseFits, check_base, class_names
from ._strounds import RoundsMixin
from ._textmix import TextEmbeddingMixin, check_texts

__all__ = ["SelfTrainingClassifier"]


class SelfTrainingClassifier(RoundsMixin, TextEmbeddingMixin, BaseEstimator):
    """Transductive self-training: class-balanced pseudo-labels from the unlabeled pool,
    a kNN similarity cache over the confident items, calibrated output.

    Round 0 fits ``base`` on the labeled items. Each round then (1) mixes the base's
    pool probabilities with the cache's (a similarity-weighted vote of the labeled and
    pseudo-labeled items nearest in embedding space, no training), (2) takes, for every
    class separately, the most confident pool items predicted as that class: at round ``r``
    ``min(r * per_class, max_share * n_predicted[k])`` of them (never one global
    threshold, which starves hard classes), and (3) refits ``base`` on the labeled plus
    pseudo-labeled items. Pseudo-labels are chosen afresh each round, so early mistakes can
    be undone.

    Held-out check: after every round the labeled items are cross-fitted (each fold
    predicted by a base fitted without it, the cache's memory without it, the pseudo-labels
    kept); this chooses the cache weight (``cache_weight="auto"``) and the temperature
    ``T`` (``calibrate``) by log loss, and that log loss is the held-out criterion.

    Stopping rule (``stop``): ``"holdout"`` (default) stops at the first round whose
    cross-fitted log loss is worse than the best so far and keeps the best round
    (``stop_reason_ = "holdout"``). That per-round cross-fit is optimistic (the held-out
    labels helped choose the pseudo-labels), so the kept round is then cross-fitted
    honestly (each fold's whole self-training run without its labels) and, if its log loss
    is worse than round 0's (honest: no pseudo-labels), round 0 is kept
    (``"no_gain"``). Both rules also stop once at most ``stop_tol`` of the
    pool changed predicted class in a round (``"converged"``), when the selection cannot
    grow (``"exhausted"``), or after ``max_rounds`` (``"max_rounds"``). ``"changes"``
    uses only these.

    Output: softmax(log q / T) of the mixture ``q``; with ``prior_shift=True`` the pool's
    class priors are then re-estimated by EM (:func:`adjust_to_pool_priors`) and every
    prediction is re-weighted to them (the pool's class mix is assumed for new items).

    Parameters
    ----------
    base : classifier
        A classifier with its own views of the texts (``compute_views``, ``fit_views``,
        ``predict_proba_views``, e.g. :class:`FewShotClassifier`: its word n-gram and
        first-token views are computed once for the labeled items and the pool, and kept
        every round), or any estimator with ``fit_embeddings(X, labels)``,
        ``predict_proba_embeddings(X)`` and ``classes_`` (class names). It is copied, never
        fitted in place; the settings its first fit chose (``selected_params_``) are kept
        for every later fit. Its ``classes``, when it has them, name the classes.
        ``ZeroShotClassifier`` is refused: it learns from no labels.
    max_rounds : int, default 5
    per_class : "auto", int or float, default "auto"
        Pseudo-labels added per class per round: ``"auto"`` is the median number of
        labeled items per class (a rule fixed a priori, never tuned on test data: one
        round's pseudo-labels of a class never outnumber its labels, so one round's
        mistakes cannot outweigh them), an int is a count, a float in (0, 1] a share of
        the pool's average class size (``n_pool / n_classes``).
    max_share : float in (0, 1], default 0.5
        At most this share of the pool items predicted as a class is pseudo-labeled with
        it (a class rare in the pool is not filled with another class's items).
    min_confidence : float, default 0.0
        Pool items below this (mixed) confidence are never pseudo-labeled.
    cache_weight : float in [0, 1] or "auto", default "auto"
        Weight of the kNN cache in the mixture with the base's probabilities; "auto"
        picks it from (0, 0.25, 0.5, 0.75) by cross-fitted log loss every round.
    n_neighbors : int, default 10
    sharpness : float, default 10.0
        Cache affinity exp(-sharpness * (1 - cosine)).
    stop : {"holdout", "changes"}, default "holdout"
    stop_tol : float, default 0.005
    calibrate : bool, default True
        Fit the temperature on the cross-fitted labeled items (needs >= 2 per class).
    n_folds : int, default 4
    prior_shift : bool, default True
        Adjust the outputs to the pool's class priors (estimated by EM): a few labels per
        class are balanced, a pool rarely is (SMS spam, 13% spam, 8 labels per class:
        0.873 -> 0.896 accuracy from this alone). False assumes the labeled mix.
    encoder : Encoder or None
        Encodes texts for ``fit``/``predict``; None uses ``base.encoder`` if set, else
        ``OnnxTextEncoder()``.
    random_state : int, Generator or None
        Seeds the calibration folds (the only randomness here).
    backend : Backend, "local" or None
        Runs the cache's chunk map.

    Attributes
    ----------
    classes_ : ndarray of str
    base_ : the fitted copy of ``base`` from the kept round
    uses_texts_ : bool
        The base reads views of the texts: ``predict_proba_embeddings`` needs ``texts=``.
    pseudo_indices_, pseudo_labels_ : ndarray
        Pool rows pseudo-labeled in the last round and their class indices.
    transduction_ : ndarray of shape (n_pool, n_classes)
        Calibrated probabilities of the pool items (cache without self-votes).
    n_rounds_ : int
    stop_reason_ : str
    history_ : list of dict
        Per round: pseudo-labels per class, share of the pool that changed class, and with
        ``eval_set`` accuracy overall and per class (base alone and with the cache).
    temperature_, cache_weight_ : float
    holdout_log_loss_ : dict
        Cross-fitted log loss of the labeled items at round 0 and at the kept round
        (honest cross-fit), the numbers the ``"no_gain"`` rule compares.
    pool_priors_, train_priors_ : ndarray or None
        With ``prior_shift``: the EM estimate for the pool and the training set's mix.
    per_class_accuracy_ : pandas.Series
        Set by :meth:`report` / :meth:`score`.

    Examples
    --------
    >>> import numpy as np
    >>> from truelabel.model import SelfTrainingClassifier
    >>> class Centroids:  # any classifier with this interface, e.g. FewShotClassifier
    ...     classes = ["a", "b"]
    ...     def fit_embeddings(self, X, labels):
    ...         self.classes_ = np.array(self.classes, dtype=object)
    ...         lab = np.asarray(labels)
    ...         self.c_ = np.stack([X[lab == c].mean(axis=0) for c in self.classes])
    ...         return self
    ...     def predict_proba_embeddings(self, X):
    ...         z = -((X[:, None, :] - self.c_[None]) ** 2).sum(axis=2)
    ...         e = np.exp(z - z.max(axis=1, keepdims=True))
    ...         return e / e.sum(axis=1, keepdims=True)
    >>> rng = np.random.default_rng(0)
    >>> X = np.r_[rng.normal(-1, 1, (100, 2)), rng.normal(1, 1, (100, 2))]
    >>> st = SelfTrainingClassifier(Centroids(), max_rounds=2, random_state=0)
    >>> st = st.fit_embeddings(X[[0, 1, 100, 101]], ["a", "a", "b", "b"], X)
    >>> st.predict_embeddings(np.array([[-2.0, -2.0], [2.0, 2.0]]))
    array(['a', 'b'], dtype=object)
    >>> st.predict_proba_embeddings(X).shape
    (200, 2)
    """

    def __init__(
        self,
        base: Any,
        *,
        max_rounds: int = 5,
        per_class: int | float | str = "auto",
        max_share: float = 0.5,
        min_confidence: float = 0.0,
        cache_weight: float | str = "auto",
        n_neighbors: int = 10,
        sharpness: float = 10.0,
        stop: str = "holdout",
        stop_tol: float = 0.005,
        calibrate: bool = True,
        n_folds: int = 4,
        prior_shift: bool = True,
        encoder: Any = None,
        random_state: int | np.random.Generator | None = None,
        backend: Backend | str | None = None,
    ) -> None:
        self.base = base
        self.max_rounds = max_rounds
        self.per_class = per_class
        self.max_share = max_share
        self.min_confidence = min_confidence
        self.cache_weight = cache_weight
        self.n_neighbors = n_neighbors
        self.sharpness = sharpness
        self.stop = stop
        self.stop_tol = stop_tol
        self.calibrate = calibrate
        self.n_folds = n_folds
        self.prior_shift = prior_shift
        self.encoder = encoder
        self.random_state = random_state
        self.backend = backend

    # ------------------------------------------------------------------ checks
    def _check_params(self) -> None:
        check_base(self.base)
        if not isinstance(self.max_rounds, int) or self.max_rounds < 0:
            raise ValidationError("max_rounds", f"got {self.max_rounds!r}", "pass an int >= 0")
        pc = self.per_class
        if isinstance(pc, str) and pc == "auto":
            pass
        elif isinstance(pc, bool) or not (
            (isinstance(pc, int) and pc >= 1) or (isinstance(pc, float) and 0 < pc <= 1)
        ):
            raise ValidationError(
                "per_class", f"got {pc!r}", "pass 'auto', a count >= 1 or a share in (0, 1]"
            )
        cw = self.cache_weight
        if cw != "auto" and not (isinstance(cw, float | int) and 0.0 <= cw <= 1.0):
            raise ValidationError("cache_weight", f"got {cw!r}", 'use a weight in [0, 1] or "auto"')
        if not (isinstance(self.max_share, float | int) and 0.0 < self.max_share <= 1.0):
            raise ValidationError("max_share", f"got {self.max_share!r}", "use (0, 1], e.g. 0.5")
        check_choice("stop", self.stop, ("holdout", "changes"))
        if not isinstance(self.n_neighbors, int) or self.n_neighbors < 1:
            raise ValidationError("n_neighbors", f"got {self.n_neighbors!r}", "pass an int >= 1")
        if not isinstance(self.n_folds, int) or self.n_folds < 2:
            raise ValidationError("n_folds", f"got {self.n_folds!r}", "pass an int >= 2")
        if not 0.0 <= self.stop_tol < 1.0:
            raise ValidationError("stop_tol", f"got {self.stop_tol!r}", "use [0, 1), e.g. 0.005")

    def fit_embeddings(
        self,
        X_labeled: Any,
        labels: Any,
        X_pool: Any,
        *,
        texts: Any | None = None,
        unlabeled_texts: Any | None = None,
        eval_set: tuple[Any, ...] | None = None,
    ) -> SelfTrainingClassifier:
        """Fit on labeled vectors and the unlabeled pool's vectors.

        Parameters
        ----------
        X_labeled : array of shape (n_labeled, dim)
        labels : array of shape (n_labeled,) of class names
        X_pool : array of shape (n_pool, dim)
        texts, unlabeled_texts : list of str, optional
            The texts of the same items, for a base with views of the texts (e.g.
            :class:`FewShotClassifier`'s word n-grams and first-token vectors): its views
            are computed once for the labeled items and the pool and every round reads
            rows of them. Both or neither.
        eval_set : (X_eval, labels_eval) or (X_eval, labels_eval, texts_eval), optional
            Only recorded in ``history_`` (accuracy per round and per class); it never
            influences the fit.

        Returns
        -------
        self
        """
        self._check_params()
        xl = check_features(X_labeled, argument="X_labeled")
        if np.size(X_pool) == 0:
            raise ValidationError(
                "X_pool", "is empty", "pass the unlabeled items, or use the base model alone"
            )
        xp = check_features(X_pool, argument="X_pool")
        if xp.shape[1] != xl.shape[1]:
            raise ValidationError(
                "X_pool",
                f"has {xp.shape[1]} columns but X_labeled has {xl.shape[1]}",
                "encode both with the same encoder",
            )
        if (texts is None) != (unlabeled_texts is None):
            raise ValidationError(
                "texts" if texts is None else "unlabeled_texts",
                "is None but the other is given",
                "pass the texts of both the labeled items and the pool, or neither",
            )
        all_texts = None
        if texts is not None:
            tl = check_texts("texts", texts)
            tp = check_texts("unlabeled_texts", unlabeled_texts)
            for name, txt, x in (("texts", tl, xl), ("unlabeled_texts", tp, xp)):
                if len(txt) != x.shape[0]:
                    raise ValidationError(
                        name, f"has {len(txt)} texts for {x.shape[0]} rows", "pass one per row"
                    )
            all_texts = tl + tp
        known = class_names(self.base)
        if known is None:
            known = sorted({str(v) for v in np.asarray(labels).ravel().tolist()})
        y = self._label_ids(labels, xl.shape[0], known)
        self.classes_ = np.asarray(known, dtype=object)
        self._fits = BaseFits(self.base, self.classes_)
        X_all = np.vstack([xl, xp])
        self._data = self._fits.inputs(X_all, all_texts)
        self._u, self._n_l = unit_rows(X_all), xl.shape[0]
        self.uses_texts_ = all_texts is not None and self._fits.views
        ev = None
        if eval_set is not None:
            xe = check_features(eval_set[0], argument="eval_set")
            te = check_texts("eval_set", eval_set[2]) if len(eval_set) > 2 else None
            ye = self._label_ids(eval_set[1], xe.shape[0], known, "eval_set")
            ev = (self._fits.inputs(xe, te if self.uses_texts_ else None), unit_rows(xe), ye)
        rng = check_random_state(self.random_state)
        k = len(known)
        n_folds = min(self.n_folds, int(np.bincount(y, minlength=k).min()))
        can_cf = n_folds >= 2
        if can_cf:
            self._folds = stratified_folds(y, n_folds, rng)
        elif self.calibrate or self.cache_weight == "auto" or self.stop == "holdout":
            warn_at_caller(
                "SelfTrainingClassifier: some class has fewer than 2 labeled items, so "
                "nothing can be cross-fitted: the temperature stays 1 (uncalibrated), the "
                "cache weight 0.5 and the holdout stopping rule is off. Label at least 2 "
                "items per class.",
                TruelabelWarning,
            )
        li = np.arange(self._n_l)
        w0 = 0.5 if self.cache_weight == "auto" else float(self.cache_weight)
        self.history_: list[dict[str, Any]] = []
        try:
            best, self.stop_reason_, first = self._run(
                li, y, self.max_rounds, can_cf, w0, ev, self.history_
            )
            t = float(first["t"])  # round 0's cross-fit is honest: no pseudo-labels yet
            self.holdout_log_loss_ = {"round_0": float(first["loss"]), "kept": float(first["loss"])}
            if can_cf and best["r"] > 0 and (self.calibrate or self.stop == "holdout"):
                # honest cross-fit of the kept round: each fold's self-training runs without
                # the fold's labels (the per-round cross-fit lets them steer the pseudo-labels)
                w = float(best["w"])
                oof = self._honest_oof(li, y, int(best["r"]), w)
                t = fit_temperature(oof, y) if self.calibrate else 1.0
                honest = float(-np.log(temper(oof, t)[np.arange(y.shape[0]), y] + 1e-12).mean())
                self.holdout_log_loss_["kept"] = honest
                if self.stop == "holdout" and honest > first["loss"]:
                    best, self.stop_reason_, t = first, "no_gain", float(first["t"])
        finally:
            del self._data, self._u
        self.n_rounds_ = int(best["r"])
        self._model, self._memory = best["model"], best["memory"]
        self.base_ = best["model"][0]
        self.pseudo_indices_, self.pseudo_labels_ = best["sel"], best["lab"]
        self.cache_weight_, self.temperature_ = float(best["w"]), t
        self.train_priors_ = np.bincount(self._memory[1], minlength=k) / self._memory[1].size
        self.pool_priors_ = None
        self._ratio = np.ones(k)
        pool = temper(best["q"], self.temperature_)
        if self.prior_shift:
            res = adjust_to_pool_priors(pool, self.train_priors_, backend=self.backend)
            self.pool_priors_ = res.priors
            self._ratio = res.priors / self.train_priors_
            pool = res.pred_probs
        self.transduction_ = pool
        return self

    def fit(
        self,
        texts: Any,
        labels: Any,
        unlabeled_texts: Any,
        *,
        eval_set: tuple[Any, Any] | None = None,
    ) -> SelfTrainingClassifier:
        """Encode the labeled texts and the pool, then :meth:`fit_embeddings` (with the
        texts, so a base with views of the texts keeps them)."""
        self._check_params()
        enc = self._encoder()
        tl = check_texts("texts", texts)
        tp = check_texts("unlabeled_texts", unlabeled_texts)
        if not tp:
            raise ValidationError(
                "unlabeled_texts", "is empty", "pass the unlabeled pool, or use the base alone"
            )
        ev = None
        if eval_set is not None:
            te = check_texts("eval_set", eval_set[0])
            ev = (enc.encode(te), eval_set[1], te)
        xl, xp = enc.encode(tl), enc.encode(tp)
        return self.fit_embeddings(xl, labels, xp, texts=tl, unlabeled_texts=tp, eval_set=ev)

    def predict_proba_embeddings(self, X: Any, texts: Any | None = None) -> np.ndarray:
        """Calibrated probabilities, shape (n_items, n_classes), columns in ``classes_``.

        ``texts`` (the same items) are needed when the fitted base reads views of the
        texts (``uses_texts_``)."""
        if not hasattr(self, "base_"):
            raise NotFittedError(
                "SelfTrainingClassifier is not fitted; call fit or fit_embeddings first"
            )
        x = check_features(X, argument="X")
        if x.shape[1] != self._memory[0].shape[1]:
            raise ValidationError(
                "X",
                f"has {x.shape[1]} columns, the model was fitted on {self._memory[0].shape[1]}",
                "encode with the same encoder",
            )
        items = None if texts is None else check_texts("texts", texts)
        if items is not None and len(items) != x.shape[0]:
            raise ValidationError(
                "texts", f"has {len(items)} texts for {x.shape[0]} rows", "pass one per row"
            )
        data = self._fits.inputs_for(self.base_, x, items if self.uses_texts_ else None)
        w = self.cache_weight_
        q = (1.0 - w) * self._fits.probs(self._model, data)
        if w > 0:
            q += w * self._cache(unit_rows(x), self._memory)
        q = temper(q, self.temperature_)
        q = q * self._ratio
        return np.asarray(q / q.sum(axis=1, keepdims=True))
