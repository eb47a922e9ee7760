"""Review tasks and decisions. Decisions are append-only: no function here updates or deletes
one (and database triggers refuse it); an undo is a new decision pointing at the undone one."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from ..exceptions import ValidationError
from ._bulk import CHUNK_ROWS, insert_columns
from ._claims import LEASE_SECONDS, claim_tasks
from ._current import current_labels_params, current_labels_query
from ._models import TASK_STATUSES, Decision, Item, Project, ReviewTask, utcnow

__all__ = [
    "add_review_tasks",
    "decision_history",
    "next_tasks",
    "queue_counts",
    "record_decision",
    "record_decisions",
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


def next_tasks(
    session: Session,
    *,
    project_id: int,
    limit: int = 20,
    reviewer: str | None = None,
    exclude: Sequence[int] = (),
    lease_seconds: float = LEASE_SECONDS,
) -> list[ReviewTask]:
    """Open tasks, highest priority first (ties: oldest task first).

    Without ``reviewer``: a look at the queue (nothing claimed; any session). With
    ``reviewer`` (a write session): the reviewer's batch is claimed for ``lease_seconds``
    (its own live claims first, then tasks nobody holds; see :mod:`._claims`), so two
    reviewers never get the same task while a claim lives. ``exclude``: task ids left out."""
    if limit < 1:
        raise ValidationError("limit", f"got {limit}", "pass an int >= 1")
    if reviewer is not None:
        return claim_tasks(
            session,
            project_id=project_id,
            reviewer=reviewer,
            limit=limit,
            exclude=exclude,
            lease_seconds=lease_seconds,
        )
    stmt = (
        select(ReviewTask)
        .where(ReviewTask.project_id == project_id, ReviewTask.status == "open")
        .order_by(ReviewTask.priority.desc(), ReviewTask.id)
        .limit(limit)
    )
    if exclude:
        stmt = stmt.where(ReviewTask.id.not_in([int(i) for i in exclude]))
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


@functools.cache
def _label_query() -> Any:
    """:func:`current_labels_query` reduced to ``item_id, label`` (built once)."""
    full = current_labels_query(True)
    keep = [c for c in full.selected_columns if c.key in ("item_id", "label")]
    return full.with_only_columns(*keep)


def _current_label_map(session: Session, project_id: int, item_ids: list[int]) -> dict[int, Any]:
    """Current label of each item (one query for all of them, ``_IN_CHUNK`` ids at a time)."""
    out: dict[int, Any] = {}
    query = _label_query()
    for start in range(0, len(item_ids), _IN_CHUNK):
        params = current_labels_params(project_id, item_ids[start : start + _IN_CHUNK])
        out.update((int(i), lab) for i, lab in session.execute(query, params))
    return out


def _item_classes(session: Session, item_ids: list[int]) -> tuple[int, list[str] | None]:
    """The one project of ``item_ids`` and its classes (one query); bad ids are refused."""
    rows = session.execute(
        select(Item.id, Item.project_id, Project.settings)
        .join(Project, Project.id == Item.project_id)
        .where(Item.id.in_(sorted(set(item_ids))))
    ).all()
    found = {int(r[0]) for r in rows}
    missing = [i for i in item_ids if i not in found]
    if missing:
        raise ValidationError("item_id", f"no item {missing[0]}", "pass an id from the project")
    projects = {int(r[1]) for r in rows}
    if len(projects) > 1:
        raise ValidationError("item_ids", "span several projects", "decide one project at a time")
    settings = rows[0][2] or {}
    return projects.pop(), settings.get("classes")


def _check_decision(
    reviewer: str, labels: Sequence[str], seconds: Sequence[float | None], classes: Any
) -> None:
    if not reviewer or not reviewer.strip():
        raise ValidationError("reviewer", f"got {reviewer!r}", "name who made the decision")
    for value in seconds:
        if value is not None and not value >= 0:
            raise ValidationError("seconds_spent", f"got {value}", "pass seconds >= 0")
    if classes is not None:
        for label in labels:
            if label not in classes:
                raise ValidationError(
                    "new_label",
                    f"{label!r} is not a class of this project",
                    f"pick one of {classes}",
                )


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
    project_id, classes = _item_classes(session, [item_id])
    _check_decision(reviewer, [new_label], [seconds_spent], classes)
    decision = Decision(
        project_id=project_id,
        item_id=item_id,
        task_id=task_id,
        reviewer=reviewer,
        created_at=utcnow(),
        old_label=_current_label_map(session, project_id, [item_id]).get(item_id),
        new_label=new_label,
        reason=reason,
        seconds_spent=seconds_spent,
    )
    session.add(decision)
    session.execute(
        update(ReviewTask)
        .where(ReviewTask.item_id == item_id, ReviewTask.status == "open")
        .values(status="done"),
        execution_options={"synchronize_session": False},
    )
    session.flush()
    return decision


def record_decisions(
    session: Session,
    *,
    item_ids: Sequence[int],
    reviewer: str,
    new_labels: Sequence[str],
    reason: str | None = None,
    task_ids: Sequence[int | None] | None = None,
    seconds_spent: Sequence[float | None] | None = None,
) -> list[int]:
    """Append N decisions in one go (batch accept): the same rows, in the same order, as N
    :func:`record_decision` calls (an item decided twice gets the first new label as the
    second old label), with one current-label query, one ``executemany`` insert and one
    task update per ``_IN_CHUNK`` items. Returns the new decision ids in input order."""
    ids = [int(i) for i in item_ids]
    labels = [str(x) for x in new_labels]
    tasks = [None] * len(ids) if task_ids is None else list(task_ids)
    seconds = [None] * len(ids) if seconds_spent is None else list(seconds_spent)
    if not len(labels) == len(tasks) == len(seconds) == len(ids):
        raise ValidationError(
            "new_labels", f"{len(labels)} labels for {len(ids)} items", "pass one per item"
        )
    if not ids:
        return []
    project_id, classes = _item_classes(session, ids)
    _check_decision(reviewer, labels, seconds, classes)
    current = _current_label_map(session, project_id, sorted(set(ids)))
    now = utcnow()
    rows = []
    for item, label, task, spent in zip(ids, labels, tasks, seconds, strict=True):
        rows.append(
            {
                "project_id": project_id,
                "item_id": item,
                "task_id": task,
                "reviewer": reviewer,
                "created_at": now,
                "old_label": current.get(item),
                "new_label": label,
                "reason": reason,
                "seconds_spent": spent,
                "undoes_id": None,
            }
        )
        current[item] = label
    stmt = insert(Decision).returning(Decision.id, sort_by_parameter_order=True)
    new_ids = [int(i) for i in session.scalars(stmt, rows)]
    unique = sorted(set(ids))
    for start in range(0, len(unique), _IN_CHUNK):
        session.execute(
            update(ReviewTask)
            .where(
                ReviewTask.item_id.in_(unique[start : start + _IN_CHUNK]),
                ReviewTask.status == "open",
            )
            .values(status="done"),
            execution_options={"synchronize_session": False},
        )
    return new_ids


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
    if target.task_id is not None:  # open again, unclaimed
        session.execute(
            update(ReviewTask)
            .where(ReviewTask.id == target.task_id)
            .values(status="open", claimed_by=None, claim_expires_at=None)
        )
    session.flush()
    return undo


def decision_history(session: Session, *, item_id: int) -> list[Decision]:
    """Every decision on an item, oldest first (undos included)."""
    stmt = select(Decision).where(Decision.item_id == item_id).order_by(Decision.id)
    return list(session.scalars(stmt))
