"""Probabilities: out-of-fold predicted probabilities from any scikit-learn classifier;
zero-shot and few-shot text classifiers on frozen sentence embeddings."""

from __future__ import annotations

import importlib as _importlib
import typing as _typing

from ._classes import read_classes
from ._oof import default_estimator, out_of_fold_pred_probs

if _typing.TYPE_CHECKING:
    from ._fewshot import FewShotClassifier
    from ._zeroshot import ZeroShotClassifier

# Built on scikit-learn's BaseEstimator: loaded on first use so `import truelabel` stays light.
_LAZY = {"FewShotClassifier": "_fewshot", "ZeroShotClassifier": "_zeroshot"}


def __getattr__(name: str) -> _typing.Any:
    if name in _LAZY:
        value = getattr(_importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "FewShotClassifier",
    "ZeroShotClassifier",
    "default_estimator",
    "out_of_fold_pred_probs",
    "read_classes",
]
