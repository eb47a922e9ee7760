"""The annotator view: per reviewer, counts, action shares, time spent, agreement with the
others and with the consensus (``truelabel.review.reviewer_stats`` over the decision log),
and recent decisions."""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy.orm import Session

__all__ = ["annotator_rows", "recent_for"]


def _clean(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item"):  # NumPy scalar
        return _clean(value.item())
    return value


def annotator_rows(session: Session, ctx: Any, *, only: str | None = None) -> list[dict[str, Any]]:
    """One dict per reviewer who decided anything (``only``: that reviewer's row alone; the
    agreement still compares with everyone's decisions)."""
    from ..review import reviewer_stats
    from ..store import consensus_labels, decision_log

    log = decision_log(session, project_id=ctx.project_id)
    if log.empty:
        return []
    consensus = consensus_labels(session, project_id=ctx.project_id)
    stats = reviewer_stats(log, consensus if len(consensus) else None)
    if only is not None:
        stats = stats[stats["reviewer"] == only]
    return [{str(k): _clean(v) for k, v in row.items()} for row in stats.to_dict("records")]


def recent_for(session: Session, ctx: Any, reviewer: str, limit: int = 20) -> list[dict[str, Any]]:
    """The reviewer's latest decisions, newest first, with each item's external id."""
    from sqlalchemy import select

    from ..store import Item, recent_decisions

    rows = recent_decisions(session, project_id=ctx.project_id, reviewer=reviewer, limit=limit)
    ids = sorted({int(d.item_id) for d in rows})
    names = dict(session.execute(select(Item.id, Item.external_id).where(Item.id.in_(ids))).all())
    return [
        {
            "id": d.id,
            "item_id": d.item_id,
            "external_id": names.get(d.item_id, ""),
            "task_id": d.task_id,
            "reviewer": d.reviewer,
            "old_label": d.old_label,
            "new_label": d.new_label,
            "reason": d.reason,
            "seconds_spent": d.seconds_spent,
            "undoes_id": d.undoes_id,
            "created_at": d.created_at,
        }
        for d in rows
    ]
