"""The API's schema family per entity (``XCreate`` in, ``XPublic`` out)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "AnnotatorDetailPublic",
    "AnnotatorPublic",
    "BatchAcceptCreate",
    "BatchAcceptPublic",
    "ClassRatePublic",
    "ContextItemPublic",
    "DecisionCreate",
    "DecisionPublic",
    "ItemPublic",
    "ItemReviewPublic",
    "LoginCreate",
    "ProgressPublic",
    "ProjectPublic",
    "RecentDecisionPublic",
    "SessionPublic",
    "TaskPublic",
    "UndoCreate",
    "UserCreate",
    "UserPublic",
]


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class ClassRatePublic(_Out):
    label: str
    items: int
    flagged: int
    rate: float


class ProjectPublic(_Out):
    name: str
    content_kind: str
    classes: list[str]
    n_items: int
    queue: dict[str, int]
    decisions: int
    latest_audit_run: int | None
    class_rates: list[ClassRatePublic]


class BucketPublic(_Out):
    start: datetime
    decisions: int


class ProgressPublic(_Out):
    unit: Literal["hour", "day", "week"]
    buckets: list[BucketPublic]


class TopClass(_Out):
    label: str
    probability: float


class ContextItemPublic(_Out):
    item_id: int
    external_id: str
    content: str | None
    label: str | None


class TaskPublic(_Out):
    task_id: int
    task_status: str
    item_id: int
    external_id: str
    content: str | None
    content_kind: str
    given_label: str | None
    current_label: str | None
    suggested_label: str | None
    priority: float
    reasons: list[str]
    top_classes: list[TopClass]
    #: why it was flagged, in words (the model's view, neighbours, near-duplicates)
    explanation: list[str]
    #: nearest neighbours in the audit's kNN graph (nearest first) with current labels
    neighbors: list[ContextItemPublic]
    #: the other items of its near-duplicate set
    duplicates: list[ContextItemPublic]


class ItemReviewPublic(TaskPublic):
    """An item's review view: its open task, else its latest task, else no task (null)."""

    task_id: int | None  # type: ignore[assignment]
    task_status: str | None  # type: ignore[assignment]


class DecisionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    task_id: int
    action: Literal["accept", "keep", "relabel", "skip"]
    label: str | None = Field(default=None, max_length=255)
    seconds_spent: float | None = Field(default=None, ge=0, le=86_400)


class DecisionPublic(_Out):
    id: int
    item_id: int
    task_id: int | None
    reviewer: str
    old_label: str | None
    new_label: str | None
    reason: str | None
    seconds_spent: float | None
    undoes_id: int | None


class RecentDecisionPublic(DecisionPublic):
    external_id: str
    created_at: datetime


class AnnotatorPublic(_Out):
    reviewer: str
    decisions: int
    undone: int
    undos: int
    accepted: float | None
    kept: float | None
    changed: float | None
    median_seconds: float | None
    shared_items: int
    agreement_with_others: float | None
    consensus_items: int
    agreement_with_consensus: float | None


class AnnotatorDetailPublic(_Out):
    stats: AnnotatorPublic | None
    recent: list[RecentDecisionPublic]


class UndoCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision_id: int


class BatchAcceptCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    issue_text: str | None = Field(default=None, max_length=200)
    suggested_label: str | None = Field(default=None, max_length=255)
    min_priority: float = Field(default=0.0, ge=0)
    limit: int = Field(default=10_000, ge=1, le=100_000)


class BatchAcceptPublic(_Out):
    accepted: int
    decision_ids: list[int]


class ItemPublic(_Out):
    item_id: int
    external_id: str
    content: str | None
    label: str | None
    label_source: str | None
    labeled_by: str | None


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=200)
    password: str = Field(min_length=10, max_length=1000)
    role: Literal["admin", "reviewer"] = "reviewer"


class UserPublic(_Out):
    id: int
    username: str
    role: str


class LoginCreate(BaseModel):
    username: str = Field(max_length=200)
    password: str = Field(max_length=1000)


class SessionPublic(_Out):
    user: str
    role: str
    team: bool
    csrf_token: str
