"""Probabilities: out-of-fold predicted probabilities from any scikit-learn classifier;
zero-shot, few-shot and self-training text classifiers on frozen sentence embeddings;
class-prior shift on a pool."""

from __future__ import annotations

import importlib as _importlib
import typing as _typing

from ._classes import read_classes
from ._oof import default_estimator, out_of_fold_pred_probs
from ._prior_shift import PriorShiftResult, adjust_to_pool_priors

if _typing.TYPE_CHECKING:
    from ._fewshot import FewShotClassifier
    from ._selftrain import SelfTrainingClassifier
    from ._zeroshot import ZeroShotClassifier

# Built on scikit-learn's BaseEstimator: loaded on first use so `import truelabel` stays light.
_LAZY = {
    "FewShotClassifier": "_fewshot",
    "SelfTrainingClassifier": "_selftrain",
    "ZeroShotClassifier": "_zeroshot",
}


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
    "PriorShiftResult",
    "SelfTrainingClassifier",
    "ZeroShotClassifier",
    "adjust_to_pool_priors",
    "default_estimator",
    "out_of_fold_pred_probs",
    "read_classes",
]
