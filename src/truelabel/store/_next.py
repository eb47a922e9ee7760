"""``truelabel next PROJECT``: which items a person should label (or label again) next.

The project's current labels are taught to an :class:`~truelabel.ActiveLearner` over the
items' embeddings, its suggestions go into the review queue (through
:class:`~truelabel.review.ActiveLearningSource`, merged with the open tasks of the same
items so no earlier reason is lost), and its stopping estimate is returned with them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select

from ..exceptions import ValidationError
from ..review import ActiveLearningSource, ReviewQueue
from ._current import current_labels
from ._models import ReviewTask
from ._project import OpenProject
from ._review import add_review_tasks

__all__ = ["NextResult", "next_items"]

#: answers taught per replay step when the stop estimate is rebuilt (it compares successive
#: models, so the current labels are taught in the order they were given, in steps)
_REPLAY_STEPS = 4


@dataclass(frozen=True)
class NextResult:
    """What ``truelabel next`` found.

    Attributes
    ----------
    suggestions : DataFrame
        ``item_id`` (database id), ``external_id``, ``content``, ``action``, ``reason``,
        ``score``, in the learner's order.
    stop_estimate : truelabel.active.StopEstimate
        Whether more labels are worth their cost, and why.
    n_labeled : int
        Items with a current label (taught to the learner).
    n_tasks : int
        Review tasks written (0 with ``dry_run``).
    features_note : str
        Which vectors the learner ran on.
    """

    suggestions: pd.DataFrame
    stop_estimate: Any
    n_labeled: int
    n_tasks: int
    features_note: str


def _vectors(
    handle: OpenProject, frame: pd.DataFrame, features: Any, encoder: Any, cache: bool
) -> tuple[np.ndarray, str]:
    from .._features import check_precomputed_features

    if features is not None:
        vectors = check_precomputed_features(features, n_items=len(frame))
        return vectors, f"precomputed vectors ({vectors.shape[1]} dimensions)"
    if handle.content_kind != "text":
        raise ValidationError(
            "features",
            f"none given for a project of {handle.content_kind} items",
            "pass --features emb.npy (one row per item, in the order of the imported data)",
        )
    from ..encode import TfidfEncoder
    from ..pipeline import _text_encoder

    texts = [str(t) for t in frame["content"]]
    built, why = _text_encoder(encoder, cache)
    if built is None:
        tfidf = TfidfEncoder(random_state=0).fit(texts)
        note = "TF-IDF/LSA vectors" + (f" (no sentence encoder: {why})" if why else "")
        return np.asarray(tfidf.encode(texts), dtype=np.float32), note
    name = getattr(built, "identity", type(built).__name__)
    return np.asarray(built.encode(texts), dtype=np.float32), f"sentence encoder {name}"


def _teach_in_order(learner: Any, frame: pd.DataFrame, step: int) -> None:
    """Teach the labeled rows in the order their labels were given, in steps of ``step``
    answers for the last few, so the stop estimate has successive models to compare."""
    labeled = frame[frame["label"].notna()]
    # frame rows are in position order, so a row's index is its row in the vectors
    order = np.lexsort((labeled.index.to_numpy(), labeled["labeled_at"].fillna("").astype(str)))
    rows = labeled.iloc[order]
    who = rows["labeled_by"].where(rows["labeled_by"].notna(), rows["label_source"])
    n = len(rows)
    cuts = sorted({max(0, n - k * step) for k in range(_REPLAY_STEPS)} | {n})
    start = 0
    for stop in cuts:
        if stop <= start:
            continue
        part = slice(start, stop)
        learner.teach(
            rows.index.to_numpy()[part],
            rows["label"].to_numpy(object)[part],
            annotator_ids=who.astype(str).to_numpy(object)[part],
        )
        learner.stop_estimate_  # noqa: B018  (refits: one model per step for the estimate)
        start = stop


class _Stored:
    """Open tasks' earlier reasons of one source, fed back to the queue on a merge."""

    def __init__(self, name: str, rows: list[dict[str, Any]]) -> None:
        self.name = name
        self.rows = rows

    def candidates(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=["item_id", "reason", "priority", "suggested_label"])


def _merged_queue(session: Any, project_id: int, source: ActiveLearningSource) -> pd.DataFrame:
    ids = [int(i) for i in source.item_ids]
    open_tasks = session.execute(
        select(ReviewTask.item_id, ReviewTask.reasons).where(
            ReviewTask.project_id == project_id,
            ReviewTask.status == "open",
            ReviewTask.item_id.in_(ids),
        )
    ).all()
    by_source: dict[str, list[dict[str, Any]]] = {}
    for item_id, reasons in open_tasks:
        for r in reasons:  # as ReviewQueue.build() wrote them: every key is there
            by_source.setdefault(r["source"], []).append({**r, "item_id": int(item_id)})
    stored = [_Stored(name, rows) for name, rows in by_source.items() if name != source.name]
    return ReviewQueue([source, *stored]).build()


def next_items(
    handle: OpenProject,
    *,
    n: int = 20,
    features: Any = None,
    encoder: Any = None,
    random_state: int = 0,
    allow_relabel: bool = True,
    cache_embeddings: bool = True,
    dry_run: bool = False,
) -> NextResult:
    """Suggest the next ``n`` items to label or re-label and queue them for review.

    Parameters
    ----------
    handle : OpenProject
    n : int, default 20
    features : array or path, optional
        One vector per item in import order (default: the project's texts encoded with
        ``encoder``; image projects need them).
    encoder : None, "tfidf", a model folder or an encoder object
        As for ``truelabel audit``.
    random_state : int, default 0
    allow_relabel : bool, default True
        Whether a doubtful labeled item may be suggested for another answer.
    cache_embeddings : bool, default True
        Keep the text vectors on disk (a second call encodes nothing).
    dry_run : bool, default False
        Suggest without writing review tasks.
    """
    from ..active import ActiveLearner

    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValidationError("n", f"got {n!r}", "pass an int >= 1, e.g. --n 20")
    store, pid = handle.store, handle.project_id
    with store.read() as session:
        frame = current_labels(session, project_id=pid)
    vectors, note = _vectors(handle, frame, features, encoder, cache_embeddings)
    learner = ActiveLearner(
        vectors,
        random_state=random_state,
        allow_relabel=allow_relabel,
        classes=handle.settings.get("classes"),
    )
    _teach_in_order(learner, frame, step=n)
    suggestions = learner.suggest(n)
    rows = suggestions["item_id"].to_numpy(np.int64)
    item_ids = frame["item_id"].to_numpy(np.int64)
    out = pd.DataFrame(
        {
            "item_id": item_ids[rows],
            "external_id": frame["external_id"].to_numpy(object)[rows],
            "content": frame["content"].to_numpy(object)[rows],
            "action": suggestions["action"].to_numpy(object),
            "reason": suggestions["reason"].to_numpy(object),
            "score": suggestions["score"].to_numpy(np.float64),
        }
    )
    n_tasks = 0
    if not dry_run:
        source = ActiveLearningSource(suggestions, item_ids=item_ids)
        with store.write() as session:
            queue = _merged_queue(session, pid, source)
            n_tasks = add_review_tasks(session, project_id=pid, queue=queue)
    return NextResult(
        suggestions=out,
        stop_estimate=learner.stop_estimate_,
        n_labeled=int(frame["label"].notna().sum()),
        n_tasks=n_tasks,
        features_note=note,
    )
