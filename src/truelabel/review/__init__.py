"""Review queue logic (no database): sources propose items, the queue merges them.

>>> from truelabel.review import ReviewQueue, DisagreementSource
>>> import pandas as pd
>>> votes = pd.DataFrame({"item_id": [1, 1, 2, 2], "annotator_id": ["a", "b", "a", "b"],
...                       "label": ["cat", "dog", "cat", "cat"]})
>>> queue = ReviewQueue([DisagreementSource(votes)]).build()
>>> queue["item_id"].tolist(), queue["priority"].tolist(), queue["suggested_label"].tolist()
([1], [0.5], ['cat'])
"""

from ._active import ActiveLearningSource
from ._explain import explain_item
from ._queue import CANDIDATE_COLUMNS, ReviewQueue, ReviewSource
from ._reviewers import reviewer_stats
from ._sources import ISSUE_WEIGHTS, AuditIssueSource, AutoLabelReviewSource, DisagreementSource

__all__ = [
    "CANDIDATE_COLUMNS",
    "ISSUE_WEIGHTS",
    "ActiveLearningSource",
    "AuditIssueSource",
    "AutoLabelReviewSource",
    "DisagreementSource",
    "ReviewQueue",
    "ReviewSource",
    "explain_item",
    "reviewer_stats",
]
