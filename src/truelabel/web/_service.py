"""What pages and the API show, built from the store's functions (no SQL writes here other
than through ``record_decision`` / ``undo_decision``): task views with the model's top
classes, per-class issue rates, item search, decisions and batch accept."""

from __future__ import annotations

from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..exceptions import ValidationError
from ._context import add_context, label_rows
from ._deps import WebContext

__all__ = [
    "ACTIONS",
    "batch_accept",
    "class_issue_rates",
    "decide",
    "item_view",
    "latest_audit",
    "search_items",
    "task_views",
]

#: what a reviewer can do with a task
ACTIONS = ("accept", "keep", "relabel", "skip")


def latest_audit(session: Session, project_id: int) -> Any:
    """The newest finished audit run of the project (None before the first audit)."""
    from ..store import Run

    stmt = (
        select(Run)
        .where(Run.project_id == project_id, Run.kind == "audit", Run.status == "finished")
        .order_by(Run.id.desc())
        .limit(1)
    )
    return session.scalar(stmt)


def _pred_probs(ctx: WebContext, run_id: int | None) -> np.ndarray | None:
    """The run's ``pred_probs.npy`` (rows in item position order), memory-mapped, cached."""
    if run_id is None:
        return None
    key = f"pred_probs:{run_id}"
    if key not in ctx.cache:
        path = ctx.handle.path / "runs" / str(run_id) / "pred_probs.npy"
        ctx.cache[key] = np.load(path, mmap_mode="r") if path.is_file() else None
    probs: np.ndarray | None = ctx.cache[key]
    return probs


def _top_classes(
    probs: np.ndarray | None, position: int, classes: list[str], k: int = 3
) -> list[dict[str, Any]]:
    if probs is None or position >= probs.shape[0] or probs.shape[1] != len(classes):
        return []
    row = np.asarray(probs[position], dtype=np.float64)
    order = np.lexsort((np.arange(row.size), -row))[:k]
    return [{"label": classes[j], "probability": round(float(row[j]), 4)} for j in order]


def task_views(session: Session, ctx: WebContext, tasks: list[Any]) -> list[dict[str, Any]]:
    """One dict per task: item, given and current label, suggestion, top classes, reasons,
    and its context (nearest neighbours, near-duplicates, why it was flagged in words)."""

    if not tasks:
        return []
    rows = label_rows(session, ctx.project_id, [int(t.item_id) for t in tasks])
    run = latest_audit(session, ctx.project_id)
    probs = _pred_probs(ctx, None if run is None else run.id)
    out = []
    every: list[dict[str, float] | None] = []
    for task in tasks:
        row = rows[int(task.item_id)]
        every.append(_probabilities(probs, int(row["position"]), ctx.classes))
        out.append(
            {
                "task_id": task.id,
                "task_status": task.status,
                "item_id": int(task.item_id),
                "external_id": row["external_id"],
                "content": row["content"],
                "content_kind": ctx.handle.content_kind,
                "given_label": row["original_label"],
                "current_label": row["label"],
                "suggested_label": task.suggested_label,
                "priority": float(task.priority),
                "reasons": [str(r.get("reason", "")) for r in task.reasons or []],
                "top_classes": _top_classes(probs, int(row["position"]), ctx.classes),
            }
        )
    add_context(session, ctx, out, run_id=None if run is None else run.id, probabilities=every)
    return out


def _probabilities(
    probs: np.ndarray | None, position: int, classes: list[str]
) -> dict[str, float] | None:
    if probs is None or position >= probs.shape[0] or probs.shape[1] != len(classes):
        return None
    row = np.asarray(probs[position], dtype=np.float64)
    return {c: float(p) for c, p in zip(classes, row.tolist(), strict=True)}


def item_view(session: Session, ctx: WebContext, item_id: int) -> dict[str, Any] | None:
    """The review view of one item (None: not in this project): its open task if it has
    one, else its latest task (done or superseded), else the item alone (no task)."""
    from types import SimpleNamespace

    from ..store import Item, ReviewTask

    item = session.get(Item, item_id)
    if item is None or item.project_id != ctx.project_id:
        return None
    stmt = (
        select(ReviewTask)
        .where(ReviewTask.item_id == item_id, ReviewTask.project_id == ctx.project_id)
        .order_by((ReviewTask.status == "open").desc(), ReviewTask.id.desc())
        .limit(1)
    )
    task: Any = session.scalar(stmt)
    if task is None:
        task = SimpleNamespace(
            id=None, item_id=item_id, status=None, suggested_label=None, priority=0.0, reasons=[]
        )
    return task_views(session, ctx, [task])[0]


