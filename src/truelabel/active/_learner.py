"""``ActiveLearner``: the labeling loop as a plain API (teach answers, get suggestions)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .._validation import check_features, check_random_state
from ..backend import Backend
from ..exceptions import ValidationError
from ._checks import check_costs, check_number, check_teach
from ._model import LinearModel, calibrate, calibrate_noisy, fit_linear, fold_ids, pool_proba
from ._reasons import (
    cold_start_reason,
    cover_item_reason,
    cover_switch_reason,
    net_reason,
    relabel_hint,
    relabel_reason,
    repeat_track,
    unseen_reason,
    where,
)
from ._relabel import consensus_loglik, new_item_gain, pair_accuracy, relabel_gain, repeat_yield
from ._select import COVER_MIN_CLASSES, neighbour_edge, pick_cover, pick_new
from ._state import PRIOR_PAIRS, Refit, consensus
from ._stopping import StopEstimate, StopTracker
from ._uncertainty import compute_uncertainty

__all__ = ["ActiveLearner"]

_DEFAULT_ANNOTATOR = "annotator"
#: a re-label's gain below this is rounding (an exact zero computed as 1e-16), not a gain
GAIN_TOL = 1e-9
#: pseudo-disagreements at the predicted rate behind the re-label yield (one expected change:
#: the model is trusted until repeats have had the chance to show one disagreement)
YIELD_PRIOR = 1.0


def _tie_probs(fit: Refit) -> np.ndarray:
    """The last model's view of each item, for breaking ties between answers: out-of-fold for
    the items it was trained on (the full model learned their first answer, so it would keep
    it; :func:`relabel_gain` assumes ties go to the out-of-fold model), the pool model
    elsewhere."""
    probs = np.array(fit.pool_probs, dtype=np.float64)
    if fit.oof_probs.shape == (fit.state.items.size, probs.shape[1]):
        probs[fit.state.items] = fit.oof_probs
    return probs


def _tempered(probs: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(log(probs) / T)``: the model's probabilities at the calibrated temperature."""
    z = np.log(np.maximum(np.asarray(probs, dtype=np.float64), 1e-300)) / temperature
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return np.asarray(z / z.sum(axis=1, keepdims=True))


