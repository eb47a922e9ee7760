"""The tables (SQLAlchemy 2.0 typed declarative models).

History is append-only: ``annotations`` and ``decisions`` rows are never updated or deleted
(database triggers refuse it, see the initial migration); the current label of an item is
derived from them (:mod:`truelabel.store._current`). ``review_tasks`` are workflow state
(their ``status`` moves open -> done / superseded), not history.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "CONTENT_KINDS",
    "RUN_KINDS",
    "SOURCE_KINDS",
    "TASK_STATUSES",
    "Annotation",
    "Base",
    "Decision",
    "Issue",
    "Item",
    "LabelSource",
    "Neighbors",
    "Project",
    "ReviewTask",
    "Run",
    "Score",
]

#: who produced an annotation: the dataset's own labels, a human annotator, a model (its
#: accepted rows are auto-labels), a labeling rule, or an aggregate of annotators
SOURCE_KINDS = ("original", "annotator", "model", "rule", "consensus")
CONTENT_KINDS = ("text", "image", "none")
RUN_KINDS = ("audit", "autolabel", "consensus", "import")
TASK_STATUSES = ("open", "done", "superseded")

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """Now, timezone-aware UTC (every timestamp the store writes)."""
    return datetime.now(UTC)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dict[str, Any]: JSON,
        datetime: DateTime(timezone=True),
    }


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    content_kind: Mapped[str] = mapped_column(String(16))
    #: data file, columns, data root, classes
    settings: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]

    __table_args__ = (CheckConstraint(_in("content_kind", CONTENT_KINDS), name="content_kind"),)


class Item(Base):
    __tablename__ = "items"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    #: row of the item in the imported data (0-based); the audit's row order
    position: Mapped[int]
    external_id: Mapped[str] = mapped_column(String(255))
    #: the text itself, or the image path relative to the project's data root
    content: Mapped[str | None] = mapped_column(Text)
    #: blake2b-128 hex of the text's UTF-8 bytes or of the image file's bytes
    content_hash: Mapped[str | None] = mapped_column(String(32))

    __table_args__ = (
        UniqueConstraint("project_id", "external_id", name="uq_items_external_id"),
        UniqueConstraint("project_id", "position", name="uq_items_position"),
    )


class LabelSource(Base):
    __tablename__ = "label_sources"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))

    __table_args__ = (
        UniqueConstraint("project_id", "kind", "name", name="uq_label_sources_kind_name"),
        CheckConstraint(_in("kind", SOURCE_KINDS), name="kind"),
    )


class Run(Base):
    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    settings: Mapped[dict[str, Any]]
    #: package versions (truelabel, numpy, scikit-learn, ...)
    versions: Mapped[dict[str, Any]]
    summary: Mapped[dict[str, Any] | None]
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]

    __table_args__ = (
        CheckConstraint(_in("kind", RUN_KINDS), name="kind"),
        CheckConstraint(_in("status", ("running", "finished", "failed")), name="status"),
    )


class Annotation(Base):
    __tablename__ = "annotations"

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"))
    source_id: Mapped[int] = mapped_column(ForeignKey("label_sources.id"))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"))
    label: Mapped[str] = mapped_column(String(255))
    confidence: Mapped[float | None] = mapped_column(Float)
    #: for model sources: True = certified and accepted as an auto-label
    accepted: Mapped[bool | None] = mapped_column(Boolean)
    created_at: Mapped[datetime]

    __table_args__ = (Index("ix_annotations_item_source", "item_id", "source_id"),)


class Issue(Base):
    """One flagged (item, issue type) of a run; ``score`` in [0, 1], lower = worse."""

    __tablename__ = "issues"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"))
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), index=True)
    issue_type: Mapped[str] = mapped_column(String(32))
    score: Mapped[float] = mapped_column(Float)
    suggested_label: Mapped[str | None] = mapped_column(String(255))

    __table_args__ = (Index("ix_issues_run_type", "run_id", "issue_type"),)


class Score(Base):
    """Every item's score of every issue type a run computed (flagged or not)."""

    __tablename__ = "scores"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), primary_key=True)
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[float] = mapped_column(Float)


class Neighbors(Base):
    """Context a run kept for one flagged item: its nearest neighbours (item ids, nearest
    first) in the audit's kNN graph and its near-duplicate set (None: in none)."""

    __tablename__ = "neighbors"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), primary_key=True)
    neighbor_ids: Mapped[list[int]] = mapped_column(JSON)
    duplicate_set: Mapped[int | None]

    __table_args__ = (Index("ix_neighbors_run_set", "run_id", "duplicate_set"),)


class ReviewTask(Base):
    __tablename__ = "review_tasks"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), index=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"))
    #: in [0, 1], higher = review first
    priority: Mapped[float] = mapped_column(Float)
    #: every reason the item was queued: [{source, reason, priority, suggested_label}, ...]
    reasons: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    suggested_label: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    #: who holds the task (``next_tasks(reviewer=...)``) and until when; an expired claim is void
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    claim_expires_at: Mapped[datetime | None]

    __table_args__ = (
        Index("ix_review_tasks_queue", "project_id", "status", "priority"),
        Index("ix_review_tasks_claims", "claimed_by", "project_id", "status"),
        CheckConstraint(_in("status", TASK_STATUSES), name="status"),
    )


class Decision(Base):
    """A reviewer's decision; never updated or deleted. An undo is a new row (``undoes_id``)."""

    __tablename__ = "decisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), index=True)
    task_id: Mapped[int | None] = mapped_column(ForeignKey("review_tasks.id"))
    reviewer: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]
    #: the item's current label when the decision was made (None: it had none)
    old_label: Mapped[str | None] = mapped_column(String(255))
    new_label: Mapped[str | None] = mapped_column(String(255))
    reason: Mapped[str | None] = mapped_column(Text)
    seconds_spent: Mapped[float | None] = mapped_column(Float)
    undoes_id: Mapped[int | None] = mapped_column(
        ForeignKey("decisions.id"), unique=True, nullable=True
    )

    __table_args__ = (Index("ix_decisions_project", "project_id", "id"),)
