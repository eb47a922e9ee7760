"""``/api/project``: the project summary, queue counts and issue rate per class."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy import func, select

from .._deps import ContextDep, SessionDep, UserDep
from .._schemas import ProjectPublic
from .._service import class_issue_rates, latest_audit

router = APIRouter(prefix="/api", tags=["project"])


def project_summary(session: Any, ctx: Any) -> dict[str, Any]:
    from ...store import Decision, Item, queue_counts

    pid = ctx.project_id
    run = latest_audit(session, pid)
    return {
        "name": ctx.handle.name,
        "content_kind": ctx.handle.content_kind,
        "classes": ctx.classes,
        "n_items": session.scalar(select(func.count()).where(Item.project_id == pid)),
        "queue": queue_counts(session, project_id=pid),
        "decisions": session.scalar(select(func.count()).where(Decision.project_id == pid)),
        "latest_audit_run": None if run is None else run.id,
        "class_rates": class_issue_rates(session, ctx),
    }


@router.get("/project", response_model=ProjectPublic)
def get_project_summary(ctx: ContextDep, session: SessionDep, user: UserDep) -> Any:
    """Counts of items, tasks per status and decisions; per class, the share flagged by the
    latest audit."""
    return project_summary(session, ctx)