def class_issue_rates(session: Session, ctx: WebContext) -> list[dict[str, Any]]:
    """Per given (original) class: items, items flagged by the latest audit, their share."""
    from ..store import Annotation, Issue, LabelSource

    origin = (
        select(Annotation.item_id, Annotation.label)
        .join(LabelSource, LabelSource.id == Annotation.source_id)
        .where(LabelSource.project_id == ctx.project_id, LabelSource.kind == "original")
        .subquery()
    )
    totals: dict[Any, Any] = dict(
        session.execute(select(origin.c.label, func.count()).group_by(origin.c.label)).all()
    )
    flagged: dict[str, int] = {}
    run = latest_audit(session, ctx.project_id)
    if run is not None:
        stmt = (
            select(origin.c.label, func.count(func.distinct(Issue.item_id)))
            .join(Issue, Issue.item_id == origin.c.item_id)
            .where(Issue.run_id == run.id)
            .group_by(origin.c.label)
        )
        flagged = {str(k): int(n) for k, n in session.execute(stmt)}
    rows = []
    for label in ctx.classes:
        n = int(totals.get(label, 0))
        f = flagged.get(label, 0)
        rows.append({"label": label, "items": n, "flagged": f, "rate": f / n if n else 0.0})
    return rows


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def search_items(
    session: Session, ctx: WebContext, *, q: str = "", label: str | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    """Items whose text or id contains ``q`` (case-insensitive), optionally with current
    label ``label``; position order, at most ``limit``."""
    from ..store import Item

    stmt = select(Item.id).where(Item.project_id == ctx.project_id)
    if q:
        pattern = _like(q)
        stmt = stmt.where(
            Item.content.ilike(pattern, escape="\\") | Item.external_id.ilike(pattern, escape="\\")
        )
    ids: list[int] = []
    batch = 1000
    offset = 0
    while len(ids) < limit:  # the label filter is applied on current labels, page by page
        page = list(session.scalars(stmt.order_by(Item.position).offset(offset).limit(batch)))
        if not page:
            break
        offset += batch
        if label is None:
            ids.extend(page)
            continue
        labels = label_rows(session, ctx.project_id, page)
        ids.extend(i for i in page if labels[i]["label"] == label)
    rows = label_rows(session, ctx.project_id, ids[:limit])
    cols = ["item_id", "external_id", "content", "label", "label_source", "labeled_by"]
    return [{c: rows[i][c] for c in cols} for i in ids[:limit]]


def decide(
    session: Session,
    ctx: WebContext,
    *,
    task_id: int,
    action: str,
    reviewer: str,
    label: str | None = None,
    seconds_spent: float | None = None,
) -> Any:
    """Apply a reviewer's action to an open task (inside the caller's write transaction).

    ``accept``: the suggested label; ``keep``: the current label stays (recorded as a
    decision); ``relabel``: ``label``; ``skip``: nothing is recorded (returns None)."""
    from ..store import ReviewTask, check_claim, record_decision, release_claim

    if action not in ACTIONS:
        raise ValidationError("action", f"got {action!r}", f"pass one of {', '.join(ACTIONS)}")
    # the task row is locked (PostgreSQL: FOR UPDATE; SQLite: the write transaction is
    # already exclusive), so two reviewers deciding one task at once cannot both succeed
    task = session.get(ReviewTask, task_id, with_for_update=True)
    if task is None or task.project_id != ctx.project_id:
        raise ValidationError("task_id", f"no task {task_id}", "pass an id from /api/tasks/next")
    if task.status != "open":
        raise ValidationError(
            "task_id", f"task {task_id} is {task.status}", "fetch the next open tasks"
        )
    check_claim(task, reviewer)  # another reviewer's live claim: refused
    if action == "skip":  # given back: someone else can take it now
        release_claim(session, task_id=task.id, reviewer=reviewer)
        return None
    if action == "accept":
        if task.suggested_label is None:
            raise ValidationError(
                "action", f"task {task_id} has no suggested label", "keep or relabel"
            )
        new_label = task.suggested_label
    elif action == "keep":
        new_label = label_rows(session, ctx.project_id, [task.item_id])[task.item_id]["label"]
        if new_label is None:
            raise ValidationError("action", "the item has no label to keep", "relabel it")
    else:
        if label is None:
            raise ValidationError("label", "missing for relabel", f"pick one of {ctx.classes}")
        new_label = label
    return record_decision(
        session,
        item_id=task.item_id,
        reviewer=reviewer,
        new_label=str(new_label),
        reason=action,
        seconds_spent=seconds_spent,
        task_id=task.id,
    )


def batch_accept(
    session: Session,
    ctx: WebContext,
    *,
    reviewer: str,
    issue_text: str | None = None,
    suggested_label: str | None = None,
    min_priority: float = 0.0,
    limit: int = 10_000,
) -> list[int]:
    """Accept the suggestion of every open task matching the filter (tasks with a suggestion,
    priority >= ``min_priority``, suggesting ``suggested_label``, a reason containing
    ``issue_text``; not under another reviewer's live claim), in the caller's one
    transaction, as one bulk insert (``record_decisions``). Returns the decision ids."""
    from ..store import ReviewTask, free_for, record_decisions
    from ..store._models import utcnow

    stmt = (
        select(ReviewTask)
        .where(
            ReviewTask.project_id == ctx.project_id,
            ReviewTask.status == "open",
            ReviewTask.suggested_label.is_not(None),
            ReviewTask.priority >= min_priority,
            free_for(reviewer, utcnow()),  # tasks another reviewer holds are left to them
        )
        .order_by(ReviewTask.priority.desc(), ReviewTask.id)
        .with_for_update()
    )
    if suggested_label is not None:
        stmt = stmt.where(ReviewTask.suggested_label == suggested_label)
    chosen: list[Any] = []
    for task in session.scalars(stmt):
        if len(chosen) >= limit:
            break
        words = " ".join(str(r.get("reason", "")) for r in task.reasons or [])
        if issue_text and issue_text.lower() not in words.lower():
            continue
        chosen.append(task)
    return record_decisions(
        session,
        item_ids=[int(t.item_id) for t in chosen],
        reviewer=reviewer,
        new_labels=[str(t.suggested_label) for t in chosen],
        reason="batch accept",
        task_ids=[int(t.id) for t in chosen],
    )
