"""Projects, label sources, items and annotations (keyword-only functions taking a Session)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..exceptions import ValidationError
from ._bulk import CHUNK_ROWS, insert_columns
from ._models import CONTENT_KINDS, SOURCE_KINDS, Annotation, Item, LabelSource, Project, utcnow

__all__ = [
    "add_annotations",
    "create_project",
    "get_label_source",
    "get_project",
    "import_items",
    "item_ids_by_position",
    "text_hash",
]


def text_hash(text: str) -> str:
    """blake2b-128 hex of the text's UTF-8 bytes (the items' ``content_hash``)."""
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()


def create_project(
    session: Session,
    *,
    name: str,
    content_kind: str,
    settings: dict[str, Any] | None = None,
) -> Project:
    """Add a project; a name already used is refused."""
    if content_kind not in CONTENT_KINDS:
        raise ValidationError(
            "content_kind", f"got {content_kind!r}", f"pass one of {', '.join(CONTENT_KINDS)}"
        )
    if session.scalar(select(Project.id).where(Project.name == name)) is not None:
        raise ValidationError(
            "name",
            f"a project named {name!r} already exists in this database",
            "pick another name (truelabel init --name NAME)",
        )
    project = Project(
        name=name, content_kind=content_kind, settings=dict(settings or {}), created_at=utcnow()
    )
    session.add(project)
    session.flush()
    return project


def get_project(session: Session, *, name: str) -> Project:
    """The project called ``name`` (a ValidationError listing the known ones if none)."""
    project = session.scalar(select(Project).where(Project.name == name))
    if project is None:
        known = session.scalars(select(Project.name).order_by(Project.name)).all()
        raise ValidationError(
            "project",
            f"no project named {name!r} in this database",
            f"pick one of: {', '.join(known)}" if known else "create it with `truelabel init`",
        )
    return project


def get_label_source(session: Session, *, project_id: int, kind: str, name: str) -> LabelSource:
    """The label source (kind, name) of the project, created on first use."""
    if kind not in SOURCE_KINDS:
        raise ValidationError("kind", f"got {kind!r}", f"pass one of {', '.join(SOURCE_KINDS)}")
    source = session.scalar(
        select(LabelSource).where(
            LabelSource.project_id == project_id, LabelSource.kind == kind, LabelSource.name == name
        )
    )
    if source is None:
        source = LabelSource(project_id=project_id, kind=kind, name=name)
        session.add(source)
        session.flush()
    return source


def import_items(
    session: Session,
    *,
    project_id: int,
    external_ids: Sequence[str],
    contents: Sequence[str | None] | None = None,
    content_hashes: Sequence[str | None] | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> np.ndarray:
    """Append items (batched); returns their ids in input order, shape ``(n_items,)``.

    ``position`` continues after the project's last item. Duplicate external ids are
    refused before anything is written.
    """
    n = len(external_ids)
    ids = np.asarray(external_ids, dtype=object).astype(str)
    uniq, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        dup = uniq[counts > 1][:3].tolist()
        raise ValidationError(
            "id_col", f"item ids repeat (e.g. {dup})", "give every item a unique id"
        )
    for name, col in (("contents", contents), ("content_hashes", content_hashes)):
        if col is not None and len(col) != n:
            raise ValidationError(name, f"has {len(col)} values, expected {n}", "one per item")
    last = session.scalar(select(func.max(Item.position)).where(Item.project_id == project_id))
    first = 0 if last is None else int(last) + 1
    insert_columns(
        session,
        Item.__table__,
        {
            "project_id": project_id,
            "position": np.arange(first, first + n, dtype=np.int64),
            "external_id": ids,
            "content": list(contents) if contents is not None else None,
            "content_hash": list(content_hashes) if content_hashes is not None else None,
        },
        n_rows=n,
        chunk_rows=chunk_rows,
    )
    return item_ids_by_position(session, project_id=project_id, start=first, stop=first + n)


def item_ids_by_position(
    session: Session, *, project_id: int, start: int = 0, stop: int | None = None
) -> np.ndarray:
    """Item ids of positions ``start..stop-1``, in position order."""
    stmt = select(Item.id).where(Item.project_id == project_id, Item.position >= start)
    if stop is not None:
        stmt = stmt.where(Item.position < stop)
    return np.fromiter(session.scalars(stmt.order_by(Item.position)), dtype=np.int64)


def add_annotations(
    session: Session,
    *,
    source_id: int,
    item_ids: np.ndarray | Sequence[int],
    labels: Sequence[str | None] | np.ndarray,
    confidences: np.ndarray | Sequence[float] | None = None,
    accepted: np.ndarray | Sequence[bool] | None = None,
    run_id: int | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> int:
    """Append one annotation per labelled item (missing labels, None or "", are skipped).

    Returns the number of rows written.
    """
    item_ids = np.asarray(item_ids, dtype=np.int64)
    lab = np.asarray(labels, dtype=object)
    if lab.shape != item_ids.shape:
        raise ValidationError(
            "labels", f"has {lab.size} values, expected {item_ids.size}", "one per item"
        )
    keep = np.array([v is not None and v == v and str(v) != "" for v in lab], dtype=bool)
    columns: dict[str, Any] = {
        "item_id": item_ids[keep],
        "source_id": source_id,
        "run_id": run_id,
        "label": lab[keep].astype(str),
        "created_at": utcnow(),
    }
    if confidences is not None:
        columns["confidence"] = np.asarray(confidences, dtype=np.float64)[keep]
    if accepted is not None:
        columns["accepted"] = np.asarray(accepted, dtype=bool)[keep]
    return insert_columns(
        session,
        Annotation.__table__,
        columns,
        n_rows=int(keep.sum()),
        chunk_rows=chunk_rows,
    )
