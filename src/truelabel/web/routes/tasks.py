"""``/api/tasks`` and ``/api/decisions``: the queue, decisions, undo, history, batch accept.
Every change is one write transaction through the store's append-only functions."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query

from .._deps import AdminDep, ContextDep, SessionDep, UserDep
from .._schemas import (
    BatchAcceptCreate,
    BatchAcceptPublic,
    DecisionCreate,
    DecisionPublic,
    TaskPublic,
    UndoCreate,
)
from .._service import batch_accept, decide, task_views

router = APIRouter(prefix="/api", tags=["review"])


@router.get("/tasks/next", response_model=list[TaskPublic])
def get_next_tasks(
    ctx: ContextDep,
    user: UserDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 10,
    exclude: Annotated[list[int] | None, Query(description="task ids to leave out")] = None,
) -> Any:
    """Your next open tasks, highest priority first, with the item, its labels, the model's
    top classes and why it was flagged (``exclude``: tasks skipped in this sitting). The
    batch is claimed for you (a lease of ``truelabel.store.LEASE_SECONDS``): other reviewers
    get other tasks meanwhile; asking again returns the tasks you still hold first."""
    from ...store import next_tasks

    with ctx.store.write(durable=False) as session:  # a claim is worth no fsync
        tasks = next_tasks(
            session,
            project_id=ctx.project_id,
            limit=limit,
            reviewer=user.name,
            exclude=exclude or [],
        )
        return task_views(session, ctx, tasks)


@router.post("/decisions", response_model=DecisionPublic | None)
def post_decision(body: DecisionCreate, ctx: ContextDep, user: UserDep) -> Any:
    """Accept the suggestion, keep the current label, relabel, or skip (nothing recorded,
    returns null). The decision is committed before the answer is sent."""
    with ctx.store.write() as session:
        return decide(
            session,
            ctx,
            task_id=body.task_id,
            action=body.action,
            reviewer=user.name,
            label=body.label,
            seconds_spent=body.seconds_spent,
        )


@router.post("/decisions/undo", response_model=DecisionPublic)
def post_undo(body: UndoCreate, ctx: ContextDep, user: UserDep) -> Any:
    """Append an undo of a decision (reviewers undo their own; admins any)."""
    from ...store import Decision, undo_decision

    with ctx.store.write() as session:
        target = session.get(Decision, body.decision_id)
        if target is None or target.project_id != ctx.project_id:
            raise HTTPException(404, f"no decision {body.decision_id}")
        if user.role != "admin" and target.reviewer != user.name:
            raise HTTPException(403, "reviewers can undo only their own decisions")
        return undo_decision(session, decision_id=body.decision_id, reviewer=user.name)


@router.get("/items/{item_id}/history", response_model=list[DecisionPublic])
def get_history(item_id: int, ctx: ContextDep, session: SessionDep, user: UserDep) -> Any:
    """Every decision on an item, oldest first (undos included)."""
    from ...store import Item, decision_history

    item = session.get(Item, item_id)
    if item is None or item.project_id != ctx.project_id:
        raise HTTPException(404, f"no item {item_id}")
    return decision_history(session, item_id=item_id)


@router.post("/tasks/batch-accept", response_model=BatchAcceptPublic)
def post_batch_accept(body: BatchAcceptCreate, ctx: ContextDep, user: AdminDep) -> Any:
    """Accept the suggestion of every open task matching the filter, in one transaction
    (all or none). Admins only."""
    with ctx.store.write() as session:
        ids = batch_accept(
            session,
            ctx,
            reviewer=user.name,
            issue_text=body.issue_text,
            suggested_label=body.suggested_label,
            min_priority=body.min_priority,
            limit=body.limit,
        )
    return {"accepted": len(ids), "decision_ids": ids}
