"""What a reviewer sees around an item: its nearest labeled neighbours and near-duplicates
(from the audit run's stored context) and why it was flagged, in words."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

__all__ = ["CONTENT_CHARS", "add_context", "label_rows"]

#: neighbour texts are cut to this many characters
CONTENT_CHARS = 300


def _brief(row: Any, kind: str) -> dict[str, Any]:
    content = row["content"]
    if content is not None and kind != "image" and len(content) > CONTENT_CHARS:
        content = content[:CONTENT_CHARS] + "…"
    return {
        "item_id": int(row["item_id"]),
        "external_id": row["external_id"],
        "content": content,
        "label": row["label"],
    }


def label_rows(session: Session, project_id: int, item_ids: list[int]) -> dict[int, Any]:
    """The current-label rows of a few items by id (the store's one query, without building
    a DataFrame: a page needs a handful of rows, fast)."""
    from ..store import current_labels_params, current_labels_query

    params = current_labels_params(project_id, item_ids)
    rows = session.execute(current_labels_query(True), params).mappings()
    return {int(r["item_id"]): r for r in rows}


def add_context(
    session: Session,
    ctx: Any,
    views: list[dict[str, Any]],
    *,
    run_id: int | None,
    probabilities: list[dict[str, float] | None],
) -> None:
    """Fill ``neighbors``, ``duplicates`` and ``explanation`` of each view in place (one
    context query, one near-duplicate query when any, one current-label query)."""
    from ..review import explain_item
    from ..store import item_context

    found: dict[int, Any] = {}
    if run_id is not None:
        found = item_context(session, run_id=run_id, item_ids=[v["item_id"] for v in views])
    wanted = sorted({i for c in found.values() for i in (*c["neighbors"], *c["duplicates"])})
    rows = label_rows(session, ctx.project_id, wanted) if wanted else {}
    kind = ctx.handle.content_kind
    for view, probs in zip(views, probabilities, strict=True):
        context = found.get(view["item_id"], {"neighbors": [], "duplicates": []})
        view["neighbors"] = [_brief(rows[i], kind) for i in context["neighbors"] if i in rows]
        view["duplicates"] = [_brief(rows[i], kind) for i in context["duplicates"] if i in rows]
        view["explanation"] = explain_item(
            label=view["current_label"],
            probabilities=probs,
            neighbor_labels=[n["label"] for n in view["neighbors"]],
            duplicate_labels=[d["label"] for d in view["duplicates"]],
        )
