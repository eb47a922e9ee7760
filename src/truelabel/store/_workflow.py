"""``truelabel audit PROJECT``: audit the items' current labels, store the run, fill the queue."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..exceptions import ValidationError
from ..review import AuditIssueSource, ReviewQueue
from ._current import current_labels
from ._project import OpenProject
from ._review import add_review_tasks
from ._runs import finish_run, start_run, store_audit_issues

__all__ = ["DEFAULT_REVIEW_URL", "audit_project", "check_review_url"]

#: where ``truelabel serve`` listens by default: the audit report links items there
DEFAULT_REVIEW_URL = "http://127.0.0.1:8000"


def check_review_url(url: str, *, argument: str = "review_url") -> str:
    """``url`` without a trailing slash, if it is an http(s) URL with a host and no query,
    fragment or credentials (the report puts ``/items/<id>`` after it)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.query
        or parts.fragment
        or "@" in parts.netloc
        or any(c.isspace() or c in "\"'<>`" for c in url)
    ):
        raise ValidationError(
            argument,
            f"got {url!r}",
            f"pass the address truelabel serve listens on, e.g. {DEFAULT_REVIEW_URL}",
        )
    return url.rstrip("/")


def _summary(result: Any) -> dict[str, Any]:
    summary = result.summary
    out: dict[str, Any] = {
        "n_items": int(summary["n_items"]),
        "n_classes": int(summary["n_classes"]),
        "issue_counts": {str(k): int(v) for k, v in summary["issue_counts"].items()},
    }
    if "estimated_noise_rate" in summary:
        out["estimated_noise_rate"] = float(summary["estimated_noise_rate"])
    return out


def audit_project(
    handle: OpenProject,
    *,
    pred_probs: Any = None,
    features: Any = None,
    encoder: Any = None,
    n_neighbors: int = 10,
    random_state: int = 0,
    cache_embeddings: bool = False,
    settings: dict[str, Any] | None = None,
    review_url: str | None = DEFAULT_REVIEW_URL,
    backend: Any = None,
    chunk_size: int | None = None,
) -> tuple[int, Any, dict[str, Path]]:
    """Audit the project's items on their current labels (reviewed labels count).

    The run is recorded first (``running``), the audit's report files go to
    ``<project>/runs/<run id>/``, then one transaction stores every score, the flagged
    issues and the review tasks, and marks the run finished; a failure marks it failed and
    stores none of its issues. The report links each listed item to
    ``<review_url>/items/<item id>`` (the app's item page; None: no links). ``backend`` and
    ``chunk_size`` run the audit's heavy steps (as :class:`~truelabel.Audit`'s; the
    issues do not depend on them). Returns ``(run_id, AuditResult, written files)``.
    """
    from ..data import Dataset
    from ..pipeline import audit_dataset, write_audit

    store, pid = handle.store, handle.project_id
    with store.read() as session:
        frame = current_labels(session, project_id=pid)
    if not frame["label"].notna().any():
        raise ValidationError(
            "PROJECT",
            "has no labelled item yet: there is nothing to audit",
            "label some first (`truelabel next PROJECT` queues the items worth labelling, "
            "`truelabel serve PROJECT` opens the review app)",
        )
    item_ids = frame["item_id"].to_numpy(np.int64)
    base = None if review_url is None else check_review_url(review_url)
    by_external = pd.Series(item_ids, index=frame["external_id"].to_numpy(object))

    def link(external_id: Any) -> str | None:
        return None if base is None else f"{base}/items/{int(by_external[external_id])}"

    text_col = "content" if handle.content_kind == "text" else None
    dataset = Dataset.from_pandas(
        frame[["external_id", "content", "label"]],
        label_col="label",
        text_col=text_col,
        id_col="external_id",
        classes=handle.settings.get("classes"),
    )
    run_settings = {
        "n_neighbors": n_neighbors,
        "seed": random_state,
        "encoder": None if encoder is None else str(encoder),
        **(settings or {}),
    }
    with store.write() as session:
        run_id = start_run(session, project_id=pid, kind="audit", settings=run_settings).id
    try:
        result = audit_dataset(
            dataset,
            pred_probs=pred_probs,
            features=features,
            encoder=encoder,
            n_neighbors=n_neighbors,
            random_state=random_state,
            cache_embeddings=cache_embeddings,
            backend=backend,
            chunk_size=chunk_size,
        )
        paths = write_audit(
            result,
            handle.path / "runs" / str(run_id),
            texts=dataset.texts,
            settings={k: str(v) for k, v in run_settings.items()},
            item_link=link,
        )
        queue = ReviewQueue([AuditIssueSource(result.issues, item_ids=item_ids)]).build()
        with store.write() as session:
            counts = store_audit_issues(
                session,
                run_id=run_id,
                item_ids=item_ids,
                issues=result.issues,
                neighbors=result.neighbors,
            )
            n_tasks = add_review_tasks(session, project_id=pid, queue=queue, run_id=run_id)
            summary = {**_summary(result), "stored_issues": counts, "review_tasks": n_tasks}
            finish_run(session, run_id=run_id, summary=summary)
    except BaseException:
        with store.write() as session:
            finish_run(session, run_id=run_id, failed=True)
        raise
    return run_id, result, paths
