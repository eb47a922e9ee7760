"""``/api/annotators``: per reviewer statistics and recent decisions. Admins see everyone;
a reviewer sees their own row only."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException

from .._annotators import annotator_rows, recent_for
from .._deps import ContextDep, Principal, SessionDep, UserDep
from .._schemas import AnnotatorDetailPublic, AnnotatorPublic

router = APIRouter(prefix="/api", tags=["annotators"])


def visible(user: Principal, name: str | None = None) -> str | None:
    """Whose rows the user may see: None = everyone (admins), else their own name; a
    reviewer asking for someone else gets 403."""
    if user.role == "admin":
        return None
    if name is not None and name != user.name:
        raise HTTPException(403, "reviewers see their own statistics only")
    return user.name


@router.get("/annotators", response_model=list[AnnotatorPublic])
def get_annotators(ctx: ContextDep, session: SessionDep, user: UserDep) -> Any:
    """Per reviewer: live decisions, undone, undos, shares accepted / kept / changed, median
    seconds per decision, agreement with other reviewers and with the consensus labels."""
    return annotator_rows(session, ctx, only=visible(user))


@router.get("/annotators/{name:path}", response_model=AnnotatorDetailPublic)
def get_annotator(name: str, ctx: ContextDep, session: SessionDep, user: UserDep) -> Any:
    """One reviewer's statistics and 20 latest decisions (newest first)."""
    visible(user, name)
    rows = annotator_rows(session, ctx, only=name)
    if not rows:
        raise HTTPException(404, f"no decisions by {name!r}")
    return {"stats": rows[0], "recent": recent_for(session, ctx, name)}
