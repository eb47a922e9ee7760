"""Task claims: a reviewer asking for work gets a batch nobody else holds.

``claim_tasks`` runs in the caller's write transaction: it selects the reviewer's batch
(tasks it already holds first, then unclaimed or expired ones, by priority) and marks them
``claimed_by = reviewer`` until ``now + lease``. On PostgreSQL the SELECT takes the rows
``FOR UPDATE SKIP LOCKED``, so two reviewers claiming at once lock disjoint rows instead of
waiting on each other; on SQLite the write transaction (``BEGIN IMMEDIATE``) is already the
only writer, so the SELECT and the UPDATE cannot interleave with another claim.

The rule for deciding: a task under another reviewer's live claim is refused
(:func:`check_claim`); an unclaimed task, one's own, or an expired claim can be decided.
An abandoned batch comes back to the queue when its lease ends.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from ..exceptions import ValidationError
from ._models import ReviewTask, utcnow

__all__ = ["LEASE_SECONDS", "check_claim", "claim_tasks", "free_for", "release_claim"]

#: how long a claimed batch stays with its reviewer
LEASE_SECONDS = 600.0


def _aware(when: datetime) -> datetime:
    """SQLite hands back naive datetimes: the store writes UTC only, so they are UTC."""
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def free_for(reviewer: str, now: datetime) -> Any:
    """SQL condition: the task is unclaimed, its claim expired, or ``reviewer`` holds it."""
    return or_(
        ReviewTask.claimed_by.is_(None),
        ReviewTask.claim_expires_at <= now,
        ReviewTask.claimed_by == reviewer,
    )


def claim_tasks(
    session: Session,
    *,
    project_id: int,
    reviewer: str,
    limit: int,
    exclude: Iterable[int] = (),
    lease_seconds: float = LEASE_SECONDS,
    now: datetime | None = None,
) -> list[ReviewTask]:
    """Claim (and return) ``reviewer``'s next ``limit`` open tasks, in the caller's write
    transaction. The reviewer's claims outside the returned batch (e.g. ``exclude``: tasks
    it skipped) are released, so a reviewer holds exactly the batch it was last given."""
    if not reviewer or not reviewer.strip():
        raise ValidationError("reviewer", f"got {reviewer!r}", "name who asks for tasks")
    if not lease_seconds > 0:
        raise ValidationError("lease_seconds", f"got {lease_seconds}", "pass seconds > 0")
    now = utcnow() if now is None else now
    skip = [int(i) for i in exclude]
    base = select(ReviewTask).where(ReviewTask.project_id == project_id)
    base = base.where(ReviewTask.status == "open")
    if skip:
        base = base.where(ReviewTask.id.not_in(skip))
    order = (ReviewTask.priority.desc(), ReviewTask.id)
    # two index walks, not one sort of the whole queue: the reviewer's live claims (claims
    # index), then tasks nobody holds (the queue index, highest priority first)
    held = base.where(ReviewTask.claimed_by == reviewer, ReviewTask.claim_expires_at > now)
    mine = session.scalars(held.with_for_update(of=ReviewTask))  # few: its last batch
    tasks = sorted(mine, key=lambda t: (-t.priority, t.id))[:limit]
    if len(tasks) < limit:
        free = base.where(
            or_(
                ReviewTask.claimed_by.is_(None),
                ReviewTask.claim_expires_at <= now,
                ReviewTask.claimed_by == reviewer,  # its own expired claims
            )
        )
        if tasks:
            free = free.where(ReviewTask.id.not_in([t.id for t in tasks]))
        stmt = free.order_by(*order).limit(limit - len(tasks))
        tasks += session.scalars(stmt.with_for_update(skip_locked=True, of=ReviewTask))
    ids = [t.id for t in tasks]
    expires = now + timedelta(seconds=lease_seconds)
    release = update(ReviewTask).where(
        ReviewTask.project_id == project_id,
        ReviewTask.status == "open",
        ReviewTask.claimed_by == reviewer,
    )
    if ids:
        release = release.where(ReviewTask.id.not_in(ids))
        session.execute(
            update(ReviewTask)
            .where(ReviewTask.id.in_(ids))
            .values(claimed_by=reviewer, claim_expires_at=expires),
            execution_options={"synchronize_session": False},
        )
    session.execute(
        release.values(claimed_by=None, claim_expires_at=None),
        execution_options={"synchronize_session": False},
    )
    for task in tasks:  # the returned objects show the claim just written (not re-flushed)
        set_committed_value(task, "claimed_by", reviewer)
        set_committed_value(task, "claim_expires_at", expires)
    return tasks


def check_claim(task: ReviewTask, reviewer: str, now: datetime | None = None) -> None:
    """Refuse (``ValidationError``) a decision on a task another reviewer holds a live
    claim on; unclaimed, own and expired claims pass."""
    now = utcnow() if now is None else now
    holder, until = task.claimed_by, task.claim_expires_at
    if holder is None or holder == reviewer or until is None or _aware(until) <= now:
        return
    raise ValidationError(
        "task_id",
        f"task {task.id} is claimed by {holder} until {_aware(until).isoformat()}",
        "fetch your own next tasks",
    )


def release_claim(session: Session, *, task_id: int, reviewer: str) -> None:
    """Give back ``reviewer``'s claim on a task (a skip): others can claim it at once."""
    session.execute(
        update(ReviewTask)
        .where(ReviewTask.id == task_id, ReviewTask.claimed_by == reviewer)
        .values(claimed_by=None, claim_expires_at=None),
        execution_options={"synchronize_session": False},
    )
