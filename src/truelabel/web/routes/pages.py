"""Server-rendered pages (Jinja2, autoescaped): dashboard, review, search, login."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse

from .._deps import ContextDep, SessionDep, UserDep, expected_csrf
from .._service import item_view, search_items, task_views
from .projects import project_summary

router = APIRouter(include_in_schema=False)


def _render(request: Request, ctx: Any, name: str, **values: Any) -> HTMLResponse:
    values.setdefault("user", getattr(request.state, "principal", None))
    return ctx.templates.TemplateResponse(
        request,
        name,
        {
            "csrf": expected_csrf(request, ctx),
            "project": ctx.handle.name,
            "team": ctx.settings.team,
            **values,
        },
    )


@router.get("/", response_class=HTMLResponse)
def dashboard(request: Request, ctx: ContextDep, session: SessionDep, user: UserDep) -> Any:
    from .._charts import dashboard_charts
    from .projects import decision_times

    summary = project_summary(session, ctx)
    charts = dashboard_charts(decision_times(session, ctx), summary["class_rates"])
    return _render(request, ctx, "dashboard.html", summary=summary, charts=charts)


@router.get("/review", response_class=HTMLResponse)
def review(request: Request, ctx: ContextDep, session: SessionDep, user: UserDep) -> Any:
    from ...store import next_tasks

    with ctx.store.write(
        durable=False
    ) as writer:  # the page's task is claimed, like /api/tasks/next
        batch = next_tasks(writer, project_id=ctx.project_id, limit=1, reviewer=user.name)
        tasks = task_views(writer, ctx, batch)
    return _render(
        request, ctx, "review.html", task=tasks[0] if tasks else None, classes=ctx.classes
    )


@router.get("/items/{item_id}", response_class=HTMLResponse)
def item_page(
    item_id: int, request: Request, ctx: ContextDep, session: SessionDep, user: UserDep
) -> Any:
    """One item's review page (the audit report links here); after a decision the page
    goes on with the queue."""
    view = item_view(session, ctx, item_id)
    if view is None:
        raise HTTPException(404, f"no item {item_id}")
    return _render(request, ctx, "review.html", task=view, classes=ctx.classes, item_id=item_id)


@router.get("/annotators", response_class=HTMLResponse)
def annotators(request: Request, ctx: ContextDep, session: SessionDep, user: UserDep) -> Any:
    from .._annotators import annotator_rows
    from .annotators import visible

    rows = annotator_rows(session, ctx, only=visible(user))
    return _render(request, ctx, "annotators.html", rows=rows)


@router.get("/annotators/{name:path}", response_class=HTMLResponse)
def annotator(
    name: str, request: Request, ctx: ContextDep, session: SessionDep, user: UserDep
) -> Any:
    from .._annotators import annotator_rows, recent_for
    from .annotators import visible

    visible(user, name)
    rows = annotator_rows(session, ctx, only=name)
    if not rows:
        raise HTTPException(404, f"no decisions by {name!r}")
    recent = recent_for(session, ctx, name)
    return _render(request, ctx, "annotator.html", row=rows[0], recent=recent)


@router.get("/search", response_class=HTMLResponse)
def search(
    request: Request,
    ctx: ContextDep,
    session: SessionDep,
    user: UserDep,
    q: Annotated[str, Query(max_length=200)] = "",
    label: Annotated[str, Query(max_length=255)] = "",
) -> Any:
    items = search_items(session, ctx, q=q, label=label or None, limit=100)
    return _render(request, ctx, "search.html", items=items, q=q, label=label, classes=ctx.classes)


@router.get("/login", response_class=HTMLResponse)
def login(request: Request, ctx: ContextDep, failed: int = 0, next: str = "/") -> Any:
    return _render(request, ctx, "login.html", failed=bool(failed), next=next, user=None)
