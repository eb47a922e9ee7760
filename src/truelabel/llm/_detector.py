"""The ``llm_judge`` issue type: an LLMJudge re-checks the label check's top suspects.

Registered with the audit's detector registry when :mod:`truelabel.llm` is imported (any
import from the package does it; the judge itself is imported on first use). Cost is bounded by ``top``: only
the ``top`` lowest ``label_score`` rows are sent to the LLM, whatever the data size.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from ..detect._base import AuditContext, Detector, DetectorResult, register_detector
from ..exceptions import ValidationError

__all__ = ["LLMJudgeDetector"]

ARG = "issue_types['llm_judge']"


def _unit(key: str, value: Any, low_open: bool = False) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or not (0 < value <= 1 if low_open else 0 <= value <= 1):
        span = "(0, 1]" if low_open else "[0, 1]"
        raise ValidationError(f"{ARG}[{key!r}]", f"got {value!r}", f"pass a number in {span}")
    return float(value)


@register_detector
class LLMJudgeDetector(Detector):
    """Label issues re-checked by an LLM judge; its score combined with the label score.

    Runs after the ``label`` check (list ``"label"`` before ``"llm_judge"`` in
    ``issue_types``; the default order does). The ``top`` labelled rows with the lowest
    ``label_score`` are scored by ``judge.score`` (the probability that the label is
    right, see :class:`~truelabel.llm.LLMJudge`); every other row is left as the label
    check scored it.

    Settings (``issue_types={"llm_judge": {...}}``)
    -----------------------------------------------
    judge : LLMJudge
        Its classes must hold the audit's class names.
    texts : sequence of str
        One text per audited item, in input order.
    top : int, default 50
        How many suspects to re-check (the LLM's cost: ``top`` items of requests).
    weight : float in [0, 1], default 0.5
        Weight of the judge in ``llm_judge_score``.
    doubt_below : float in (0, 1], default 0.5
        A re-checked label issue is confirmed when the judge's score is below this.

    Columns: ``judge_score`` (the judge's score; NaN where not asked),
    ``llm_judge_score`` (``(1 - weight) * label_score + weight * judge_score`` on the
    re-checked rows, ``label_score`` elsewhere: one ranking of every item, lower = worse)
    and ``is_llm_judge_issue`` (flagged by the label check and confirmed by the judge).
    ``info``: ``n_rechecked``, ``n_confirmed``, ``n_cleared`` (flagged, judge says right).
    """

    name = "llm_judge"
    requires_all = ("labels",)
    settings = MappingProxyType(
        {"judge": None, "texts": None, "top": 50, "weight": 0.5, "doubt_below": 0.5}
    )
    #: it calls a service given in its settings: never run by default, not in the
    #: registry-wide conformance tests (its own: tests/llm/test_audit_judge.py)
    needs_service = True
    #: what the audit says is missing when this type is asked for but cannot run
    need = "labels and issue_types['llm_judge']['judge'] (an LLMJudge) with 'texts'"

    def can_run(self, ctx: AuditContext) -> bool:
        return self.params.get("judge") is not None and super().can_run(ctx)

    def detect(self, ctx: AuditContext) -> DetectorResult:
        from ._judge import LLMJudge, suspects

        judge = self.setting("judge")
        if not isinstance(judge, LLMJudge):
            raise ValidationError(
                f"{ARG}['judge']", f"got {type(judge).__name__}", "pass an LLMJudge"
            )
        texts = self.setting("texts")
        n = ctx.n_items
        if isinstance(texts, str) or not hasattr(texts, "__len__") or len(texts) != n:
            shown = f"{len(texts)} texts" if hasattr(texts, "__len__") else repr(texts)
            raise ValidationError(
                f"{ARG}['texts']", f"got {shown} for {n} items", "pass one text per item"
            )
        top = self.setting("top")
        if not isinstance(top, int) or isinstance(top, bool) or top < 1:
            raise ValidationError(f"{ARG}['top']", f"got {top!r}", "pass an int >= 1, e.g. 50")
        weight = _unit("weight", self.setting("weight"))
        below = _unit("doubt_below", self.setting("doubt_below"), low_open=True)
        if "label_score" not in ctx.cache:
            raise ValidationError(
                "issue_types",
                "'llm_judge' re-checks the suspects of the 'label' check, which has not run "
                "before it",
                "list 'label' before 'llm_judge' in issue_types",
            )
        names = list(ctx.class_names or ())
        unknown = sorted(set(names) - set(judge.classes_))
        if unknown:
            raise ValidationError(
                f"{ARG}['judge']",
                f"has no class(es) {unknown} of the audit (its classes: {list(judge.classes_)})",
                "build the judge with the audit's class names",
            )
        assert ctx.labels is not None
        label_score = np.asarray(ctx.cache["label_score"], dtype=np.float64)
        flagged = np.asarray(ctx.cache["label_issue"], dtype=bool)
        pick = suspects(label_score, ctx.labels >= 0, top)
        judged = np.full(n, np.nan)
        if pick.size:
            given = [names[k] for k in ctx.labels[pick]]
            judged[pick] = judge.score([str(texts[i]) for i in pick], given)
        combined = label_score.copy()
        combined[pick] = (1.0 - weight) * label_score[pick] + weight * judged[pick]
        doubted = np.zeros(n, dtype=bool)
        doubted[pick] = judged[pick] < below
        confirmed = flagged & doubted
        cols = pd.DataFrame(
            {
                "is_llm_judge_issue": confirmed,
                "llm_judge_score": combined,
                "judge_score": judged,
            }
        )
        on_pick = np.zeros(n, dtype=bool)
        on_pick[pick] = True
        info = {
            "n_rechecked": int(pick.size),
            "n_confirmed": int(confirmed.sum()),
            "n_cleared": int((flagged & on_pick & ~doubted).sum()),
            "top": top,
            "weight": weight,
            "doubt_below": below,
            "method": judge.method,
        }
        return DetectorResult(columns=cols, info=info)
