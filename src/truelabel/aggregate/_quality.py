"""Annotator quality in [0, 1] with a confidence interval, and spammer detection."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..exceptions import ValidationError
from ._base import Aggregator
from ._table import Annotations, as_annotations

__all__ = ["annotator_quality", "wilson_interval"]


def wilson_interval(
    successes: np.ndarray, n: np.ndarray, confidence: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of a proportion ``successes / n`` (``n = 0`` gives [0, 1]).

    >>> lo, hi = wilson_interval(np.array([8.0]), np.array([10.0]))
    >>> round(float(lo[0]), 4), round(float(hi[0]), 4)
    (0.4902, 0.9433)
    """
    from scipy.stats import norm

    z = float(norm.ppf(0.5 + confidence / 2.0))
    n = np.asarray(n, dtype=float)
    safe = np.maximum(n, 1e-12)
    p = np.asarray(successes, dtype=float) / safe
    denom = 1.0 + z * z / safe
    center = (p + z * z / (2.0 * safe)) / denom
    half = z * np.sqrt(p * (1.0 - p) / safe + z * z / (4.0 * safe * safe)) / denom
    lo = np.where(n > 0, np.clip(center - half, 0.0, 1.0), 0.0)
    hi = np.where(n > 0, np.clip(center + half, 0.0, 1.0), 1.0)
    return lo, hi


def _consensus_posteriors(table: Annotations, consensus: Any) -> np.ndarray:
    if consensus is None:
        from ._dawid_skene import DawidSkene

        consensus = DawidSkene().fit(table)
    if isinstance(consensus, Aggregator):
        consensus = consensus.probas_
    if not isinstance(consensus, pd.DataFrame):
        raise ValidationError(
            "consensus",
            f"got {type(consensus).__name__}",
            "pass a fitted aggregator, its probas_ DataFrame, or None (Dawid-Skene)",
        )
    probas = consensus.reindex(index=table.items, columns=table.classes)
    if probas.isna().to_numpy().any():
        raise ValidationError(
            "consensus",
            "does not cover every item and class of the annotations",
            "pass the probas_ of an aggregator fitted on the same annotations",
        )
    return probas.to_numpy(dtype=float)


def annotator_quality(
    annotations: Any,
    consensus: Any = None,
    *,
    gold: Any = None,
    confidence: float = 0.95,
    spammer_kappa: float = 0.2,
) -> pd.DataFrame:
    """Quality of each annotator in [0, 1] with a Wilson confidence interval, and spammers.

    ``quality`` is the annotator's share of correct answers. It is measured on gold items
    when the annotator answered any (``source = "gold"``: right / answered gold items);
    otherwise against the consensus (``source = "consensus"``: the expected share of its
    answers that match the consensus posterior, ``sum P(consensus = its label) / answers``).
    Agreement with the consensus includes the annotator's own vote in that consensus, so it
    is optimistic for annotators who answered items few others did. The interval is the
    Wilson score interval of that proportion with the answers counted as trials.

    ``kappa`` compares the agreement with ``chance``: the agreement an annotator would reach
    by answering at random with its own label frequencies (``sum_l q_l P(consensus = l)`` over
    its items). An annotator with ``kappa < spammer_kappa`` is flagged ``is_spammer``: its
    answers carry little information about the truth (an "always yes" clicker can agree 88%
    of the time on a set with 88% "yes", and still have kappa 0).

    Parameters
    ----------
    annotations : DataFrame or Annotations
    consensus : fitted Aggregator, DataFrame (items x classes) or None
        None fits :class:`DawidSkene` with default settings.
    gold : Series item_id -> label, optional
        Overrides the gold labels of ``annotations``.
    confidence : float in (0, 1), default 0.95
    spammer_kappa : float, default 0.2

    Returns
    -------
    DataFrame
        Indexed by annotator id: ``n_answers, quality, ci_low, ci_high, source, chance, kappa,
        is_spammer``.
    """
    if not 0 < confidence < 1:
        raise ValidationError("confidence", f"got {confidence!r}", "pass a number in (0, 1)")
    if not isinstance(spammer_kappa, int | float) or not -1 <= spammer_kappa <= 1:
        raise ValidationError("spammer_kappa", f"got {spammer_kappa!r}", "pass a kappa in [-1, 1]")
    table = as_annotations(annotations, gold)
    post = _consensus_posteriors(table, consensus)
    j, item, lab = table.annotator_codes, table.item_codes, table.label_codes
    na = table.n_annotators
    n = np.bincount(j, minlength=na).astype(float)
    soft = np.bincount(j, weights=post[item, lab], minlength=na)
    # chance: answers at random with the annotator's own label shares, on its own items
    k = table.n_classes
    q = (
        np.bincount(j.astype(np.int64) * k + lab, minlength=na * k).reshape(na, k)
        / np.maximum(n, 1)[:, None]
    )
    mass = np.stack([np.bincount(j, weights=post[item, c], minlength=na) for c in range(k)], axis=1)
    chance = (q * mass).sum(axis=1) / np.maximum(n, 1)
    agree_c = soft / np.maximum(n, 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        kappa = np.where(chance < 1, (agree_c - chance) / (1 - chance), np.nan)
    gold_codes = table.gold_codes[item]
    on_gold = gold_codes >= 0
    n_gold = np.bincount(j[on_gold], minlength=na).astype(float)
    right_gold = np.bincount(j[on_gold], weights=lab[on_gold] == gold_codes[on_gold], minlength=na)
    use_gold = n_gold > 0
    succ = np.where(use_gold, right_gold, soft)
    trials = np.where(use_gold, n_gold, n)
    lo, hi = wilson_interval(succ, trials, confidence)
    return pd.DataFrame(
        {
            "n_answers": n.astype(np.int64),
            "quality": succ / np.maximum(trials, 1),
            "ci_low": lo,
            "ci_high": hi,
            "source": np.where(use_gold, "gold", "consensus"),
            "chance": chance,
            "kappa": kappa,
            "is_spammer": np.nan_to_num(kappa, nan=0.0) < spammer_kappa,
        },
        index=table.annotators.rename(table.columns[1]),
    )
