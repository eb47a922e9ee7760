"""The whole audit flow as one readable function: load -> encode -> probabilities -> detect
-> write (issues.csv, summary.json, report.html)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ._io import atomic_write
from ._progress import progress
from ._validation import check_pred_probs
from .data import Dataset
from .detect import Audit, AuditResult
from .exceptions import ValidationError

__all__ = ["audit_dataset", "write_audit"]


def _text_pred_probs(dataset: Dataset, encoder: Any, random_state: int) -> np.ndarray:
    """Out-of-fold probabilities from a linear model on sparse TF-IDF (labelled rows)."""
    from sklearn.linear_model import LogisticRegression

    from .model import out_of_fold_pred_probs

    assert dataset.texts is not None
    lab = dataset.labeled_mask
    sparse = encoder.transform_sparse(dataset.texts)
    oof, _ = out_of_fold_pred_probs(
        sparse[np.flatnonzero(lab)],
        dataset.labels[lab],
        estimator=LogisticRegression(C=10.0, max_iter=300),
        n_classes=dataset.n_classes,
        random_state=random_state,
    )
    p = np.full((dataset.n_items, dataset.n_classes), 1.0 / dataset.n_classes)
    p[lab] = oof
    return p


def audit_dataset(
    dataset: Dataset,
    *,
    pred_probs: Any = None,
    issue_types: dict[str, dict[str, Any]] | None = None,
    n_neighbors: int = 10,
    random_state: int = 0,
) -> AuditResult:
    """Audit a :class:`~truelabel.Dataset`.

    Features come from the dataset's feature columns, or from its text column through
    the TF-IDF/LSA encoder (near-duplicates and outliers are then judged on the raw
    TF-IDF rows, see :meth:`~truelabel.encode.TfidfEncoder.transform_raw`). Without ``pred_probs`` they are computed out-of-fold (a
    linear model on sparse TF-IDF for text, the default estimator on features).
    """
    if dataset.is_multi_label:
        raise ValidationError(
            "dataset", "is multi-label", "use truelabel.find_multilabel_issues for multi-label data"
        )
    features = dataset.features
    if pred_probs is not None:
        pred_probs = check_pred_probs(pred_probs, n_items=dataset.n_items)
        if pred_probs.shape[1] != dataset.n_classes:
            raise ValidationError(
                "pred_probs",
                f"has {pred_probs.shape[1]} columns but the label column has "
                f"{dataset.n_classes} classes ({', '.join(dataset.classes[:5])}, ...)",
                "pass one column per class, classes in sorted order of their names",
            )
    raw_features = None
    if features is None and dataset.texts is not None:
        from .encode import TfidfEncoder

        with progress(2, "encoding texts (TF-IDF + SVD)") as advance:
            encoder = TfidfEncoder(random_state=random_state).fit(dataset.texts)
            advance(1)
            features = encoder.encode(dataset.texts)
            raw_features = encoder.transform_raw(dataset.texts)
            advance(1)
        if pred_probs is None:
            pred_probs = _text_pred_probs(dataset, encoder, random_state)
    if features is None and pred_probs is None:
        raise ValidationError(
            "dataset",
            "has no features, text or pred_probs to audit labels with",
            "pass --text-col, --feature-cols or --pred-probs",
        )
    audit = Audit(issue_types, n_neighbors=n_neighbors, random_state=random_state)
    result = audit.run(
        labels=dataset.labels,
        pred_probs=pred_probs,
        features=features,
        classes=list(dataset.classes),
        raw_features=raw_features,
    )
    result.issues.index = dataset.ids
    return result


def _issues_table(result: AuditResult, texts: list[str] | None) -> pd.DataFrame:
    table = result.issues.copy()
    table.insert(0, "row", np.arange(len(table)))  # position in the input, for joins
    if texts is not None:
        table["text"] = texts
    if "label_score" in table:
        table = table.sort_values("label_score", kind="stable", na_position="last")
    return table


def write_audit(
    result: AuditResult,
    out_dir: str | Path,
    *,
    texts: list[str] | None = None,
    settings: dict[str, str] | None = None,
) -> dict[str, Path]:
    """Write ``issues.csv`` (every row, worst label first, ``row`` = input position),
    ``summary.json``, ``report.html`` and, when labels were audited, ``pred_probs.npy``
    (the probabilities the label check used, in input order) into ``out_dir``; each
    file is written atomically."""
    from .report import write_report

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValidationError("out", f"{str(out)!r} is a file", "pass a directory path")
    out.mkdir(parents=True, exist_ok=True)
    table = _issues_table(result, texts)
    paths = {
        "issues": out / "issues.csv",
        "summary": out / "summary.json",
        "report": out / "report.html",
    }
    with atomic_write(paths["issues"]) as fh:
        table.to_csv(fh, index_label="id")
    summary = dict(result.summary)
    summary["details"] = result.info
    if settings:
        summary["settings"] = settings
    with atomic_write(paths["summary"]) as fh:
        json.dump(summary, fh, indent=2, default=_json_default)
    report_summary = dict(result.summary)
    if settings:
        report_summary["settings"] = settings
    write_report(paths["report"], table, report_summary)
    if result.pred_probs is not None:
        paths["pred_probs"] = out / "pred_probs.npy"
        with atomic_write(paths["pred_probs"], mode="wb") as fh:
            np.save(fh, result.pred_probs)
    return paths


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)
