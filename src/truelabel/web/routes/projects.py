"""``/api/project``: the project summary, queue counts and issue rate per class."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy import func, select

from .._deps import ContextDep, SessionDep, UserDep
from .._schemas import ProgressPublic, ProjectPublic
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


def decision_times(session: Any, ctx: Any) -> Any:
    """When each decision (not an undo) was made."""
    from ...store import decision_log

    log = decision_log(session, project_id=ctx.project_id)
    return log.loc[log["undoes_id"].isna(), "created_at"]


@router.get("/project/progress", response_model=ProgressPublic)
def get_progress(ctx: ContextDep, session: SessionDep, user: UserDep) -> Any:
    """Decisions (undos left out) per hour when they span at most 48 hours, per day up to
    120 days, else per week; empty buckets included."""
    from .._charts import progress_buckets

    unit, starts, counts = progress_buckets(decision_times(session, ctx))
    buckets = [
        {"start": t.to_pydatetime(), "decisions": n} for t, n in zip(starts, counts, strict=True)
    ]
    return {"unit": unit, "buckets": buckets}


@router.get("/project", response_model=ProjectPublic)
def get_project_summary(ctx: ContextDep, session: SessionDep, user: UserDep) -> Any:
    """Counts of items, tasks per status and decisions; per class, the share flagged by the
    latest audit."""
    return project_summary(session, ctx)
