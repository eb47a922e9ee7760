"""Runs (what was computed, with which settings and versions), their issues and scores."""

from __future__ import annotations

import platform
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..exceptions import ValidationError
from ._bulk import CHUNK_ROWS, insert_columns
from ._models import RUN_KINDS, Issue, Neighbors, Run, Score, utcnow

__all__ = [
    "add_issues",
    "add_neighbors",
    "add_scores",
    "finish_run",
    "item_context",
    "run_issues",
    "start_run",
    "store_audit_issues",
]

_PACKAGES = ("truelabel", "numpy", "scipy", "scikit-learn", "pandas", "sqlalchemy")


def _versions() -> dict[str, Any]:
    out: dict[str, Any] = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def start_run(
    session: Session, *, project_id: int, kind: str, settings: dict[str, Any] | None = None
) -> Run:
    """Record that a computation started (status ``running``, package versions stored)."""
    if kind not in RUN_KINDS:
        raise ValidationError("kind", f"got {kind!r}", f"pass one of {', '.join(RUN_KINDS)}")
    run = Run(
        project_id=project_id,
        kind=kind,
        status="running",
        settings=dict(settings or {}),
        versions=_versions(),
        started_at=utcnow(),
    )
    session.add(run)
    session.flush()
    return run


def finish_run(
    session: Session, *, run_id: int, summary: dict[str, Any] | None = None, failed: bool = False
) -> Run:
    """Mark a run finished (or failed) with its summary."""
    run = session.get(Run, run_id)
    if run is None:
        raise ValidationError("run_id", f"no run {run_id}", "pass the id start_run returned")
    run.status = "failed" if failed else "finished"
    run.summary = summary
    run.finished_at = utcnow()
    session.flush()
    return run


