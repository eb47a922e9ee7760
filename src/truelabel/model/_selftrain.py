"""Self-training over an unlabeled pool, wrapping any text classifier with the
``fit_embeddings`` / ``predict_proba_embeddings`` / ``classes_`` interface."""

from __future__ import annotations

import copy
import warnings
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator

from .._validation import check_choice, check_features, check_random_state
from ..backend import Backend
from ..exceptions import NotFittedError, TruelabelWarning, ValidationError
from ._prior_shift import adjust_to_pool_priors
from ._pseudo import (
    fit_temperature,
    knn_cache_probs,
    select_balanced,
    stratified_folds,
    temper,
    unit_rows,
)
from ._textmix import TextEmbeddingMixin, check_texts

__all__ = ["SelfTrainingClassifier"]

#: cache weights tried by ``cache_weight="auto"``
_WEIGHTS = (0.0, 0.25, 0.5, 0.75)


def _class_names(spec: Any) -> list[str] | None:
    if spec is None:
        return None
    return [str(c) for c in (spec.keys() if isinstance(spec, dict) else spec)]


class SelfTrainingClassifier(TextEmbeddingMixin, BaseEstimator):
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
        Any estimator with ``fit_embeddings(X, labels)``, ``predict_proba_embeddings(X)``
        and ``classes_`` (class names), e.g. ``FewShotClassifier``. It is copied, never
        fitted in place. Its ``classes`` setting, when it has one, names the classes.
    max_rounds : int, default 5
    per_class : int or float, default 0.1
        Pseudo-labels added per class per round: an int is a count, a float in (0, 1] a
        share of the pool's average class size (``n_pool / n_classes``).
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
    prior_shift : bool, default False
        Adjust the outputs to the pool's class priors (estimated by EM).
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
    base_ : the fitted copy of ``base`` from the last round
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
        per_class: int | float = 0.1,
        max_share: float = 0.5,
        min_confidence: float = 0.0,
        cache_weight: float | str = "auto",
        n_neighbors: int = 10,
        sharpness: float = 10.0,
        stop: str = "holdout",
        stop_tol: float = 0.005,
        calibrate: bool = True,
        n_folds: int = 4,
        prior_shift: bool = False,
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
        for name in ("fit_embeddings", "predict_proba_embeddings"):
            if not callable(getattr(self.base, name, None)):
                raise ValidationError(
                    "base",
                    f"{type(self.base).__name__} has no {name}()",
                    "wrap a classifier with fit_embeddings(X, labels) and "
                    "predict_proba_embeddings(X), e.g. FewShotClassifier",
                )
        if not isinstance(self.max_rounds, int) or self.max_rounds < 0:
            raise ValidationError("max_rounds", f"got {self.max_rounds!r}", "pass an int >= 0")
        pc = self.per_class
        if isinstance(pc, bool) or not (
            (isinstance(pc, int) and pc >= 1) or (isinstance(pc, float) and 0 < pc <= 1)
        ):
            raise ValidationError(
                "per_class", f"got {pc!r}", "pass a count >= 1 or a share in (0, 1]"
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

    def _fit_base(self, x: np.ndarray, y: np.ndarray) -> tuple[Any, np.ndarray]:
        """A fitted copy of ``base`` and the columns of its output in ``classes_`` order."""
        try:
            from sklearn.base import clone

            model = clone(self.base)
        except TypeError:
            model = copy.deepcopy(self.base)
        model.fit_embeddings(x, self.classes_[y])
        got = [str(c) for c in model.classes_]
        missing = [c for c in self.classes_ if c not in got]
        if missing:
            raise ValidationError(
                "base",
                f"its classes_ lack {missing[:5]}",
                "give the base every class (its classes= setting)",
            )
        return model, np.asarray([got.index(c) for c in self.classes_])

    @staticmethod
    def _base_probs(model: tuple[Any, np.ndarray], x: np.ndarray) -> np.ndarray:
        p = np.asarray(model[0].predict_proba_embeddings(x), dtype=np.float64)
        p = p[:, model[1]]
        return np.asarray(p / np.maximum(p.sum(axis=1, keepdims=True), 1e-12))

    def _cache(
        self, xu: np.ndarray, memory: tuple[np.ndarray, np.ndarray], exclude: Any = None
    ) -> np.ndarray:
        return knn_cache_probs(
            xu,
            memory[0],
            memory[1],
            len(self.classes_),
            n_neighbors=self.n_neighbors,
            sharpness=self.sharpness,
            exclude=exclude,
            backend=self.backend,
        )

    def _cross_fit(
        self, xl: np.ndarray, ul: np.ndarray, y: np.ndarray, sel: np.ndarray, lab: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Base and cache probabilities of every labeled item from a fit without its fold
        (the pseudo-labeled items ``sel`` of the pool stay in every fold's training set)."""
        xs, us = self._xp[sel], self._up[sel]
        oof_p = np.empty((y.shape[0], len(self.classes_)))
        oof_c = np.empty_like(oof_p)
        for f in range(int(self._folds.max()) + 1):  # folds, not items
            tr, te = self._folds != f, self._folds == f
            model = self._fit_base(np.vstack([xl[tr], xs]), np.concatenate([y[tr], lab]))
            oof_p[te] = self._base_probs(model, xl[te])
            oof_c[te] = self._cache(ul[te], (np.vstack([ul[tr], us]), np.concatenate([y[tr], lab])))
        return oof_p, oof_c

    def _choose(
        self, oof_p: np.ndarray, oof_c: np.ndarray, y: np.ndarray
    ) -> tuple[float, float, float]:
        """(cache weight, temperature, log loss) with the lowest cross-fitted log loss."""
        grid = _WEIGHTS if self.cache_weight == "auto" else (float(self.cache_weight),)
        best = (0.0, 1.0, np.inf)
        rows = np.arange(y.shape[0])
        for w in grid:  # a few weights, not items
            q = (1.0 - w) * oof_p + w * oof_c
            t = fit_temperature(q, y) if self.calibrate else 1.0
            loss = float(-np.log(temper(q, t)[rows, y] + 1e-12).mean())
            if loss < best[2] - 1e-12:
                best = (w, t, loss)
        return best

    def fit_embeddings(
        self,
        X_labeled: Any,
        labels: Any,
        X_pool: Any,
        *,
        eval_set: tuple[Any, Any] | None = None,
    ) -> SelfTrainingClassifier:
        """Fit on labeled vectors and the unlabeled pool's vectors.

        Parameters
        ----------
        X_labeled : array of shape (n_labeled, dim)
        labels : array of shape (n_labeled,) of class names
        X_pool : array of shape (n_pool, dim)
        eval_set : (X_eval, labels_eval), optional
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
        known = _class_names(getattr(self.base, "classes", None))
        if known is None:
            known = sorted({str(v) for v in np.asarray(labels).ravel().tolist()})
        y = self._label_ids(labels, xl.shape[0], known)
        self.classes_ = np.asarray(known, dtype=object)
        ev = None
        if eval_set is not None:
            xe = check_features(eval_set[0], argument="eval_set")
            ev = (xe, unit_rows(xe), self._label_ids(eval_set[1], xe.shape[0], known, "eval_set"))
        rng = check_random_state(self.random_state)
        k = len(known)
        n_folds = min(self.n_folds, int(np.bincount(y, minlength=k).min()))
        can_cf = n_folds >= 2
        if can_cf:
            self._folds = stratified_folds(y, n_folds, rng)
        elif self.calibrate or self.cache_weight == "auto" or self.stop == "holdout":
            warnings.warn(
                "SelfTrainingClassifier: some class has fewer than 2 labeled items, so "
                "nothing can be cross-fitted: the temperature stays 1 (uncalibrated), the "
                "cache weight 0.5 and the holdout stopping rule is off. Label at least 2 "
                "items per class.",
                TruelabelWarning,
                stacklevel=2,
            )
        self._xp, self._up = xp, unit_rows(xp)
        ul = unit_rows(xl)
        w0 = 0.5 if self.cache_weight == "auto" else float(self.cache_weight)
        self.history_: list[dict[str, Any]] = []
        best, self.stop_reason_, first = self._run(
            xl, ul, y, self.max_rounds, can_cf, w0, ev, self.history_
        )
        t = float(first["t"])  # round 0's cross-fit is honest: no pseudo-labels yet
        self.holdout_log_loss_ = {"round_0": float(first["loss"]), "kept": float(first["loss"])}
        if can_cf and best["r"] > 0 and (self.calibrate or self.stop == "holdout"):
            # honest cross-fit of the kept round: each fold's self-training runs without
            # the fold's labels (the per-round cross-fit lets them steer the pseudo-labels)
            w, oof = float(best["w"]), np.empty((y.shape[0], k))
            for f in range(n_folds):  # folds, not items
                tr, te = self._folds != f, self._folds == f
                b = self._run(xl[tr], ul[tr], y[tr], int(best["r"]), False, w)[0]
                oof[te] = (1 - w) * self._base_probs(b["model"], xl[te])
                if w > 0:
                    oof[te] += w * self._cache(ul[te], b["memory"])
            t = fit_temperature(oof, y) if self.calibrate else 1.0
            honest = float(-np.log(temper(oof, t)[np.arange(y.shape[0]), y] + 1e-12).mean())
            self.holdout_log_loss_["kept"] = honest
            if self.stop == "holdout" and honest > first["loss"]:
                best, self.stop_reason_, t = first, "no_gain", float(first["t"])
        self.n_rounds_ = int(best["r"])
        self._model, self._memory = best["model"], best["memory"]
        self.base_ = best["model"][0]
        self.pseudo_indices_, self.pseudo_labels_ = best["sel"], best["lab"]
        self.cache_weight_, self.temperature_ = float(best["w"]), t
        del self._xp, self._up
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

    def _run(
        self,
        xl: np.ndarray,
        ul: np.ndarray,
        y: np.ndarray,
        max_rounds: int,
        cross_fit: bool,
        weight: float,
        ev: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
        history: list[dict[str, Any]] | None = None,
    ) -> tuple[dict[str, Any], str, dict[str, Any]]:
        """The self-training rounds; returns the kept round's state, the stop reason and
        round 0's state.
        With ``cross_fit`` every round is cross-fitted on the labeled items (cache weight,
        holdout log loss); without, ``weight`` is used and only the other rules stop."""
        xp, up = self._xp, self._up
        k, n_pool = len(self.classes_), xp.shape[0]
        step = (
            self.per_class
            if isinstance(self.per_class, int)
            else max(1, int(np.ceil(self.per_class * n_pool / k)))
        )
        sel = np.empty(0, dtype=np.int64)
        lab = np.empty(0, dtype=np.int64)
        reason = "max_rounds"
        best: dict[str, Any] = {}
        first: dict[str, Any] = {}
        prev: np.ndarray | None = None
        for r in range(max_rounds + 1):  # rounds, not items
            model = self._fit_base(np.vstack([xl, xp[sel]]), np.concatenate([y, lab]))
            memory = (np.vstack([ul, up[sel]]), np.concatenate([y, lab]))
            w, t, loss = (
                self._choose(*self._cross_fit(xl, ul, y, sel, lab), y)
                if cross_fit
                else (weight, 1.0, np.nan)
            )
            exclude = np.full(n_pool, -1, dtype=np.int64)
            exclude[sel] = y.shape[0] + np.arange(sel.size)
            q = (1.0 - w) * self._base_probs(model, xp)
            if w > 0:
                q += w * self._cache(up, memory, exclude)
            pred = q.argmax(axis=1)
            changed = None if prev is None else float(np.mean(pred != prev))
            if history is not None:
                row: dict[str, Any] = {
                    "round": r,
                    "n_pseudo": int(sel.size),
                    "pseudo_per_class": np.bincount(lab, minlength=k).tolist(),
                    "changed": changed,
                    "cache_weight": w,
                    "holdout_temperature": t,
                    "holdout_log_loss": loss,
                }
                if ev is not None:
                    pe = self._base_probs(model, ev[0])
                    row["base"] = self._evaluate(pe, ev[2])
                    qe = (1 - w) * pe + (w * self._cache(ev[1], memory) if w > 0 else 0.0)
                    row.update(self._evaluate(qe, ev[2]))
                history.append(row)
            if self.stop == "holdout" and cross_fit and best and loss > best["loss"]:
                reason = "holdout"
                break
            best = {"r": r, "model": model, "memory": memory, "sel": sel, "lab": lab}
            best.update({"w": w, "t": t, "loss": loss, "q": q})
            first = first or best
            if changed is not None and changed <= self.stop_tol:
                reason = "converged"
                break
            if r == max_rounds:
                break
            n_pred = np.bincount(pred, minlength=k)
            quota = np.minimum((r + 1) * step, np.ceil(self.max_share * n_pred)).astype(np.int64)
            new_sel, new_lab = select_balanced(q, quota, self.min_confidence)
            if r > 0 and np.array_equal(new_sel, sel) and np.array_equal(new_lab, lab):
                reason = "exhausted"
                break
            sel, lab, prev = new_sel, new_lab, pred
        return best, reason, first

    def fit(
        self,
        texts: Any,
        labels: Any,
        unlabeled_texts: Any,
        *,
        eval_set: tuple[Any, Any] | None = None,
    ) -> SelfTrainingClassifier:
        """Encode the labeled texts and the pool, then :meth:`fit_embeddings`."""
        enc = self._encoder()
        xl = enc.encode(check_texts("texts", texts))
        xp_texts = check_texts("unlabeled_texts", unlabeled_texts)
        if not xp_texts:
            raise ValidationError(
                "unlabeled_texts", "is empty", "pass the unlabeled pool, or use the base alone"
            )
        ev = None
        if eval_set is not None:
            ev = (enc.encode(check_texts("eval_set", eval_set[0])), eval_set[1])
        return self.fit_embeddings(xl, labels, enc.encode(xp_texts), eval_set=ev)

    def predict_proba_embeddings(self, X: Any) -> np.ndarray:
        """Calibrated probabilities, shape (n_items, n_classes), columns in ``classes_``."""
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
        w = self.cache_weight_
        q = (1.0 - w) * self._base_probs(self._model, x)
        if w > 0:
            q += w * self._cache(unit_rows(x), self._memory)
        q = temper(q, self.temperature_)
        q = q * self._ratio
        return np.asarray(q / q.sum(axis=1, keepdims=True))
