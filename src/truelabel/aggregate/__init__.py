"""Consensus from many annotators: majority votes, Dawid-Skene and kin, annotator quality and
agreement metrics, all on one long table ``item_id, annotator_id, label``."""

from ._base import Aggregator
from ._dawid_skene import DawidSkene, OneCoinDawidSkene
from ._mace import MACE
from ._majority import MajorityVote, WeightedMajorityVote
from ._table import DUPLICATE_MODES, Annotations

__all__ = [
    "DUPLICATE_MODES",
    "MACE",
    "Aggregator",
    "Annotations",
    "DawidSkene",
    "MajorityVote",
    "OneCoinDawidSkene",
    "WeightedMajorityVote",
]
