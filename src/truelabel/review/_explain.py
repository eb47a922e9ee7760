"""Why an item was flagged, in words a labeler understands (no database, no arrays: a few
facts about one item in, sentences out)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

__all__ = ["explain_item"]


def _pct(p: float) -> str:
    if p < 0.005:
        return "under 1%"
    if p > 0.995 and p < 1.0:
        return "over 99%"
    return f"{round(100 * p)}%"


def explain_item(
    *,
    label: str | None,
    probabilities: Mapping[str, float] | None = None,
    neighbor_labels: Sequence[str | None] = (),
    duplicate_labels: Sequence[str | None] = (),
) -> list[str]:
    """Sentences explaining an item's flags from what a reviewer can check.

    Parameters
    ----------
    label : str or None
        The item's current label.
    probabilities : mapping of class name -> probability, optional
        The model's (out-of-fold) probabilities for the item.
    neighbor_labels : sequence of str or None
        Current labels of its nearest neighbours, nearest first (None: unlabelled).
    duplicate_labels : sequence of str or None
        Current labels of the other items of its near-duplicate set.

    Returns
    -------
    list of str
        The model's view, the neighbours' majority (ties: the label of the nearer
        neighbour), and the near-duplicates' labels; each sentence only when its facts
        exist.

    Examples
    --------
    >>> explain_item(label="ham", probabilities={"ham": 0.05, "spam": 0.93, "x": 0.02},
    ...              neighbor_labels=["spam", "ham", "spam", "spam", "spam"])
    ["The model is 93% sure this is 'spam'; it gives the label 'ham' 5%.", "4 of its 5 nearest neighbours are labeled 'spam'."]
    """
    out: list[str] = []
    if probabilities:
        best = max(probabilities, key=lambda c: (probabilities[c], -list(probabilities).index(c)))
        p = float(probabilities[best])
        if label is None:
            out.append(f"The model is {_pct(p)} sure this is {best!r}; it has no label yet.")
        elif best == label:
            out.append(f"The model agrees with the label {label!r} ({_pct(p)} sure).")
        else:
            own = float(probabilities.get(label, 0.0))
            out.append(
                f"The model is {_pct(p)} sure this is {best!r}; it gives the label "
                f"{label!r} {_pct(own)}."
            )
    labeled = [x for x in neighbor_labels if x is not None]
    if labeled:
        counts = Counter(labeled)
        top = max(counts, key=lambda c: (counts[c], -labeled.index(c)))
        n, total = counts[top], len(neighbor_labels)
        if top == label:
            out.append(f"{n} of its {total} nearest neighbours share its label {label!r}.")
        else:
            out.append(f"{n} of its {total} nearest neighbours are labeled {top!r}.")
    if duplicate_labels:
        m = len(duplicate_labels)
        others = "item" if m == 1 else "items"
        differ = sorted({str(x) for x in duplicate_labels if x != label})
        n_differ = sum(1 for x in duplicate_labels if x != label)
        if not differ:
            out.append(f"It is a near-duplicate of {m} other {others}, all labeled the same.")
        else:
            names = ", ".join(repr(x) for x in differ)
            out.append(
                f"It is a near-duplicate of {m} other {others}; {n_differ} of them "
                f"{'is' if n_differ == 1 else 'are'} labeled differently ({names})."
            )
    return out
