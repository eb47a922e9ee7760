"""The decision log as columns (for reviewer statistics and progress charts), consensus
labels, and a reviewer's recent decisions."""

from __future__ import annotations

from typing import Any

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ._models import Annotation, Decision, LabelSource

__all__ = ["consensus_labels", "decision_log", "recent_decisions"]

_LOG_COLUMNS = (
    "id",
    "item_id",
    "reviewer",
    "new_label",
    "reason",
    "seconds_spent",
    "undoes_id",
    "created_at",
)


def decision_log(session: Session, *, project_id: int) -> pd.DataFrame:
    """Every decision of the project, oldest first, as columns (``id, item_id, reviewer,
    new_label, reason, seconds_spent, undoes_id, created_at``; undos included)."""
    cols = [getattr(Decision, c) for c in _LOG_COLUMNS]
    stmt = select(*cols).where(Decision.project_id == project_id).order_by(Decision.id)
    rows = session.execute(stmt).all()
    frame = pd.DataFrame(rows, columns=list(_LOG_COLUMNS))
    frame["seconds_spent"] = pd.to_numeric(frame["seconds_spent"], errors="coerce")
    frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
    return frame


def consensus_labels(session: Session, *, project_id: int) -> pd.Series:
    """Item id -> the latest consensus annotation's label (items without one are absent)."""
    latest = (
        select(func.max(Annotation.id))
        .join(LabelSource, LabelSource.id == Annotation.source_id)
        .where(LabelSource.project_id == project_id, LabelSource.kind == "consensus")
        .group_by(Annotation.item_id)
    )
    stmt = select(Annotation.item_id, Annotation.label).where(Annotation.id.in_(latest))
    rows = session.execute(stmt).all()
    return pd.Series([r.label for r in rows], index=[int(r.item_id) for r in rows], dtype=object)


def recent_decisions(
    session: Session, *, project_id: int, reviewer: str, limit: int = 20
) -> list[Any]:
    """The reviewer's ``limit`` latest decisions (undos included), newest first."""
    stmt = (
        select(Decision)
        .where(Decision.project_id == project_id, Decision.reviewer == reviewer)
        .order_by(Decision.id.desc())
        .limit(limit)
    )
    return list(session.scalars(stmt))
