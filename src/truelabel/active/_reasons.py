"""What ``ActiveLearner.suggest`` tells the user: the reason of each pick, by the rule that
made it (coverage, the uncertainty net, the cold start, a re-label), and the fix an
oversized request is given. Text only: the numbers come from the policy."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._select import COVER_MIN_CLASSES

__all__ = [
    "cold_start_reason",
    "cover_item_reason",
    "cover_switch_reason",
    "net_reason",
    "relabel_hint",
    "relabel_reason",
    "repeat_track",
    "show",
    "unseen_reason",
    "where",
]


def show(label: Any) -> str:
    """A label as the user wrote it (``0``, ``'spam'``), not numpy's ``np.int64(0)``."""
    return repr(label.item() if isinstance(label, np.generic) else label)


def where(why: str, cluster_size: int, n_candidates: int) -> str:
    """A new item's reason: why the policy picks as it does, and where this pick came from."""
    if cluster_size == 0:
        return (
            f"{why}; picked beyond the {n_candidates} candidates (the class caps and the "
            "near-duplicate bound used them up): the next most valuable item"
        )
    return f"{why}; from a cluster of {cluster_size} candidate{'' if cluster_size == 1 else 's'}"


def relabel_hint(allow_relabel: bool, has_model: bool) -> str:
    """How ``suggest`` could ask about more items: re-labels, when they are not possible yet
    (they need a model, and a model needs labels of two classes)."""
    if allow_relabel and has_model:
        return ""
    if allow_relabel:
        return " (labeled items can be asked again once labels of two classes are taught)"
    return " or allow_relabel=True" + (
        "" if has_model else " once labels of two classes are taught"
    )


def cold_start_reason(varied_costs: bool) -> str:
    why = "cold start (no model yet): a typical item of a large unlabeled cluster"
    return why + (" (typicality per unit of cost)" if varied_costs else "")


def net_reason(weakness: float, n_candidates: int, varied_costs: bool) -> str:
    """Why a batch comes from the uncertainty net, weighed by the model's weakness."""
    why = (
        f"leaving out a fold of the labels changes {weakness:.0%} of the model's "
        f"held-back predictions, so picks weigh typicality {weakness:.2f} and "
        f"uncertainty {1 - weakness:.2f} among the {n_candidates} most uncertain items"
    )
    return why + (" (each per unit of cost)" if varied_costs else "")


def cover_switch_reason(n_classes: int, b: int, c: int) -> str:
    """Why a batch covers the pool: many classes, and the model no better than the nearest
    taught item on left-out labels (``b`` / ``c``: :func:`._select.neighbour_edge`)."""
    return (
        f"coverage: with {n_classes} classes (more than {COVER_MIN_CLASSES}), and on "
        "left-out labels the model doing no better than the nearest taught item (right "
        f"where it is wrong {b} times, the reverse {c} times), picks cover the pool's "
        "clusters"
    )


def unseen_reason(unseen: np.ndarray, n_classes: int) -> str:
    """Why a batch covers the pool: classes the learner knows have no label."""
    names = ", ".join(show(x) for x in unseen[:5]) + (", ..." if unseen.size > 5 else "")
    return (
        f"coverage: {unseen.size} of the {n_classes} classes ({names}) "
        f"{'has' if unseen.size == 1 else 'have'} no label yet, and the model never "
        "predicts a class it has not seen, so picks cover the pool's clusters"
    )


def cover_item_reason(why: str, cluster_size: int, n_clustered: int) -> str:
    """A coverage pick's reason: ``why`` and the uncovered cluster it stands for."""
    return (
        f"{why}; the most typical item of a cluster of {cluster_size} of the "
        f"{n_clustered} pool items clustered, none of them labeled "
        "(such clusters taken by size x squared distance to the nearest labeled "
        "item, largest first)"
    )


def repeat_track(observed: float, expected: float, rate: float) -> str:
    """How the repeats so far scaled the re-labels' gains (empty before any is expected)."""
    if expected <= 0:
        return ""
    return (
        f" (repeated answers so far disagreed {observed:.0f} times where the model "
        f"expected {expected:.1f}: its estimate scaled by {rate:.2f})"
    )


def relabel_reason(label: Any, n_answers: int, p_label: float, gain: float, track: str) -> str:
    """A re-label's reason: its doubtful label and what one more answer is expected to add."""
    return (
        f"label {show(label)} doubtful: {n_answers} answer(s), the model "
        f"(not trained on it) gives it {p_label:.2f}; one more answer is expected to "
        f"raise P(label right) by {gain:.2f}{track}, more than a new item's answer would"
    )
