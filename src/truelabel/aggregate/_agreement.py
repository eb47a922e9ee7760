"""Inter-annotator agreement: Fleiss' kappa, Krippendorff's alpha (nominal), pairwise Cohen's
kappa. All from the encoded table, vectorized (no loop over items or annotator pairs)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..exceptions import ValidationError
from ._base import check_positive_int
from ._table import as_annotations

__all__ = ["cohen_kappa_pairwise", "fleiss_kappa", "krippendorff_alpha"]


def _votes(annotations: Any) -> np.ndarray:
    table = as_annotations(annotations)
    return table.vote_counts()


def fleiss_kappa(annotations: Any) -> float:
    """Fleiss' kappa over items with at least two answers.

    With ``n_i`` answers on item ``i`` and ``n_ik`` of them for class ``k``:
    ``P_i = (sum_k n_ik^2 - n_i) / (n_i (n_i - 1))``, ``P_bar`` their mean, ``p_k`` the share of
    all answers in class ``k`` and ``P_e = sum_k p_k^2``; kappa = ``(P_bar - P_e) / (1 - P_e)``.
    With the same number of answers on every item this is Fleiss (1971); with unequal numbers
    each item's ``P_i`` uses its own ``n_i``.

    Parameters
    ----------
    annotations : DataFrame or Annotations

    Returns
    -------
    float
        1 = perfect agreement, 0 = chance level, < 0 = below chance; NaN when all answers
        are the same class.
    """
    votes = _votes(annotations)
    n = votes.sum(axis=1)
    keep = n >= 2
    if not keep.any():
        raise ValidationError(
            "annotations", "no item has two or more answers", "agreement needs repeated labels"
        )
    v, m = votes[keep], n[keep]
    p_i = ((v**2).sum(axis=1) - m) / (m * (m - 1))
    p_k = v.sum(axis=0) / v.sum()
    p_e = float((p_k**2).sum())
    if p_e >= 1.0:
        return float("nan")
    return float((p_i.mean() - p_e) / (1.0 - p_e))


def krippendorff_alpha(annotations: Any) -> float:
    """Krippendorff's alpha for nominal data (any number of answers per item, missing allowed).

    Coincidence matrix ``o[c, k] = sum_u (n_uc n_uk - [c = k] n_uc) / (m_u - 1)`` over items
    ``u`` with ``m_u >= 2`` answers; ``n_c = sum_k o[c, k]``, ``n = sum_c n_c``;
    alpha = ``1 - (n - 1) * sum_{c != k} o[c, k] / sum_{c != k} n_c n_k``
    (Krippendorff 2011, "Computing Krippendorff's Alpha-Reliability").
    """
    votes = _votes(annotations)
    m = votes.sum(axis=1)
    keep = m >= 2
    if not keep.any():
        raise ValidationError(
            "annotations", "no item has two or more answers", "agreement needs repeated labels"
        )
    v, mu = votes[keep], m[keep]
    scaled = v / (mu - 1.0)[:, None]
    o = scaled.T @ v - np.diag(scaled.sum(axis=0))
    n_c = o.sum(axis=1)
    n = n_c.sum()
    off = ~np.eye(len(n_c), dtype=bool)
    expected = (np.outer(n_c, n_c)[off]).sum()
    if expected == 0:
        return float("nan")
    return float(1.0 - (n - 1.0) * o[off].sum() / expected)


def cohen_kappa_pairwise(annotations: Any, *, min_common: int = 2) -> pd.DataFrame:
    """Cohen's kappa of every pair of annotators that share at least ``min_common`` items.

    For a pair, on the items both answered: observed agreement ``p_o`` (share of items with the
    same label), chance agreement ``p_e = sum_k a_k b_k`` from each annotator's own label
    shares on those items, kappa = ``(p_o - p_e) / (1 - p_e)`` (NaN when ``p_e = 1``). Computed
    for all pairs at once from the sparse co-occurrence matrix ``X^T X`` of the one-hot answers.
    An annotator's repeated answers on one item count once per answer pair.

    Returns
    -------
    DataFrame
        Columns ``annotator_a, annotator_b, n_common, agreement, kappa``, one row per pair
        (``a < b`` in sorted annotator order).
    """
    min_common = check_positive_int("min_common", min_common)
    table = as_annotations(annotations)
    k = table.n_classes
    x = table.counts.tocsc()
    co = (x.T @ x).tocoo()
    a, kk = np.divmod(co.row, k)
    b, ll = np.divmod(co.col, k)
    keep = a < b
    a, b, kk, ll, v = a[keep], b[keep], kk[keep], ll[keep], co.data[keep]
    na = table.n_annotators
    pair = a.astype(np.int64) * na + b
    pairs, inv = np.unique(pair, return_inverse=True)
    n_pairs = len(pairs)
    n = np.bincount(inv, weights=v, minlength=n_pairs)
    agree = np.bincount(inv, weights=v * (kk == ll), minlength=n_pairs)
    row = np.bincount(inv * k + kk, weights=v, minlength=n_pairs * k).reshape(n_pairs, k)
    col = np.bincount(inv * k + ll, weights=v, minlength=n_pairs * k).reshape(n_pairs, k)
    p_o = agree / n
    p_e = (row * col).sum(axis=1) / n**2
    with np.errstate(invalid="ignore", divide="ignore"):
        kappa = np.where(p_e < 1.0, (p_o - p_e) / (1.0 - p_e), np.nan)
    pa, pb = np.divmod(pairs, na)
    out = pd.DataFrame(
        {
            "annotator_a": table.annotators[pa],
            "annotator_b": table.annotators[pb],
            "n_common": n.astype(np.int64),
            "agreement": p_o,
            "kappa": kappa,
        }
    )
    return out[out["n_common"] >= min_common].reset_index(drop=True)
