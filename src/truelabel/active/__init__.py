"""Which items to label or re-label next, and when to stop.

Acquisition scores on ``pred_probs`` (:func:`least_confidence_scores`, :func:`margin_scores`,
:func:`entropy_scores`) and picks on embeddings (:func:`typicality_scores`,
:func:`typiclust_select`, :func:`badge_select`, :func:`k_center_greedy`), each a chunk map on
the backend; and :class:`ActiveLearner`, the labeling loop with noisy annotators, re-labels,
costs and a stopping estimate.
"""

from ._diversity import badge_select, k_center_greedy, typicality_scores, typiclust_select
from ._learner import ActiveLearner
from ._stopping import StopEstimate
from ._uncertainty import (
    entropy_scores,
    least_confidence_scores,
    margin_scores,
    uncertainty_scores,
)

__all__ = [
    "ActiveLearner",
    "StopEstimate",
    "badge_select",
    "entropy_scores",
    "k_center_greedy",
    "least_confidence_scores",
    "margin_scores",
    "typicality_scores",
    "typiclust_select",
    "uncertainty_scores",
]
