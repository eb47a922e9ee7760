"""Model-assisted consensus: an EM aggregator whose E-step also hears a classifier's
``pred_probs``.

Why a separate estimator rather than a ``pred_probs=`` argument on :class:`DawidSkene.fit`:
the classifier brings its own fitted state (its weight, its accuracy against the crowd, a
per-item consensus quality), its own validation (rows aligned to the items, one column per
class) and its own failure mode (a model trained on the crowd's labels echoing them), and
the plain aggregators keep the one-argument contract every other consumer (CLI, weak/) relies
on. With ``model_weight=0`` it is exactly its ``base`` aggregator (tested bit for bit).

The model enters the EM through the ``item_log_prior`` seam of :func:`run_em`: each item's
log-posterior gets ``w * (log pred_probs[i] - log mean(pred_probs))`` -- the classifier's
likelihood ratio (its class prior divided out, since the EM has its own), tempered by a
weight ``w >= 0``. ``w`` is fitted by an outer EM: starting from the annotators-only
consensus of the base aggregator (one-coin Dawid-Skene by default), ``w`` is set to the temperature that makes ``softmax(log class prior +
w * ratio)`` best predict (minimum cross-entropy) the current consensus posteriors of the items
with two or more answers (gold items left out: ``w`` never sees gold); the base EM is re-run
with the model at that weight, warm-started, and so on until ``w`` settles. This is the
maximum-likelihood fit of a latent-class model whose class prior per item is the tempered
classifier (Raykar et al. 2010 with the classifier frozen), restricted to the multi-answer
items for the weight. A one-shot fit against the annotators-only consensus underweights a
good model (that consensus is noisy, so the model looks worse than it is): on the synthetic
crowds of ``benchmarks/bench_crowdlab.py`` (Dawid-Skene base, seeds 0-1) it gave w ~ 0.8 and
0.79 accuracy where the outer EM reaches w ~ 3 and 0.86. A model that disagrees with the crowd where it is informative gets
a weight near 0.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import minimize_scalar
from sklearn.base import clone

from ..exceptions import TruelabelWarning, ValidationError, warn_at_caller
from ._base import Aggregator, check_positive, check_positive_int
from ._dawid_skene import OneCoinDawidSkene, _EMAggregator, initial_posteriors
from ._em import EMResult, run_em
from ._table import Annotations, _py, as_annotations

__all__ = ["ModelAssistedConsensus", "check_pred_probs"]

_MAX_WEIGHT = 20.0
_FLOOR = 1e-6  # pred_probs floor before the log (a 0 would veto a class outright)


def check_pred_probs(pred_probs: Any, table: Annotations, atol: float = 1e-3) -> np.ndarray:
    """``pred_probs`` as an ``(n_items, n_classes)`` float array in the table's item order.

    A DataFrame is aligned by its index (item ids) and, when its columns are the classes,
    by its columns; an array must have one row per item in the order of ``table.items``
    (item ids sorted) and one column per class in the order of ``table.classes``.
    """
    k, items = table.n_classes, table.items
    if isinstance(pred_probs, pd.DataFrame):
        missing = items.difference(pred_probs.index)
        if len(missing):
            raise ValidationError(
                "pred_probs",
                f"has no row for {len(missing)} annotated item(s), e.g. {_py(missing[0])!r}",
                "index pred_probs by item id with one row per annotated item",
            )
        frame = pred_probs.loc[items]
        if set(frame.columns) == set(table.classes):
            frame = frame[list(table.classes)]
        probs = frame.to_numpy(dtype=float)
    else:
        probs = np.asarray(pred_probs, dtype=float)
        if probs.ndim != 2 or probs.shape[0] != table.n_items:
            raise ValidationError(
                "pred_probs",
                f"has shape {probs.shape}, expected ({table.n_items}, {k}): one row per "
                "annotated item",
                "pass rows in the order of Annotations(df).items (sorted item ids), or a "
                "DataFrame indexed by item id",
            )
    if probs.shape[1] != k:
        raise ValidationError(
            "pred_probs",
            f"has {probs.shape[1]} columns, expected {k} (classes {list(table.classes)})",
            "pass one probability column per class, in the order of the classes",
        )
    if not np.isfinite(probs).all() or (probs < 0).any():
        raise ValidationError(
            "pred_probs", "holds negative, NaN or infinite values", "pass probabilities"
        )
    sums = probs.sum(axis=1)
    bad = np.flatnonzero(np.abs(sums - 1.0) > atol)
    if bad.size:
        raise ValidationError(
            "pred_probs",
            f"row {int(bad[0])} sums to {sums[bad[0]]:.6g}, not 1 ({bad.size} such rows)",
            "pass probabilities (e.g. softmax outputs); rows must sum to 1",
        )
    return probs


def model_log_ratio(probs: np.ndarray) -> np.ndarray:
    """``log p(k | x_i) - log mean_i p(k | x_i)``: the classifier's evidence, class prior out."""
    p = np.maximum(probs, _FLOOR)
    p /= p.sum(axis=1, keepdims=True)
    return np.log(p) - np.log(p.mean(axis=0))


