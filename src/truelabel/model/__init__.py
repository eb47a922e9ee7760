"""Probabilities: out-of-fold predicted probabilities from any scikit-learn classifier."""

from ._oof import default_estimator, out_of_fold_pred_probs

__all__ = ["default_estimator", "out_of_fold_pred_probs"]