class ActiveLearner:
    """Which items to label or re-label next, and when to stop.

    Parameters
    ----------
    features : array of shape (n_items, dim)
        Embeddings of the pool; item ids are row indices. May be memory-mapped.
    random_state : int, Generator or None, default None
        Seeds the folds, the held-back set and the clustering: a seed reproduces every
        suggestion for the same answers.
    allow_relabel : bool, default True
        Whether ``suggest`` may ask for another answer on an item already labeled.
    classes : sequence, optional
        The label set (default: the labels taught so far, sorted).
    item_costs : float or array of shape (n_items,), default 1.0
        Cost of one answer on each item (e.g. reading time).
    annotator_costs : mapping annotator_id -> float, optional
        Multiplies the item cost for answers of that annotator (default 1.0). Re-labels are
        priced with the mean annotator cost.
    annotator_accuracy : float in (0.5, 1), default 0.85
        Prior accuracy of an annotator, worth 10 answers. Without several annotators on one
        item, one accuracy shared by all is averaged over its posterior jointly with the
        model's temperature (:func:`calibrate_noisy`: the out-of-fold model never saw an
        item's answers, so its confident disagreements measure the noise); with overlapping
        annotators, Dawid-Skene's per-annotator accuracies.
    C : float, default 10.0
        Inverse L2 strength of the logistic regression (10: unit-norm sentence embeddings
        need light regularization; the benchmark's evaluation model uses the same).
    n_folds : int, default 3
        Folds of the out-of-fold probabilities and the model-strength signal.
    holdout_size : int, default 1000
        Unlabeled items held back (not excluded from suggestions) to measure how much the
        model's predictions still change.
    duplicate_cosine : float, default 0.95
        Two items at least this cosine-similar (embeddings centred on the pool mean) are
        never in one batch.
    horizon, min_gain, min_agreement : int, float, float; default 100, 0.01, 0.98
        The stopping rule (:class:`StopEstimate`).
    backend : Backend, "local" or None
        Runs the passes over the pool (probabilities, typicality, distances).
    chunk_size : int, optional
        Rows per chunk; suggestions do not depend on it nor on the backend.

    Attributes
    ----------
    labels_ : Series
        Consensus label of each taught item (index: item id), from every answer.
    stop_estimate_ : StopEstimate
        ``should_stop``, ``expected_gain``, ``agreement`` and a message.
    weakness_ : float
        Share of held-back predictions that change when a fold of the labels is left out
        (1.0 before a model exists): the signal that moves the policy from diversity to
        uncertainty. With more than 10 classes, while the model does no better than the
        nearest taught item on the left-out labels, batches cover the pool's clusters instead
        (TypiClust-like; the reasons say so).
    annotator_accuracy_ : Series
        Estimated accuracy per annotator.
    classes_ : ndarray

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = np.r_[rng.normal(0, 1, (50, 4)), rng.normal(4, 1, (50, 4))]
    >>> al = ActiveLearner(X, random_state=0)
    >>> first = al.suggest(4)
    >>> list(first.columns)
    ['item_id', 'action', 'reason', 'score']
    >>> al = al.teach(first.item_id, (first.item_id >= 50).astype(int))
    >>> len(al.suggest(5)), sorted(al.labels_.unique().tolist())
    (5, [0, 1])
    """

    def __init__(
        self,
        features: Any,
        *,
        random_state: Any = None,
        allow_relabel: bool = True,
        classes: Any = None,
        item_costs: Any = None,
        annotator_costs: Any = None,
        annotator_accuracy: float = 0.85,
        C: float = 10.0,
        n_folds: int = 3,
        holdout_size: int = 1000,
        duplicate_cosine: float = 0.95,
        horizon: int = 100,
        min_gain: float = 0.01,
        min_agreement: float = 0.98,
        backend: Backend | str | None = None,
        chunk_size: int | None = None,
    ) -> None:
        self._X = check_features(features)
        n = self._X.shape[0]
        if n < 2:
            raise ValidationError("features", f"has {n} row(s)", "pass a pool of at least 2 items")
        if not isinstance(allow_relabel, bool):
            raise ValidationError("allow_relabel", f"got {allow_relabel!r}", "pass True or False")
        self.random_state = random_state
        self.allow_relabel = allow_relabel
        self.classes = None if classes is None else list(classes)
        self._item_costs = check_costs(item_costs, n)
        self._annotator_costs = dict(annotator_costs or {})
        for key, value in self._annotator_costs.items():
            check_number(f"annotator_costs[{key!r}]", value, low=0.0, low_open=True)
        self.annotator_accuracy = check_number(
            "annotator_accuracy",
            annotator_accuracy,
            low=0.5,
            high=1.0,
            low_open=True,
            high_open=True,
        )
        self.C = check_number("C", C, low=0.0, low_open=True)
        self.n_folds = int(check_number("n_folds", n_folds, low=2, integer=True))
        self.duplicate_cosine = check_number("duplicate_cosine", duplicate_cosine, low=-1, high=1)
        self.backend = backend
        self.chunk_size = chunk_size
        rng = check_random_state(random_state)
        self._seed = int(rng.integers(2**63 - 1))
        size = int(check_number("holdout_size", holdout_size, low=1, integer=True))
        self._holdout = np.sort(rng.choice(n, size=min(size, n), replace=False))
        self._stop = StopTracker(
            horizon=int(check_number("horizon", horizon, low=1, integer=True)),
            min_gain=check_number("min_gain", min_gain, low=0.0),
            min_agreement=check_number("min_agreement", min_agreement, low=-1.0, high=1.0),
        )
        self._items: list[np.ndarray] = []
        self._labels: list[np.ndarray] = []
        self._annotators: list[np.ndarray] = []
        self._fit: Refit | None = None
        self._typicality: np.ndarray | None = None
        self._mean: np.ndarray | None = None
        self._rms: float | None = None
        self._last_fit: Refit | None = None
        self._n_suggest = 0

    # ------------------------------------------------------------------ answers in
    def teach(self, item_ids: Any, labels: Any, annotator_ids: Any = None) -> ActiveLearner:
        """Record answers: ``labels[k]`` for item ``item_ids[k]`` by ``annotator_ids[k]``.

        An item may be taught again (a re-label, or another annotator's answer); its label is
        the consensus of all its answers. ``annotator_ids`` None means one annotator.
        Returns ``self``.
        """
        items, labs, annots = check_teach(
            item_ids, labels, annotator_ids, self._X.shape[0], self.classes, _DEFAULT_ANNOTATOR
        )
        self._items.append(items)
        self._labels.append(labs)
        self._annotators.append(annots)
        self._fit = None
        return self

    @property
    def n_answers_(self) -> int:
        return int(sum(a.size for a in self._items))

    def _answers(self) -> pd.DataFrame:
        if not self._items:
            return pd.DataFrame({"item_id": [], "annotator_id": [], "label": []})
        return pd.DataFrame(
            {
                "item_id": np.concatenate(self._items),
                "annotator_id": np.concatenate(self._annotators),
                "label": np.concatenate(self._labels),
            }
        )

    # ------------------------------------------------------------------ state
    def _refit(self) -> Refit:
        if self._fit is not None:
            return self._fit
        prev = self._last_fit
        answers = self._answers()
        rng = np.random.default_rng([self._seed, self.n_answers_])
        state = consensus(
            answers,
            classes=self.classes,
            prior_accuracy=self.annotator_accuracy,
            tie_probs=None if prev is None or prev.model is None else _tie_probs(prev),
            prev_classes=None if prev is None else prev.classes,
            pair_accuracy=pair_accuracy,
        )
        fit = Refit(state=state, classes=state.classes)
        k = state.classes.size
        items, y = state.items, state.codes
        if np.unique(y).size >= 2:
            warm = None
            if prev is not None and np.array_equal(prev.classes, state.classes):
                warm = prev.model
            fit.model = fit_linear(self._X[items], y, k, C=self.C, warm=warm)
            fit.pool_probs = pool_proba(
                self._X, fit.model, backend=self.backend, chunk_size=self.chunk_size
            )
            self._folds(fit, rng)
            self._stop.update(
                self.n_answers_, _tempered(fit.pool_probs[self._holdout], fit.temperature)
            )
        self._fit = fit
        self._last_fit = fit
        return fit

    def _folds(self, fit: Refit, rng: np.random.Generator) -> None:
        """Out-of-fold probabilities of the true class (calibrated through the annotators'
        noise), the annotators' accuracy, and the weakness signal."""
        state = fit.state
        items, y = state.items, state.codes
        k = fit.classes.size
        n_folds = min(self.n_folds, items.size)
        folds = fold_ids(y, n_folds, rng)
        oof = np.zeros((items.size, k))
        oof_pred = np.full(items.size, -1, dtype=np.int64)  # -1: its fold was not left out
        full_pred = np.argmax(fit.pool_probs[self._holdout], axis=1)
        changed = []
        for f in range(n_folds):
            train = folds != f
            if not train.any() or train.all():
                continue
            model: LinearModel = fit_linear(
                self._X[items[train]], y[train], k, C=self.C, warm=fit.model
            )
            oof[~train] = model.logits(self._X[items[~train]])
            oof_pred[~train] = np.argmax(oof[~train], axis=1)
            pred = np.argmax(model.proba(self._X[self._holdout]), axis=1)
            changed.append(float(np.mean(pred != full_pred)))
        fit.weakness = float(np.mean(changed)) if changed else 1.0
        fit.edge = neighbour_edge(
            self._X, items, y, folds, oof_pred, center=self._center(), rng=rng,
            backend=self.backend, chunk_size=self.chunk_size,
        )  # fmt: skip
        if state.overlap:  # Dawid-Skene measured each annotator: calibrate through that
            ll = consensus_loglik(state.answer_item, state.answer_label, state.answer_q,
                                  items.size, k)  # fmt: skip
            fit.oof_probs, fit.temperature = calibrate(oof, y, ll)
            return
        fit.oof_probs, fit.temperature, q = calibrate_noisy(
            oof, y, state.answer_item, state.answer_label,
            prior=self.annotator_accuracy, strength=PRIOR_PAIRS,
        )  # fmt: skip
        state.accuracy = pd.Series(q, index=state.accuracy.index, name="accuracy")
        state.answer_q = np.full(state.answer_item.size, q)

    # ------------------------------------------------------------------ results
    @property
    def classes_(self) -> np.ndarray:
        return self._refit().classes

    @property
    def labels_(self) -> pd.Series:
        state = self._refit().state
        return pd.Series(
            state.classes[state.codes], index=pd.Index(state.items, name="item_id"), name="label"
        )

    @property
    def weakness_(self) -> float:
        return self._refit().weakness

    @property
    def annotator_accuracy_(self) -> pd.Series:
        return self._refit().state.accuracy

    @property
    def stop_estimate_(self) -> StopEstimate:
        self._refit()
        return self._stop.estimate(self.n_answers_)

    # ------------------------------------------------------------------ suggestions
    def typicality(self) -> np.ndarray:
        """Typicality of every pool item (computed once, :func:`typicality_scores`)."""
        if self._typicality is None:
            from ._diversity import typicality_scores

            self._typicality = typicality_scores(
                self._X, backend=self.backend, chunk_size=self.chunk_size
            )
        return self._typicality

    def _moments(self) -> None:
        """The pool's mean row and RMS row norm in one pass of fixed 65,536-row blocks (float64
        per block, never a float64 copy of the pool; the same for any ``chunk_size``)."""
        n, step = self._X.shape[0], 65_536
        total = np.zeros(self._X.shape[1])
        sq = 0.0
        for s in range(0, n, step):
            block = np.asarray(self._X[s : s + step], dtype=np.float64)
            total += block.sum(axis=0)
            sq += float(np.einsum("ij,ij->", block, block))
        self._mean = total / n
        self._rms = max(float(np.sqrt(sq / n)), 1e-12)

    def _center(self) -> np.ndarray:
        """Mean row of the pool: near-duplicates are judged on rows centred on it."""
        if self._mean is None:
            self._moments()
        assert self._mean is not None
        return self._mean

    def _rms_norm(self) -> float:
        """Root mean square row norm of the pool (1 for unit-norm sentence embeddings): puts
        the embeddings on the scale of the class probabilities they are joined with."""
        if self._rms is None:
            self._moments()
        assert self._rms is not None
        return self._rms

    def suggest(self, n: int) -> pd.DataFrame:
        """The next ``n`` questions: a DataFrame ``item_id, action, reason, score``.

        ``action`` is ``"label"`` (an item never answered) or ``"relabel"`` (another answer on a
        doubtful labeled item); no item appears twice. ``score`` in [0, 1], higher = more
        worth asking: the pick's combined rank for new items, the expected gain in the
        probability that its label is right for re-labels.
        """
        fit = self._refit()
        n_items = self._X.shape[0]
        taught = fit.state.items
        unlabeled = np.setdiff1d(np.arange(n_items), taught)
        can_relabel = self.allow_relabel and fit.model is not None
        available = unlabeled.size + (taught.size if can_relabel else 0)
        if not isinstance(n, int | np.integer) or isinstance(n, bool) or n < 1:
            raise ValidationError("n", f"got {n!r}, expected an int >= 1", "e.g. suggest(10)")
        if n > available:
            raise ValidationError(
                "n",
                f"asks for {int(n)} suggestions but only {available} items can be asked about",
                f"pass n <= {available}" + relabel_hint(self.allow_relabel, fit.model is not None),
            )
        rng = np.random.default_rng([self._seed, self.n_answers_, self._n_suggest])
        self._n_suggest += 1
        rows: list[pd.DataFrame] = []
        n_relabel = 0
        if can_relabel and taught.size:
            rel = self._relabels(fit, int(n), max(0, int(n) - unlabeled.size))
            rows.append(rel)
            n_relabel = len(rel)
        m = int(n) - n_relabel
        if m:
            rows.append(self._new_items(fit, unlabeled, m, rng))
        out = pd.concat(rows, ignore_index=True)
        return out[["item_id", "action", "reason", "score"]]

    def _mean_annotator_cost(self) -> float:
        return (
            float(np.mean(list(self._annotator_costs.values()))) if self._annotator_costs else 1.0
        )

    def _relabels(self, fit: Refit, n: int, must: int) -> pd.DataFrame:
        """Re-labels among the ``n`` questions, in one currency with new items: the expected
        gain in the probability that the item's current answer is right, per unit of cost
        (:mod:`._relabel`), times the rate at which repeated answers so far changed labels
        against the rate the model predicted (:func:`repeat_yield`, ``YIELD_PRIOR``
        pseudo-changes at the predicted rate). The ``r``-th best re-label is taken when it
        beats the ``(n - r)``-th best new item (``must`` at least, when too few are new)."""
        state = fit.state
        k = fit.classes.size
        q_new = float(state.accuracy.mean())
        ll = consensus_loglik(
            state.answer_item, state.answer_label, state.answer_q, state.items.size, k
        )
        observed, expected = repeat_yield(
            state.answer_item, state.answer_label, state.answer_q, fit.oof_probs
        )
        rate = (YIELD_PRIOR + observed) / (YIELD_PRIOR + expected)
        gain = rate * relabel_gain(ll, fit.oof_probs, q_new)
        a_cost = self._mean_annotator_cost()
        value = gain / (self._item_costs[state.items] * a_cost)
        unl = np.setdiff1d(np.arange(self._X.shape[0]), state.items)
        bar = np.full(n, -np.inf)  # bar[j]: the (j+1)-th best new item's gain per cost
        if unl.size:
            new_value = new_item_gain(fit.pool_probs[unl], fit.temperature, q_new) / (
                self._item_costs[unl] * a_cost
            )
            top = -np.sort(-new_value)[:n]
            bar[: top.size] = top
        order = np.lexsort((state.items, -value))[:n]
        wins = (value[order] > bar[n - 1 - np.arange(order.size)]) & (gain[order] > GAIN_TOL)
        worth = order[: max(int(wins.sum()), must)]
        counts = np.bincount(state.answer_item, minlength=state.items.size)
        p_label = fit.oof_probs[np.arange(state.items.size), state.codes]
        track = repeat_track(observed, expected, rate)
        reasons = [
            relabel_reason(fit.classes[state.codes[i]], counts[i], p_label[i], gain[i], track)
            for i in worth
        ]
        return pd.DataFrame(
            {
                "item_id": state.items[worth].astype(np.int64),
                "action": "relabel",
                "reason": reasons,
                "score": np.clip(gain[worth], 0.0, 1.0),
            }
        )

    def _cover(
        self,
        fit: Refit,
        m: int,
        rng: np.random.Generator,
        why: str | None = None,
        partial: bool = False,
    ) -> pd.DataFrame | None:
        """A coverage batch (:func:`pick_cover`), or None when it finds fewer than ``m`` picks
        (uncovered clusters used up, or their best items near-duplicates of the batch) unless
        ``partial`` (then None only when it finds none); ``why`` leads each reason (default:
        the many-classes switch's)."""
        pick = pick_cover(
            self._X, fit.state.items, m, costs=self._item_costs,
            duplicate_cosine=self.duplicate_cosine, center=self._center(), rng=rng,
            backend=self.backend, chunk_size=self.chunk_size,
        )  # fmt: skip
        if pick.index.size < (1 if partial else m):
            return None
        why = why or cover_switch_reason(fit.classes.size, *fit.edge)
        return pd.DataFrame(
            {
                "item_id": pick.index,
                "action": "label",
                "reason": [cover_item_reason(why, s, pick.n_candidates) for s in pick.cluster_size],
                "score": pick.score,
            }
        )

    def _new_items(
        self,
        fit: Refit,
        unlabeled: np.ndarray,
        m: int,
        rng: np.random.Generator,
        cover: bool = True,
    ) -> pd.DataFrame:
        k = fit.classes.size
        b, c = fit.edge
        taught_per_class = np.bincount(fit.state.codes, minlength=k)
        unseen = fit.classes[taught_per_class == 0]
        if cover and fit.model is not None and unseen.size:
            found = self._cover(fit, m, rng, why=unseen_reason(unseen, k), partial=True)
            if found is not None:  # too few uncovered clusters: the usual policy fills up
                if len(found) == m:
                    return found
                rest = np.setdiff1d(unlabeled, found["item_id"].to_numpy())
                fill = self._new_items(fit, rest, m - len(found), rng, cover=False)
                return pd.concat([found, fill], ignore_index=True)
        if cover and fit.model is not None and k > COVER_MIN_CLASSES and b <= c:
            found = self._cover(fit, m, rng)
            if found is not None:
                return found
        if fit.model is None:
            value = 1.0 / self._item_costs[unlabeled]
            predicted = counts = None
        else:
            unc = compute_uncertainty(
                fit.pool_probs[unlabeled],
                "margin",
                backend=self.backend,
                chunk_size=self.chunk_size,
            )
            value = unc / self._item_costs[unlabeled]
            predicted = np.argmax(fit.pool_probs, axis=1)
            counts = taught_per_class
        pick = pick_new(
            self._X,
            unlabeled,
            m,
            value=value,
            typicality=self.typicality(),
            weakness=fit.weakness,
            predicted=predicted,
            class_counts=counts,
            duplicate_cosine=self.duplicate_cosine,
            center=self._center(),
            rng=rng,
            backend=self.backend,
            chunk_size=self.chunk_size,
            probs=None if fit.model is None else fit.pool_probs,
            scale=self._rms_norm(),
            labeled=(fit.state.items, fit.state.codes),
            costs=self._item_costs,
        )
        varied_costs = np.ptp(self._item_costs[unlabeled]) > 0
        if fit.model is None:
            why = cold_start_reason(varied_costs)
        else:
            why = net_reason(fit.weakness, pick.n_candidates, varied_costs)
        return pd.DataFrame(
            {
                "item_id": pick.index,
                "action": "label",
                "reason": [where(why, int(s), pick.n_candidates) for s in pick.cluster_size],
                "score": np.clip(pick.score, 0.0, 1.0),
            }
        )