def fit_model_weight(ratio: np.ndarray, target: np.ndarray, log_prior: np.ndarray) -> float:
    """The weight ``w`` in ``[0, 20]`` minimising the cross-entropy of
    ``softmax(log_prior + w * ratio)`` against the consensus posteriors ``target``.

    >>> r = np.log(np.array([[0.9, 0.1], [0.2, 0.8]])) - np.log(0.5)
    >>> fit_model_weight(r, np.array([[0.0, 1.0], [1.0, 0.0]]), np.log([0.5, 0.5]))  # wrong
    0.0
    """
    if len(target) == 0:
        return 0.0

    def loss(w: float) -> float:
        z = log_prior + w * ratio
        z = z - z.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        return float(-(target * logp).sum())

    res = minimize_scalar(
        loss, bounds=(0.0, _MAX_WEIGHT), method="bounded", options={"xatol": 1e-4}
    )
    w = float(res.x)
    return 0.0 if loss(0.0) <= loss(w) else w


def _record(inner: Any, result: EMResult) -> EMResult:
    """What ``_EMAggregator._run`` stores on the aggregator, for a result computed here."""
    inner.n_iter_ = result.n_iter
    inner.converged_ = result.converged
    inner.log_likelihood_ = result.log_likelihood
    inner.objective_ = result.objective
    inner.init_objectives_ = np.asarray(result.objectives)
    inner.confusions_ = np.exp(result.model.log_conf)
    inner.class_prior_ = np.exp(result.model.log_prior)
    return result


def aitken(path: list[float]) -> float:
    """Aitken's extrapolation of a slowly converging sequence from its last three terms
    (the outer EM moves the weight geometrically; this jumps towards the limit).

    >>> round(aitken([1.0, 1.5, 1.75]), 6)
    2.0
    """
    w0, w1, w2 = path[-3:]
    d1, d2 = w1 - w0, w2 - w1
    if d1 == 0 or d2 / d1 <= 0 or d2 / d1 >= 0.95:
        return w2
    r = d2 / d1
    return float(np.clip(w2 + d2 * r / (1 - r), 0.0, _MAX_WEIGHT))


