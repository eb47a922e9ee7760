"""Detector base class, the registry, and the context every detector reads from.

A new issue type is a subclass of :class:`Detector` decorated with
:func:`register_detector`; the :class:`~truelabel.detect.Audit` facade never changes.
Each detector declares its settings and their defaults in ``settings``; unknown settings
are refused when the detector is built, naming the closest valid one.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from .._validation import closest, iter_chunks
from ..exceptions import ValidationError
from ._knn import KNNGraph, build_knn_graph
from ._knn_common import release_free_memory
from ._original_space import OriginalGraph, original_neighbors

__all__ = [
    "AuditContext",
    "Detector",
    "DetectorResult",
    "available_detectors",
    "check_settings",
    "get_detector",
    "register_detector",
]

_REGISTRY: dict[str, type[Detector]] = {}
#: rows whose norms :attr:`AuditContext.uses_cosine` checks at once
_NORM_ROWS = 1 << 16


@dataclass
class AuditContext:
    """Inputs shared by the detectors of one audit; derived inputs are built once, lazily.

    ``labels`` uses -1 for unlabelled items. ``knn`` is the one shared kNN graph (on
    ``features``, possibly a reduced space such as LSA). ``annotations`` is a long annotation table
    (:class:`~truelabel.aggregate.Annotations`) of the same items. ``raw_features`` are the
    same items in their original space (the sparse raw TF-IDF rows of a text audit); near-duplicates and
    outliers are judged there, by exact cosine (``original_graph``). ``backend`` runs the
    chunked passes, in chunks of ``chunk_size`` rows (None: each step's default).
    """

    labels: np.ndarray | None
    pred_probs: np.ndarray | None
    features: np.ndarray | None
    n_classes: int
    n_neighbors: int = 10
    random_state: int = 0
    knn_method: str = "auto"
    cache: dict[str, Any] = field(default_factory=dict)
    class_names: tuple[str, ...] | None = None
    raw_features: Any = None
    backend: Any = None
    chunk_size: int | None = None
    annotations: Any = None  # an aggregate.Annotations table (items in table.items order)

    @property
    def n_items(self) -> int:
        for arr in (self.labels, self.pred_probs, self.features):
            if arr is not None:
                return int(arr.shape[0])
        if self.annotations is not None:
            return int(self.annotations.n_items)
        raise ValidationError("data", "no labels, pred_probs or features", "pass at least one")

    @cached_property
    def knn(self) -> KNNGraph | None:
        if self.features is None:
            return None
        k = min(self.n_neighbors, self.n_items - 1)
        return build_knn_graph(
            self.features,
            n_neighbors=k,
            method=self.knn_method,
            random_state=self.random_state,
            backend=self.backend,
            chunk_size=self.chunk_size,
        )

    @cached_property
    def uses_cosine(self) -> bool:
        """Judge similarity by cosine: raw rows were given, or the features are unit-norm
        (embeddings); plain tabular features keep Euclidean distances."""
        if self.raw_features is not None:
            return True
        if self.features is None:
            return False
        x = self.features
        for sl in iter_chunks(x.shape[0], _NORM_ROWS):  # a block of norms at a time, not N
            norms = np.sqrt(np.einsum("ij,ij->i", x[sl], x[sl], dtype=np.float64))
            if not np.all(np.abs(norms - 1.0) < 1e-3):
                return False
        return True

    def release_graphs(self) -> None:
        """Drop the kNN graphs built for the detectors (rebuilt if asked for again) and hand
        the freed memory back, so what follows the detectors runs without them."""
        for name in ("knn", "original_graph"):
            self.__dict__.pop(name, None)
        release_free_memory()

    @cached_property
    def original_graph(self) -> OriginalGraph | None:
        """The kNN candidates re-ranked by exact cosine in the original space."""
        if self.knn is None:
            return None
        raw = self.features if self.raw_features is None else self.raw_features
        return original_neighbors(
            raw, self.knn.indices, backend=self.backend, chunk_size=self.chunk_size
        )


@dataclass
class DetectorResult:
    """Per-item columns (``is_<name>_issue``, ``<name>_score``, extras) and summary info."""

    columns: pd.DataFrame
    info: dict[str, Any] = field(default_factory=dict)


def _check_value(argument: str, key: str, value: Any, default: Any) -> None:
    """Type checks implied by the default: a bool stays a bool, a number a finite number."""
    if isinstance(default, bool):
        if not isinstance(value, bool | np.bool_):
            raise ValidationError(f"{argument}[{key!r}]", f"got {value!r}", "pass True or False")
    elif isinstance(default, int | float):
        ok = isinstance(value, int | float | np.integer | np.floating) and not isinstance(
            value, bool | np.bool_
        )
        if not ok or not math.isfinite(float(value)):
            raise ValidationError(
                f"{argument}[{key!r}]", f"got {value!r}", f"pass a number (default {default})"
            )


def check_settings(cls: type[Detector], params: Mapping[str, Any]) -> None:
    """Refuse settings ``cls`` does not declare (naming the closest valid one) and values
    of the wrong kind."""
    name = cls.name
    argument = f"issue_types[{name!r}]"
    valid = list(cls.settings)
    listed = ", ".join(map(repr, valid)) if valid else "none"
    for key, value in params.items():
        if key in cls.settings:
            _check_value(argument, key, value, cls.settings[key])
            continue
        hint = closest(str(key), valid)
        if hint is not None:
            fix = f"did you mean {hint!r}? (settings of {name!r}: {listed})"
        else:
            elsewhere = {
                s: other for other, c in _REGISTRY.items() if other != name for s in c.settings
            }
            near = closest(str(key), elsewhere)
            fix = f"settings of {name!r}: {listed}"
            if near is not None:
                fix = f"{near!r} is a setting of {elsewhere[near]!r}, not {name!r}; {fix}"
        raise ValidationError(argument, f"unknown setting {key!r}", fix)


class Detector(ABC):
    """One issue type. Subclasses set ``name``, ``requires`` and ``settings`` and implement
    ``detect``.

    ``requires`` lists context inputs of which at least one must be present
    (``"labels"``, ``"pred_probs"``, ``"features"``, ``"annotations"``); ``requires_all`` those that all must.
    ``settings`` maps every accepted setting to its default; others are refused (with the
    closest valid name) when the detector is built. ``params`` holds the settings as given
    and is never changed: read them with :meth:`setting`.
    """

    name: ClassVar[str]
    requires: ClassVar[tuple[str, ...]] = ()
    requires_all: ClassVar[tuple[str, ...]] = ()
    settings: ClassVar[Mapping[str, Any]] = MappingProxyType({})

    def __init__(self, **params: Any) -> None:
        check_settings(type(self), params)
        self.params = params

    def setting(self, key: str) -> Any:
        """The value of setting ``key``: as given, else its declared default."""
        return self.params.get(key, self.settings[key])

    def can_run(self, ctx: AuditContext) -> bool:
        inputs = ("labels", "pred_probs", "features", "annotations")
        have = {k for k in inputs if getattr(ctx, k) is not None}
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
    """Instantiate the registered detector ``name`` with ``params`` (settings checked)."""
    if name not in _REGISTRY:
        from .._validation import check_choice

        check_choice("issue_types", name, available_detectors())
    return _REGISTRY[name](**params)
