"""``/api/items``: search; an item's image; ``/media``: files under the project's data root
only (``..``, absolute paths and symlinks leading out are refused)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import FileResponse

from .._deps import ContextDep, SessionDep, UserDep
from .._schemas import ItemPublic, ItemReviewPublic
from .._security import resolve_inside
from .._service import item_view, search_items

router = APIRouter(tags=["items"])


@router.get("/api/items", response_model=list[ItemPublic])
def get_items(
    ctx: ContextDep,
    session: SessionDep,
    user: UserDep,
    q: Annotated[str, Query(max_length=200)] = "",
    label: Annotated[str | None, Query(max_length=255)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Any:
    """Items whose text or id contains ``q``, optionally with current label ``label``."""
    return search_items(session, ctx, q=q, label=label, limit=limit)


@router.get("/api/items/{item_id}", response_model=ItemReviewPublic)
def get_item(item_id: int, ctx: ContextDep, session: SessionDep, user: UserDep) -> Any:
    """One item as the review page shows it: labels, its open (else latest) task, the
    model's top classes, why it was flagged in words, nearest neighbours, near-duplicates."""
    view = item_view(session, ctx, item_id)
    if view is None:
        raise HTTPException(404, f"no item {item_id}")
    return view


def _file(ctx: Any, relative: str) -> FileResponse:
    target = resolve_inside(ctx.data_root, relative)
    if target is None:
        raise HTTPException(404, "no such file under the project's data root")
    return FileResponse(target, headers={"X-Content-Type-Options": "nosniff"})


@router.get("/api/items/{item_id}/image")
def get_item_image(item_id: int, ctx: ContextDep, session: SessionDep, user: UserDep) -> Any:
    """The image file of an image item (from inside the data root only)."""
    from ...store import Item

    item = session.get(Item, item_id)
    if item is None or item.project_id != ctx.project_id or ctx.handle.content_kind != "image":
        raise HTTPException(404, f"no image item {item_id}")
    return _file(ctx, item.content or "")


@router.get("/media/{path:path}")
def get_media(path: str, ctx: ContextDep, user: UserDep) -> Any:
    """A file under the project's data root."""
    return _file(ctx, path)