def add_issues(
    session: Session,
    *,
    run_id: int,
    item_ids: np.ndarray,
    issue_type: str,
    scores: np.ndarray,
    suggested_labels: np.ndarray | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> int:
    """Append the flagged items of one issue type (batched). Returns the rows written."""
    item_ids = np.asarray(item_ids, dtype=np.int64)
    columns: dict[str, Any] = {
        "run_id": run_id,
        "item_id": item_ids,
        "issue_type": issue_type,
        "score": np.asarray(scores, dtype=np.float64),
    }
    if suggested_labels is not None:
        columns["suggested_label"] = np.asarray(suggested_labels, dtype=object)
    return insert_columns(
        session,
        Issue.__table__,
        columns,
        n_rows=item_ids.size,
        chunk_rows=chunk_rows,
    )


def add_scores(
    session: Session,
    *,
    run_id: int,
    item_ids: np.ndarray,
    name: str,
    values: np.ndarray,
    chunk_rows: int = CHUNK_ROWS,
) -> int:
    """Append one score per item (NaN scores, i.e. not computed, are skipped)."""
    item_ids = np.asarray(item_ids, dtype=np.int64)
    values = np.asarray(values, dtype=np.float64)
    keep = ~np.isnan(values)
    return insert_columns(
        session,
        Score.__table__,
        {"run_id": run_id, "item_id": item_ids[keep], "name": name, "value": values[keep]},
        n_rows=int(keep.sum()),
        chunk_rows=chunk_rows,
    )


def add_neighbors(
    session: Session,
    *,
    run_id: int,
    item_ids: np.ndarray,
    neighbor_ids: np.ndarray,
    duplicate_sets: np.ndarray | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> int:
    """Append the context of flagged items: ``neighbor_ids`` (n, k) item ids, nearest
    first; ``duplicate_sets`` (n,) the near-duplicate set of each item (< 0: none)."""
    item_ids = np.asarray(item_ids, dtype=np.int64)
    neighbor_ids = np.asarray(neighbor_ids, dtype=np.int64).reshape(item_ids.size, -1)
    sets: Any = None
    if duplicate_sets is not None:
        raw = np.asarray(duplicate_sets, dtype=np.float64)
        keep = raw >= 0  # NaN or < 0: in no set (NULL)
        sets = np.full(raw.size, None, dtype=object)
        sets[keep] = raw[keep].astype(np.int64).tolist()
    lists = np.empty(item_ids.size, dtype=object)
    lists[:] = neighbor_ids.tolist() if item_ids.size else []
    columns: dict[str, Any] = {"run_id": run_id, "item_id": item_ids, "neighbor_ids": lists}
    columns["duplicate_set"] = sets if sets is not None else None
    return insert_columns(
        session, Neighbors.__table__, columns, n_rows=item_ids.size, chunk_rows=chunk_rows
    )


def item_context(session: Session, *, run_id: int, item_ids: list[int]) -> dict[int, Any]:
    """Per item (of those the run kept context for): ``neighbors`` (item ids, nearest
    first) and ``duplicates`` (the other items of its near-duplicate set, by id). Three
    statements whatever the number of items."""
    if not item_ids:
        return {}
    rows = session.execute(
        select(Neighbors.item_id, Neighbors.neighbor_ids, Neighbors.duplicate_set).where(
            Neighbors.run_id == run_id, Neighbors.item_id.in_(item_ids)
        )
    ).all()
    sets = {int(r.duplicate_set) for r in rows if r.duplicate_set is not None}
    members: dict[int, list[int]] = {}
    if sets:
        stmt = (
            select(Neighbors.duplicate_set, Neighbors.item_id)
            .where(Neighbors.run_id == run_id, Neighbors.duplicate_set.in_(sorted(sets)))
            .order_by(Neighbors.item_id)
        )
        for dup_set, item in session.execute(stmt):
            members.setdefault(int(dup_set or 0), []).append(int(item))  # never NULL here
    out: dict[int, Any] = {}
    for r in rows:
        own = int(r.item_id)
        dups = members.get(int(r.duplicate_set), []) if r.duplicate_set is not None else []
        out[own] = {
            "neighbors": [int(i) for i in r.neighbor_ids],
            "duplicates": [i for i in dups if i != own],
        }
    return out


def store_audit_issues(
    session: Session,
    *,
    run_id: int,
    item_ids: np.ndarray,
    issues: pd.DataFrame,
    neighbors: dict[str, np.ndarray] | None = None,
) -> dict[str, int]:
    """Store an audit's issues frame (one row per item, in ``item_ids`` order).

    Every ``<type>_score`` column becomes scores; the rows with ``is_<type>_issue`` true
    become issues (with ``suggested_label`` for label issues). ``neighbors`` (the
    ``AuditResult.neighbors`` of the same rows: ``rows``, ``indices`` by row) is stored as
    each flagged item's context with its ``near_duplicate_set``. Returns flagged counts.
    """
    item_ids = np.asarray(item_ids, dtype=np.int64)
    if len(issues) != item_ids.size:
        raise ValidationError(
            "issues", f"has {len(issues)} rows, expected {item_ids.size}", "one row per item"
        )
    counts: dict[str, int] = {}
    for col in issues.columns:
        if not (col.startswith("is_") and col.endswith("_issue")):
            continue
        kind = col[3 : -len("_issue")]
        score_col = f"{kind}_score"
        scores = issues[score_col].to_numpy(np.float64)
        add_scores(session, run_id=run_id, item_ids=item_ids, name=kind, values=scores)
        flagged = issues[col].to_numpy(bool)
        suggested = None
        if kind == "label" and "suggested_label" in issues:
            suggested = issues["suggested_label"].to_numpy(object)[flagged]
        counts[kind] = add_issues(
            session,
            run_id=run_id,
            item_ids=item_ids[flagged],
            issue_type=kind,
            scores=scores[flagged],
            suggested_labels=suggested,
        )
    if neighbors is not None and neighbors["rows"].size:
        rows = np.asarray(neighbors["rows"], dtype=np.int64)
        sets = None
        if "near_duplicate_set" in issues:
            sets = issues["near_duplicate_set"].to_numpy(np.float64)[rows]
        add_neighbors(
            session,
            run_id=run_id,
            item_ids=item_ids[rows],
            neighbor_ids=item_ids[np.asarray(neighbors["indices"], dtype=np.int64)],
            duplicate_sets=sets,
        )
    return counts


def run_issues(session: Session, *, run_id: int) -> pd.DataFrame:
    """The issues of a run: ``item_id, issue_type, score, suggested_label`` (worst first)."""
    stmt = (
        select(Issue.item_id, Issue.issue_type, Issue.score, Issue.suggested_label)
        .where(Issue.run_id == run_id)
        .order_by(Issue.score, Issue.item_id, Issue.issue_type)
    )
    result = session.execute(stmt)
    frame = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
    frame["suggested_label"] = frame["suggested_label"].astype(object)
    frame.loc[frame["suggested_label"].isna(), "suggested_label"] = None
    return frame
