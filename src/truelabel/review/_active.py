"""The active-learning review source: items a person should label, or label again, next.

It takes the suggestions of an active learner (``truelabel.ActiveLearner.suggest``: a frame
``item_id, action, reason, score``) and knows nothing about how they were chosen, so the
review package stays free of the learner (and the queue free of both).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..exceptions import ValidationError

__all__ = ["ActiveLearningSource"]

_COLUMNS = ("item_id", "action", "reason", "score")
_WORDS = {
    "label": "label this item next (not labeled yet)",
    "relabel": "label this item again (its label is doubtful)",
}


class ActiveLearningSource:
    """Suggestions of an active learner as review candidates: one row per suggestion.

    ``priority`` = ``weight`` x ``score`` (the learner's score is in [0, 1], higher = more
    worth asking); no suggested label (the reviewer picks the class: suggesting the model's
    guess would anchor the very answers the learner is asking for).

    Parameters
    ----------
    suggestions : DataFrame
        ``item_id, action, reason, score`` (``ActiveLearner.suggest(n)``); ``item_id`` is a
        row of the learner's ``features``.
    item_ids : sequence, optional
        The queue's id of each feature row (default: the row itself).
    weight : float in (0, 1], default 1.0
        Scales the priorities against the other sources' (an audit's suspected label error
        has priority up to 1).
    name : str, default "active"

    Examples
    --------
    >>> import pandas as pd
    >>> s = pd.DataFrame({"item_id": [2, 0], "action": ["label", "relabel"],
    ...                   "reason": ["uncertain", "doubtful"], "score": [0.9, 0.4]})
    >>> rows = ActiveLearningSource(s, item_ids=[10, 11, 12]).candidates()
    >>> rows["item_id"].tolist(), rows["priority"].tolist()
    ([12, 10], [0.9, 0.4])
    >>> rows["reason"].tolist()[1]
    'label this item again (its label is doubtful): doubtful'
    """

    def __init__(
        self,
        suggestions: pd.DataFrame,
        *,
        item_ids: Sequence[object] | np.ndarray | None = None,
        weight: float = 1.0,
        name: str = "active",
    ) -> None:
        missing = [c for c in _COLUMNS if c not in suggestions]
        if missing:
            raise ValidationError(
                "suggestions",
                f"has no column(s) {missing}",
                "pass ActiveLearner.suggest(n): item_id, action, reason, score",
            )
        actions = set(suggestions["action"].astype(str))
        if not actions <= set(_WORDS):
            raise ValidationError(
                "suggestions",
                f"has action(s) {sorted(actions - set(_WORDS))}",
                f"actions are {sorted(_WORDS)}",
            )
        if not (isinstance(weight, int | float) and 0.0 < float(weight) <= 1.0):
            raise ValidationError("weight", f"got {weight!r}", "pass a number in (0, 1]")
        rows = suggestions["item_id"].to_numpy()
        if item_ids is not None:
            ids = np.asarray(item_ids)
            outside = rows[(rows < 0) | (rows >= ids.size)]
            if outside.size:
                raise ValidationError(
                    "suggestions",
                    f"item_id {int(outside[0])} is outside the {ids.size} feature rows",
                    "pass item_ids with one id per row of the learner's features",
                )
            rows = ids[rows.astype(np.int64)]
        self.suggestions = suggestions
        self.item_ids = rows
        self.weight = float(weight)
        self.name = name

    def candidates(self) -> pd.DataFrame:
        words = [_WORDS[a] for a in self.suggestions["action"].astype(str)]
        reasons = self.suggestions["reason"].astype(str)
        score = np.clip(self.suggestions["score"].to_numpy(np.float64), 0.0, 1.0)
        return pd.DataFrame(
            {
                "item_id": self.item_ids,
                "reason": [f"{w}: {r}" for w, r in zip(words, reasons, strict=True)],
                "priority": self.weight * score,
                "suggested_label": np.full(score.size, None, dtype=object),
            }
        )
