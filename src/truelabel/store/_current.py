"""The derived current label of every item, with its provenance (one SQL query).

Precedence, first that exists wins:

1. **reviewed**: the item's latest decision (highest id) that is neither an undo nor undone;
2. **auto-labeled**: its latest annotation from a ``model`` source with ``accepted`` true
   (a certified auto-label);
3. **consensus**: its latest annotation from a ``consensus`` source;
4. **original**: its latest annotation from the ``original`` source (the imported label);
5. otherwise no label (``label`` and ``label_source`` are null).

Annotations from ``annotator`` and ``rule`` sources never set the current label directly:
they feed the consensus, which does.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from typing import Any

import pandas as pd
from sqlalchemy import Select, and_, bindparam, case, exists, func, literal, select, true
from sqlalchemy.orm import Session, aliased

from ._models import Annotation, Decision, Item, LabelSource

__all__ = [
    "PRECEDENCE",
    "current_label_chunks",
    "current_labels",
    "current_labels_params",
    "current_labels_query",
]

#: label_source values, highest precedence first
PRECEDENCE = ("reviewed", "auto-labeled", "consensus", "original")


def _latest_annotation(project_id: Any, kind: str, ids: Any, *, accepted_only: bool = False) -> Any:
    a, s = Annotation, LabelSource
    latest = (
        select(a.item_id.label("item_id"), func.max(a.id).label("aid"))
        .join(s, s.id == a.source_id)
        .where(s.project_id == project_id, s.kind == kind)
    )
    if ids is not None:  # filtered inside, so one item's label reads a few index rows
        latest = latest.where(a.item_id.in_(ids))
    if accepted_only:
        latest = latest.where(a.accepted == true())
    latest_sq = latest.group_by(a.item_id).subquery()
    a2, s2 = aliased(Annotation), aliased(LabelSource)
    return (
        select(
            latest_sq.c.item_id,
            a2.label.label("label"),
            s2.name.label("by"),
            a2.created_at.label("at"),
        )
        .join(a2, a2.id == latest_sq.c.aid)
        .join(s2, s2.id == a2.source_id)
        .subquery()
    )


def _latest_decision(project_id: Any, ids: Any) -> Any:
    d, undo = aliased(Decision), aliased(Decision)
    # a few items: through the item_id index (``+ 0`` keeps SQLite off the project index,
    # which would read every decision of the project)
    in_project = (
        d.project_id == project_id if ids is None else d.project_id + literal(0) == project_id
    )
    latest = select(d.item_id.label("item_id"), func.max(d.id).label("did")).where(
        in_project,
        # not ``undoes_id IS NULL``: on that UNIQUE index SQLite's planner expects one row
        # and scans every decision of the project instead of the few of ``ids`` (ids >= 1)
        func.coalesce(d.undoes_id, 0) == 0,
        ~exists().where(undo.undoes_id == d.id),
    )
    if ids is not None:
        latest = latest.where(d.item_id.in_(ids))
    live = latest.group_by(d.item_id).subquery()
    d2 = aliased(Decision)
    return (
        select(
            live.c.item_id,
            d2.new_label.label("label"),
            d2.reviewer.label("by"),
            d2.created_at.label("at"),
            d2.id.label("decision_id"),
        )
        .join(d2, d2.id == live.c.did)
        .subquery()
    )


def current_labels_params(project_id: int, item_ids: Sequence[int] | None = None) -> dict[str, Any]:
    """The parameters of :func:`current_labels_query` for a project (and some items)."""
    params: dict[str, Any] = {"project_id": int(project_id)}
    if item_ids is not None:
        params["item_ids"] = [int(i) for i in item_ids]
    return params


@functools.cache
def current_labels_query(filtered: bool = False) -> Select[Any]:
    """The SELECT behind :func:`current_labels` (one row per item, position order), built
    once: run it with :func:`current_labels_params` (``project_id``, and ``item_ids`` when
    ``filtered``); SQLAlchemy then reuses its compiled SQL."""
    project_id: Any = bindparam("project_id")
    ids: Any = bindparam("item_ids", expanding=True) if filtered else None
    rev = _latest_decision(project_id, ids)
    auto = _latest_annotation(project_id, "model", ids, accepted_only=True)
    cons = _latest_annotation(project_id, "consensus", ids)
    orig = _latest_annotation(project_id, "original", ids)
    layers = (("reviewed", rev), ("auto-labeled", auto), ("consensus", cons), ("original", orig))
    present = [(name, sq.c.item_id.is_not(None)) for name, sq in layers]
    stmt = select(
        Item.id.label("item_id"),
        Item.position,
        Item.external_id,
        Item.content,
        func.coalesce(*(sq.c.label for _, sq in layers)).label("label"),
        case(*((cond, name) for name, cond in present), else_=None).label("label_source"),
        case(*((cond, sq.c.by) for (_, cond), (_, sq) in zip(present, layers, strict=True))).label(
            "labeled_by"
        ),
        case(*((cond, sq.c.at) for (_, cond), (_, sq) in zip(present, layers, strict=True))).label(
            "labeled_at"
        ),
        orig.c.label.label("original_label"),
        rev.c.label.label("reviewed_label"),
        rev.c.by.label("reviewed_by"),
        rev.c.at.label("reviewed_at"),
        auto.c.label.label("autolabel_label"),
        auto.c.by.label("autolabel_model"),
        auto.c.at.label("autolabel_at"),
        cons.c.label.label("consensus_label"),
        cons.c.by.label("consensus_by"),
        cons.c.at.label("consensus_at"),
    ).order_by(Item.position)
    for _, sq in layers:
        stmt = stmt.outerjoin(sq, and_(sq.c.item_id == Item.id))
    if ids is None:
        return stmt.where(Item.project_id == project_id)
    # a few items: by primary key. ``project_id + 0`` keeps SQLite off the (project_id,
    # position) index, which it prefers for the ORDER BY and which reads every item
    return stmt.where(Item.id.in_(ids), (Item.project_id + literal(0)) == project_id)


def _iso(values: pd.Series) -> pd.Series:
    """Timestamps as ISO 8601 UTC strings (None where missing). SQLite keeps no zone: the
    store writes UTC only, so naive values are UTC."""
    stamps = pd.to_datetime(values, utc=True, format="mixed")
    text = stamps.dt.strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")
    return text.astype(object).where(stamps.notna(), None)


def _frame(rows: Sequence[Any], columns: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=columns)
    for col in ("labeled_at", "reviewed_at", "autolabel_at", "consensus_at"):
        frame[col] = _iso(frame[col])
    for col in frame.columns.drop(["item_id", "position"]):
        frame[col] = frame[col].astype(object).where(frame[col].notna(), None)
    return frame


def current_label_chunks(
    session: Session, *, project_id: int, chunk_rows: int = 50_000
) -> Iterator[pd.DataFrame]:
    """:func:`current_labels` of a whole project in consecutive frames of ``chunk_rows``
    items (streamed from the database: memory O(chunk), whatever the project's size)."""
    query = current_labels_query(False).execution_options(yield_per=chunk_rows)
    result = session.execute(query, current_labels_params(project_id))
    columns = list(result.keys())
    for rows in result.partitions():
        yield _frame(rows, columns)


def current_labels(
    session: Session, *, project_id: int, item_ids: Sequence[int] | None = None
) -> pd.DataFrame:
    """One row per item (position order): ``label`` and ``label_source`` (see the module
    docstring for the precedence), who set it and when (``labeled_by``, ``labeled_at``), and
    each layer's own label, author and time. Timestamps are ISO 8601 UTC strings."""
    query = current_labels_query(item_ids is not None)
    result = session.execute(query, current_labels_params(project_id, item_ids))
    return _frame(result.fetchall(), list(result.keys()))
