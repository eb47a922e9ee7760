"""Review tasks and decisions. Decisions are append-only: no function here updates or deletes
one (and database triggers refuse it); an undo is a new decision pointing at the undone one."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from ..exceptions import ValidationError
from ._bulk import CHUNK_ROWS, insert_columns
from ._current import current_labels_params, current_labels_query
from ._models import TASK_STATUSES, Decision, Item, Project, ReviewTask, utcnow

__all__ = [
    "add_review_tasks",
    "decision_history",
    "next_tasks",
    "queue_counts",
    "record_decision",
    "undo_decision",
]

_IN_CHUNK = 5_000  # ids per IN (...) list


def add_review_tasks(
    session: Session,
    *,
    project_id: int,
    queue: pd.DataFrame,
    run_id: int | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> int:
    """Open one task per row of a review queue (``truelabel.review.ReviewQueue.build()``:
    ``item_id, priority, reasons, suggested_label``). Open tasks of the same items are
    marked ``superseded`` first, so an item has at most one open task."""
    ids = queue["item_id"].to_numpy(np.int64)
    for start in range(0, ids.size, _IN_CHUNK):
        chunk = ids[start : start + _IN_CHUNK].tolist()
        session.execute(
            update(ReviewTask)
            .where(
                ReviewTask.project_id == project_id,
                ReviewTask.status == "open",
                ReviewTask.item_id.in_(chunk),
            )
            .values(status="superseded")
        )
    suggested = queue["suggested_label"] if "suggested_label" in queue else None
    return insert_columns(
        session,
        ReviewTask.__table__,
        {
            "project_id": project_id,
            "item_id": ids,
            "run_id": run_id,
            "priority": queue["priority"].to_numpy(np.float64),
            "reasons": list(queue["reasons"]),
            "suggested_label": None if suggested is None else suggested.to_numpy(object),
            "status": "open",
            "created_at": utcnow(),
        },
        n_rows=ids.size,
        chunk_rows=chunk_rows,
    )


def next_tasks(session: Session, *, project_id: int, limit: int = 20) -> list[ReviewTask]:
    """Open tasks, highest priority first (ties: oldest task first)."""
    if limit < 1:
        raise ValidationError("limit", f"got {limit}", "pass an int >= 1")
    stmt = (
        select(ReviewTask)
        .where(ReviewTask.project_id == project_id, ReviewTask.status == "open")
        .order_by(ReviewTask.priority.desc(), ReviewTask.id)
        .limit(limit)
    )
    return list(session.scalars(stmt))


def queue_counts(session: Session, *, project_id: int) -> dict[str, int]:
    """Number of review tasks per status (``open``, ``done``, ``superseded``; zeros kept)."""
    stmt = (
        select(ReviewTask.status, func.count())
        .where(ReviewTask.project_id == project_id)
        .group_by(ReviewTask.status)
    )
    counts = {status: 0 for status in TASK_STATUSES}
    counts.update({str(k): int(n) for k, n in session.execute(stmt)})
    return counts


def _current_label(session: Session, project_id: int, item_id: int) -> str | None:
    params = current_labels_params(project_id, [item_id])
    row = session.execute(current_labels_query(True), params).one_or_none()
    return None if row is None else row.label


def record_decision(
    session: Session,
    *,
    item_id: int,
    reviewer: str,
    new_label: str,
    reason: str | None = None,
    seconds_spent: float | None = None,
    task_id: int | None = None,
) -> Decision:
    """Append a decision: ``new_label`` becomes the item's current label (``old_label`` is
    the current label it replaces; equal labels = the given label was confirmed). The item's
    open tasks are closed. ``new_label`` must be one of the project's classes."""
    item = session.get(Item, item_id)
    if item is None:
        raise ValidationError("item_id", f"no item {item_id}", "pass an id from the project")
    if not reviewer or not reviewer.strip():
        raise ValidationError("reviewer", f"got {reviewer!r}", "name who made the decision")
    if seconds_spent is not None and not seconds_spent >= 0:
        raise ValidationError("seconds_spent", f"got {seconds_spent}", "pass seconds >= 0")
    project = session.get(Project, item.project_id)
    classes = (project.settings if project else {}).get("classes")
    if classes is not None and new_label not in classes:
        raise ValidationError(
            "new_label", f"{new_label!r} is not a class of this project", f"pick one of {classes}"
        )
    decision = Decision(
        project_id=item.project_id,
        item_id=item_id,
        task_id=task_id,
        reviewer=reviewer,
        created_at=utcnow(),
        old_label=_current_label(session, item.project_id, item_id),
        new_label=new_label,
        reason=reason,
        seconds_spent=seconds_spent,
    )
    session.add(decision)
    session.execute(
        update(ReviewTask)
        .where(ReviewTask.item_id == item_id, ReviewTask.status == "open")
        .values(status="done")
    )
    session.flush()
    return decision


def undo_decision(session: Session, *, decision_id: int, reviewer: str) -> Decision:
    """Append an undo of ``decision_id``: the item's label goes back to what it was without
    that decision, and its task (if any) is open again. An undo cannot be undone; a decision
    is undone at most once."""
    target = session.get(Decision, decision_id)
    if target is None:
        raise ValidationError("decision_id", f"no decision {decision_id}", "pass a decision id")
    if target.undoes_id is not None:
        raise ValidationError(
            "decision_id", f"decision {decision_id} is an undo", "record a new decision instead"
        )
    if session.scalar(select(Decision.id).where(Decision.undoes_id == decision_id)) is not None:
        raise ValidationError(
            "decision_id", f"decision {decision_id} was already undone", "nothing to undo"
        )
    undo = Decision(
        project_id=target.project_id,
        item_id=target.item_id,
        task_id=target.task_id,
        reviewer=reviewer,
        created_at=utcnow(),
        old_label=target.new_label,
        new_label=target.old_label,
        reason=f"undo of decision {decision_id}",
        undoes_id=decision_id,
    )
    session.add(undo)
    if target.task_id is not None:
        session.execute(
            update(ReviewTask).where(ReviewTask.id == target.task_id).values(status="open")
        )
    session.flush()
    return undo


def decision_history(session: Session, *, item_id: int) -> list[Decision]:
    """Every decision on an item, oldest first (undos included)."""
    stmt = select(Decision).where(Decision.item_id == item_id).order_by(Decision.id)
    return list(session.scalars(stmt))
