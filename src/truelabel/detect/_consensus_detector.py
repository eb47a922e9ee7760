"""The ``consensus`` issue type: items whose crowd consensus is doubtful, and the annotators
who disagree with the consensus (from the audit's long annotation table)."""

from __future__ import annotations

from types import MappingProxyType

import numpy as np
import pandas as pd

from .._validation import check_choice
from ..exceptions import ValidationError
from ._base import AuditContext, Detector, DetectorResult, register_detector

__all__ = ["ConsensusDetector", "disagreeing_annotators"]


def disagreeing_annotators(quality: pd.DataFrame) -> np.ndarray:
    """Annotators who err at least twice as often as the typical annotator with 95%
    confidence (``1 - ci_high > 2 * (1 - median quality)``), or spammers.

    "Twice" rather than "significantly more": with hundreds of answers an 85% annotator is
    significantly below a 90% median, yet still worth keeping."""
    median = float(quality["quality"].median())
    low = 1.0 - quality["ci_high"].to_numpy(dtype=float) > 2.0 * (1.0 - median)
    return np.asarray(low | quality["is_spammer"].to_numpy(dtype=bool))


@register_detector
class ConsensusDetector(Detector):
    """Doubtful consensus: an item's consensus probability is below ``doubtful_below``.

    With ``model_assisted`` (default True) and ``pred_probs`` in the audit (a classifier's
    out-of-fold probabilities of the annotated items, in the table's item order), the
    consensus is :class:`~truelabel.aggregate.ModelAssistedConsensus` on ``method`` as base;
    ``info["model_assisted"]`` then says the base, the model's weight and its accuracy
    against the annotators-only consensus.

    Columns: ``is_consensus_issue``, ``consensus_score`` (the consensus probability of the
    consensus label, in [1/K, 1]; lower = more doubtful), ``consensus_label`` and
    ``n_labels`` (answers on the item). ``info["annotators"]`` is the
    :func:`~truelabel.aggregate.annotator_quality` table plus ``few_answers`` and
    ``disagrees`` (see :func:`disagreeing_annotators`).
    """

    name = "consensus"
    requires_all = ("annotations",)
    settings = MappingProxyType(
        {"method": "dawid-skene", "doubtful_below": 0.8, "model_assisted": True}
    )

    def detect(self, ctx: AuditContext) -> DetectorResult:
        from ..aggregate._run import METHODS, run_consensus

        method = check_choice("issue_types['consensus']['method']", self.setting("method"),
                              tuple(METHODS))  # fmt: skip
        below = float(self.setting("doubtful_below"))
        if not 0.0 < below <= 1.0:
            raise ValidationError(
                "issue_types['consensus']['doubtful_below']", f"got {below}", "pass e.g. 0.8"
            )
        assisted = self.setting("model_assisted")
        if not isinstance(assisted, bool):
            raise ValidationError(
                "issue_types['consensus']['model_assisted']",
                f"got {assisted!r}",
                "pass True or False",
            )
        res = run_consensus(
            ctx.annotations,
            method=method,
            doubtful_below=below,
            random_state=ctx.random_state,
            pred_probs=ctx.pred_probs if assisted else None,
            backend=ctx.backend,
            chunk_size=ctx.chunk_size,
        )
        quality = res.annotators.copy()
        quality["disagrees"] = disagreeing_annotators(quality)
        c = res.consensus
        columns = pd.DataFrame(
            {
                "is_consensus_issue": c["is_doubtful"].to_numpy(dtype=bool),
                "consensus_score": c["confidence"].to_numpy(dtype=float),
                "consensus_label": c["label"].astype(str).to_numpy(),
                "n_labels": c["n_labels"].to_numpy(),
            }
        )
        info = {
            "method": method,
            "doubtful_below": below,
            "annotators": quality,
            "n_disagreeing_annotators": int(quality["disagrees"].sum()),
            "agreement": res.agreement,
            "warnings": res.warnings,
            "model_assisted": res.summary.get("model_assisted"),
        }
        return DetectorResult(columns, info)
