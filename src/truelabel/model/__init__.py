"""Probabilities: out-of-fold predicted probabilities from any scikit-learn classifier;
class-prior shift on a pool; self-training over an unlabeled pool."""

from __future__ import annotations

import importlib as _importlib
import typing as _typing

from ._oof import default_estimator, out_of_fold_pred_probs
from ._prior_shift import PriorShiftResult, adjust_to_pool_priors

if _typing.TYPE_CHECKING:
    from ._selftrain import SelfTrainingClassifier

# estimators on sklearn.base load on first use (`import truelabel` stays light)
_LAZY = {"SelfTrainingClassifier": "_selftrain"}


def __getattr__(name: str) -> _typing.Any:
    if name in _LAZY:
        value = getattr(_importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "PriorShiftResult",
    "SelfTrainingClassifier",
    "adjust_to_pool_priors",
    "default_estimator",
    "out_of_fold_pred_probs",
]
