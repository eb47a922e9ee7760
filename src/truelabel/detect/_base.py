"""Detector base class, the registry, and the context every detector reads from.

A new issue type is a subclass of :class:`Detector` decorated with
:func:`register_detector`; the :class:`~truelabel.detect.Audit` facade never changes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from ..exceptions import ValidationError
from ._knn import KNNGraph, build_knn_graph
from ._original_space import OriginalGraph, original_neighbors

__all__ = [
    "AuditContext",
    "Detector",
    "DetectorResult",
    "available_detectors",
    "get_detector",
    "register_detector",
]

_REGISTRY: dict[str, type[Detector]] = {}


@dataclass
class AuditContext:
    """Inputs shared by the detectors of one audit; derived inputs are built once, lazily.

    ``labels`` uses -1 for unlabelled items. ``knn`` is the one shared kNN graph (on
    ``features``, possibly a reduced space such as LSA). ``raw_features`` are the same items
    in their original space (the sparse raw TF-IDF rows of a text audit); near-duplicates and
    outliers are judged there, by exact cosine (``original_graph``). ``backend`` runs the
    chunked passes.
    """

    labels: np.ndarray | None
    pred_probs: np.ndarray | None
    features: np.ndarray | None
    n_classes: int
    n_neighbors: int = 10
    random_state: int = 0
    knn_method: str = "auto"
    cache: dict[str, Any] = field(default_factory=dict)
    raw_features: Any = None
    backend: Any = None

    @property
    def n_items(self) -> int:
        for arr in (self.labels, self.pred_probs, self.features):
            if arr is not None:
                return int(arr.shape[0])
        raise ValidationError("data", "no labels, pred_probs or features", "pass at least one")

    @cached_property
    def knn(self) -> KNNGraph | None:
        if self.features is None:
            return None
        k = min(self.n_neighbors, self.n_items - 1)
        return build_knn_graph(
            self.features, n_neighbors=k, method=self.knn_method, random_state=self.random_state
        )

    @cached_property
    def uses_cosine(self) -> bool:
        """Judge similarity by cosine: raw rows were given, or the features are unit-norm
        (embeddings); plain tabular features keep Euclidean distances."""
        if self.raw_features is not None:
            return True
        if self.features is None:
            return False
        norms = np.sqrt(np.einsum("ij,ij->i", self.features, self.features, dtype=np.float64))
        return bool(np.all(np.abs(norms - 1.0) < 1e-3))

    @cached_property
    def original_graph(self) -> OriginalGraph | None:
        """The kNN candidates re-ranked by exact cosine in the original space."""
        if self.knn is None:
            return None
        raw = self.features if self.raw_features is None else self.raw_features
        return original_neighbors(raw, self.knn.indices, backend=self.backend)


@dataclass
class DetectorResult:
    """Per-item columns (``is_<name>_issue``, ``<name>_score``, extras) and summary info."""

    columns: pd.DataFrame
    info: dict[str, Any] = field(default_factory=dict)


class Detector(ABC):
    """One issue type. Subclasses set ``name`` and ``requires`` and implement ``detect``.

    ``requires`` lists context inputs of which at least one must be present
    (``"labels"``, ``"pred_probs"``, ``"features"``); ``requires_all`` those that all must.
    """

    name: ClassVar[str]
    requires: ClassVar[tuple[str, ...]] = ()
    requires_all: ClassVar[tuple[str, ...]] = ()

    def __init__(self, **params: Any) -> None:
        self.params = params

    def can_run(self, ctx: AuditContext) -> bool:
        have = {k for k in ("labels", "pred_probs", "features") if getattr(ctx, k) is not None}
        if any(r not in have for r in self.requires_all):
            return False
        return not self.requires or bool(have & set(self.requires))

    @abstractmethod
    def detect(self, ctx: AuditContext) -> DetectorResult:
        """Score every item; lower scores mean more likely an issue."""


def register_detector(cls: type[Detector]) -> type[Detector]:
    """Class decorator adding a detector to the registry under ``cls.name``."""
    _REGISTRY[cls.name] = cls
    return cls


def available_detectors() -> list[str]:
    """Names of the registered issue types."""
    return sorted(_REGISTRY)


def get_detector(name: str, **params: Any) -> Detector:
    """Instantiate the registered detector ``name`` with ``params``."""
    if name not in _REGISTRY:
        from .._validation import check_choice

        check_choice("issue_types", name, available_detectors())
    return _REGISTRY[name](**params)
