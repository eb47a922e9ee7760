"""Consensus from many annotators: majority votes, Dawid-Skene and kin, annotator quality and
agreement metrics, all on one long table ``item_id, annotator_id, label`` (an AI labeler is
just another annotator).

The EM core (:mod:`truelabel.aggregate._em`: sparse item x (annotator, class) counts ->
posteriors and confusion matrices) is shared with the label model of :mod:`truelabel.weak`.
"""

from ._agreement import cohen_kappa_pairwise, fleiss_kappa, krippendorff_alpha
from ._ai_labelers import LabelerChoice, choose_best_labels
from ._base import Aggregator
from ._dawid_skene import DawidSkene, OneCoinDawidSkene
from ._mace import MACE
from ._majority import MajorityVote, WeightedMajorityVote
from ._model_assisted import ModelAssistedConsensus
from ._multilabel import MultiLabelDawidSkene
from ._quality import annotator_quality, wilson_interval
from ._table import DUPLICATE_MODES, Annotations

__all__ = [
    "DUPLICATE_MODES",
    "MACE",
    "Aggregator",
    "Annotations",
    "DawidSkene",
    "LabelerChoice",
    "MajorityVote",
    "ModelAssistedConsensus",
    "MultiLabelDawidSkene",
    "OneCoinDawidSkene",
    "WeightedMajorityVote",
    "annotator_quality",
    "choose_best_labels",
    "cohen_kappa_pairwise",
    "fleiss_kappa",
    "krippendorff_alpha",
    "wilson_interval",
]