class ModelAssistedConsensus(Aggregator):
    """Consensus of annotators and a classifier's out-of-fold ``pred_probs``.

    Items with one answer get a trustworthy consensus when the model is good: the model's
    likelihood ratio, tempered by the weight ``model_weight_`` it earned against the crowd,
    enters every E-step of the ``base`` aggregator's EM (see the module docstring). The
    annotators' parameters are then re-estimated against that better consensus, so the
    annotator skills improve too.

    Parameters
    ----------
    base : DawidSkene, OneCoinDawidSkene or MACE instance, optional
        The annotator model and its EM settings (``n_init``, ``tol``, ``max_iter``,
        ``backend``, ``chunk_size``; the seed is this estimator's ``random_state``).
        Default ``OneCoinDawidSkene()``: with 1-3 answers per item most annotators answer
        too few items for a full confusion matrix (on crowd_rte subsampled to 1-3 answers,
        10 answers per worker, Dawid-Skene reached 0.75 and one-coin 0.79,
        ``benchmarks/results/crowdlab.md``).
    model_weight : "auto" or float >= 0, default "auto"
        ``"auto"``: fitted by the outer EM against the consensus of the items with >= 2
        answers (never gold). A number fixes it; ``0`` gives exactly ``base.fit``.
    max_rounds : int, default 50
        Rounds of the outer EM over the weight (each a warm-started EM of ``base``).
    weight_tol : float, default 1e-3
        Stop when the weight moves by less than this between rounds.
    random_state : int, Generator or None, default 0

    Attributes
    ----------
    model_weight_ : float
        The weight of the model's log likelihood ratio (0 = ignored).
    n_rounds_ : int
        Rounds of the outer EM over the weight.
    model_accuracy_ : float
        Expected agreement of the model's argmax with the annotators-only consensus on the
        items with >= 2 answers (nan when there are none).
    consensus_quality_ : Series
        Per item, the posterior probability of its consensus label, in [0, 1]: lower = more
        doubtful.
    base_ : the fitted copy of ``base`` (its ``confusions_``, ``competence_``, ...)
    probas_, labels_, skills_, confusions_, class_prior_
        As in the ``base`` aggregator.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"item_id": [1, 1, 2, 3], "annotator_id": ["a", "b", "a", "b"],
    ...                    "label": [0, 0, 1, 1]})
    >>> m = ModelAssistedConsensus(model_weight=2.0)
    >>> m.fit_predict(df, pred_probs=[[0.9, 0.1], [0.1, 0.9], [0.9, 0.1]]).tolist()
    [0, 1, 0]
    """

    def __init__(
        self,
        base: Any = None,
        *,
        model_weight: Any = "auto",
        max_rounds: int = 50,
        weight_tol: float = 1e-3,
        random_state: Any = 0,
    ) -> None:
        self.base = base
        self.model_weight = model_weight
        self.max_rounds = max_rounds
        self.weight_tol = weight_tol
        self.random_state = random_state

    def fit(  # type: ignore[override]
        self, annotations: Any, *, pred_probs: Any, gold: Any = None
    ) -> ModelAssistedConsensus:
        """Aggregate ``annotations`` with the classifier's ``pred_probs``.

        Parameters
        ----------
        annotations : DataFrame or Annotations
        pred_probs : DataFrame indexed by item id, or array (n_items, n_classes)
            Out-of-fold class probabilities of a classifier; an array's rows follow
            ``Annotations(annotations).items`` (sorted item ids).
        gold : Series item_id -> label, optional

        Returns
        -------
        self
        """
        if not (isinstance(self.model_weight, str) and self.model_weight == "auto"):
            check_positive("model_weight", self.model_weight, allow_zero=True)
        check_positive_int("max_rounds", self.max_rounds)
        check_positive("weight_tol", self.weight_tol)
        base = OneCoinDawidSkene() if self.base is None else self.base
        if not isinstance(base, _EMAggregator):
            raise ValidationError(
                "base",
                f"got {type(base).__name__}",
                "pass DawidSkene(), OneCoinDawidSkene() or MACE() (an EM aggregator), or None",
            )
        table = as_annotations(annotations, gold)
        self._pred_probs = check_pred_probs(pred_probs, table)
        self.base_ = clone(base)
        try:
            super().fit(table)
        finally:
            del self._pred_probs
        post = self.probas_.to_numpy()
        chosen = post[
            np.arange(len(post)), self.probas_.columns.get_indexer(pd.Index(self.labels_))
        ]
        self.consensus_quality_ = pd.Series(
            chosen, index=self.probas_.index, name="consensus_quality"
        )
        return self

    def fit_predict(  # type: ignore[override]
        self, annotations: Any, *, pred_probs: Any, gold: Any = None
    ) -> pd.Series:
        """Consensus label per item: a Series indexed by item id."""
        return self.fit(annotations, pred_probs=pred_probs, gold=gold).labels_

    def fit_predict_proba(  # type: ignore[override]
        self, annotations: Any, *, pred_probs: Any, gold: Any = None
    ) -> pd.DataFrame:
        """Consensus probabilities: a DataFrame ``(n_items, n_classes)`` indexed by item id."""
        return self.fit(annotations, pred_probs=pred_probs, gold=gold).probas_

    def _fit_encoded(
        self, table: Annotations, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        inner = self.base_
        result = self._run(inner, table, rng)
        # the base's own bookkeeping (attributes, skills) on the model-assisted EM result
        inner.__dict__["_run"] = lambda *_: _record(inner, result)
        try:
            posteriors, skills = inner._fit_encoded(table, rng)
        finally:
            del inner.__dict__["_run"]
        self.confusions_ = inner.confusions_
        self.class_prior_ = inner.class_prior_
        self.n_iter_ = inner.n_iter_
        self.converged_ = inner.converged_
        return posteriors, skills

    def _run(self, inner: Any, table: Annotations, rng: np.random.Generator) -> EMResult:
        n_init, tol, max_iter = inner._check_em()
        inner._check_prior()
        inits = initial_posteriors(table, n_init, rng)
        ratio = model_log_ratio(self._pred_probs)

        def em(item_log_prior: np.ndarray | None, starts: list[np.ndarray]) -> EMResult:
            return run_em(
                table.counts,
                n_annotators=table.n_annotators,
                n_classes=table.n_classes,
                m_step=inner._m_step,
                inits=starts,
                gold=table.gold_codes,
                item_log_prior=item_log_prior,
                tol=tol,
                max_iter=max_iter,
                backend=inner.backend,
                chunk_size=inner.chunk_size,
                name=type(self).__name__,
                show_progress=True,
            )

        multi = (np.diff(table.counts.indptr) >= 2) & (table.gold_codes < 0)
        crowd = em(None, inits)  # the annotators-only consensus
        target = crowd.posteriors[multi]
        self.model_accuracy_ = (
            float(target[np.arange(len(target)), ratio[multi].argmax(axis=1)].mean())
            if multi.any()
            else float("nan")
        )
        if self.model_weight != "auto":
            weight = float(self.model_weight)
            result = em(weight * ratio, inits)
            self.n_rounds_ = 1
        elif not multi.any():
            warn_at_caller(
                "ModelAssistedConsensus: no item has two or more answers, so the model's "
                "weight cannot be estimated; it is set to 0 (the base aggregator alone). Pass "
                "model_weight= to use the model anyway",
                TruelabelWarning,
            )
            weight, result, self.n_rounds_ = 0.0, crowd, 0
        else:
            # EM over w too: the E-step hears the model at weight w, then w is refitted
            # against the new posteriors of the multi-answer items, until w settles
            weight, result, path = 0.0, crowd, []
            for rounds in range(1, self.max_rounds + 1):  # noqa: B007  (reported)
                new = fit_model_weight(
                    ratio[multi], result.posteriors[multi], result.model.log_prior
                )
                if abs(new - weight) <= self.weight_tol:
                    weight = new
                    break
                path.append(new)
                weight = aitken(path) if len(path) % 3 == 0 else new
                result = em(weight * ratio, [result.posteriors])
            else:
                warn_at_caller(
                    f"ModelAssistedConsensus: the model weight did not settle in max_rounds="
                    f"{self.max_rounds} rounds (last {weight:.4g}); raise max_rounds or weight_tol",
                    TruelabelWarning,
                )
            # a model with no weight leaves exactly the annotators-only result
            result = crowd if weight == 0.0 else em(weight * ratio, [result.posteriors])
            self.n_rounds_ = rounds
        self.model_weight_ = float(weight)
        return result
