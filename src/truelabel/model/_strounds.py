"""The rounds of :class:`~truelabel.model.SelfTrainingClassifier`: fit, mix with the kNN
cache, choose class-balanced pseudo-labels, cross-fit the labeled items, stop.

All items (labeled first, then the pool) live in one input bundle ``_data`` read by row
index through :class:`~truelabel.model._stbase.BaseFits`, and their unit embeddings in
``_u`` (the cache's space).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ._pseudo import fit_temperature, knn_cache_probs, select_balanced, temper
from ._stbase import BaseFits

__all__ = ["RoundsMixin"]

#: cache weights tried by ``cache_weight="auto"``
WEIGHTS = (0.0, 0.25, 0.5, 0.75)


class RoundsMixin:
    """Needs the settings of :class:`SelfTrainingClassifier` and, during ``fit``, the
    attributes ``_fits``, ``_data``, ``_u``, ``_n_l``, ``_folds`` and ``classes_``."""

    classes_: np.ndarray
    cache_weight: Any
    calibrate: bool
    n_neighbors: int
    sharpness: float
    backend: Any
    per_class: int | float | str
    max_share: float
    min_confidence: float
    stop: str
    stop_tol: float
    _fits: BaseFits
    _data: Any
    _u: np.ndarray
    _n_l: int
    _folds: np.ndarray

    if TYPE_CHECKING:  # given by TextEmbeddingMixin (after this mixin in the MRO)

        def _evaluate(self, q: np.ndarray, y: np.ndarray) -> dict[str, Any]: ...

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

    def _pool_rows(self, sel: np.ndarray) -> np.ndarray:
        return self._n_l + sel

    def _cross_fit(
        self, li: np.ndarray, y: np.ndarray, sel: np.ndarray, lab: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Base and cache probabilities of every labeled item (rows ``li``) from a fit
        without its fold (the pseudo-labeled pool items ``sel`` stay in every fold's
        training set)."""
        ps = self._pool_rows(sel)
        oof_p = np.empty((y.shape[0], len(self.classes_)))
        oof_c = np.empty_like(oof_p)
        for f in range(int(self._folds.max()) + 1):  # folds, not items
            tr, te = self._folds != f, self._folds == f
            rows = np.concatenate([li[tr], ps])
            labels = np.concatenate([y[tr], lab])
            model = self._fits.fit(self._data, rows, labels)
            oof_p[te] = self._fits.probs(model, self._fits.take(self._data, li[te]))
            oof_c[te] = self._cache(self._u[li[te]], (self._u[rows], labels))
        return oof_p, oof_c

    def _choose(
        self, oof_p: np.ndarray, oof_c: np.ndarray, y: np.ndarray
    ) -> tuple[float, float, float]:
        """(cache weight, temperature, log loss) with the lowest cross-fitted log loss."""
        grid = WEIGHTS if self.cache_weight == "auto" else (float(self.cache_weight),)
        best = (0.0, 1.0, np.inf)
        rows = np.arange(y.shape[0])
        for w in grid:  # a few weights, not items
            q = (1.0 - w) * oof_p + w * oof_c
            t = fit_temperature(q, y) if self.calibrate else 1.0
            loss = float(-np.log(temper(q, t)[rows, y] + 1e-12).mean())
            if loss < best[2] - 1e-12:
                best = (w, t, loss)
        return best

    def _step(self, y: np.ndarray, n_pool: int) -> int:
        """Pseudo-labels per class per round (``per_class``; "auto": the median labeled
        count per class of ``y``, the labels this run learns from)."""
        k = len(self.classes_)
        if isinstance(self.per_class, str):
            return max(1, int(np.median(np.bincount(y, minlength=k))))
        if isinstance(self.per_class, int):
            return self.per_class
        return max(1, int(np.ceil(self.per_class * n_pool / k)))

    def _run(
        self,
        li: np.ndarray,
        y: np.ndarray,
        max_rounds: int,
        cross_fit: bool,
        weight: float,
        ev: tuple[Any, np.ndarray, np.ndarray] | None = None,
        history: list[dict[str, Any]] | None = None,
    ) -> tuple[dict[str, Any], str, dict[str, Any]]:
        """The self-training rounds on labeled rows ``li`` (class indices ``y``); returns
        the kept round's state, the stop reason and round 0's state.
        With ``cross_fit`` every round is cross-fitted on the labeled items (cache weight,
        holdout log loss); without, ``weight`` is used and only the other rules stop."""
        n_pool = self._u.shape[0] - self._n_l
        k = len(self.classes_)
        pool_rows = self._pool_rows(np.arange(n_pool))
        pool = self._fits.take(self._data, pool_rows)  # taken once, read every round
        up = self._u[pool_rows]
        step = self._step(y, n_pool)
        sel = np.empty(0, dtype=np.int64)
        lab = np.empty(0, dtype=np.int64)
        reason = "max_rounds"
        best: dict[str, Any] = {}
        first: dict[str, Any] = {}
        prev: np.ndarray | None = None
        for r in range(max_rounds + 1):  # rounds, not items
            rows = np.concatenate([li, self._pool_rows(sel)])
            labels = np.concatenate([y, lab])
            model = self._fits.fit(self._data, rows, labels)
            memory = (self._u[rows], labels)
            w, t, loss = (
                self._choose(*self._cross_fit(li, y, sel, lab), y)
                if cross_fit
                else (weight, 1.0, np.nan)
            )
            exclude = np.full(n_pool, -1, dtype=np.int64)
            exclude[sel] = y.shape[0] + np.arange(sel.size)
            q = (1.0 - w) * self._fits.probs(model, pool)
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
                    pe = self._fits.probs(model, ev[0])
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

    def _honest_oof(self, li: np.ndarray, y: np.ndarray, rounds: int, w: float) -> np.ndarray:
        """Probabilities of the labeled items, each fold from a whole self-training run
        (``rounds`` rounds, cache weight ``w``) without the fold's labels."""
        oof = np.empty((y.shape[0], len(self.classes_)))
        for f in range(int(self._folds.max()) + 1):  # folds, not items
            tr, te = self._folds != f, self._folds == f
            b = self._run(li[tr], y[tr], rounds, False, w)[0]
            oof[te] = (1 - w) * self._fits.probs(b["model"], self._fits.take(self._data, li[te]))
            if w > 0:
                oof[te] += w * self._cache(self._u[li[te]], b["memory"])
        return oof
