"""Texts -> the audit's vectors: sentence embeddings (or the TF-IDF/LSA fallback), the raw
TF-IDF rows near-duplicates are judged in, and out-of-fold probabilities for the label check.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._progress import progress
from .data import Dataset

__all__ = ["TEXT_EXTRA", "encode_texts", "encoder_info", "encoder_line", "text_pred_probs"]

#: how to get the sentence encoder, said whenever the audit falls back to TF-IDF
TEXT_EXTRA = "pip install 'truelabel[text]'"


def encoder_info(kind: str, name: str, note: str | None = None) -> dict[str, str]:
    """What ``summary["encoder"]`` says: the kind of vectors, their name, and on the
    TF-IDF fallback why and how to get sentence embeddings."""
    info = {"kind": kind, "name": name}
    if note:
        info["note"] = note
    return info


def encoder_line(info: dict[str, str]) -> str:
    """``kind (name)`` of ``summary["encoder"]``: the vectors an audit ran on."""
    return f"{info['kind']} ({info['name']})"


def text_pred_probs(
    dataset: Dataset, X: Any, random_state: int, *, max_iter: int = 300, backend: Any = None
) -> np.ndarray:
    """Out-of-fold probabilities from ``LogisticRegression(C=10)`` on ``X`` (labelled rows;
    uniform on the others); one fold per task on ``backend``."""
    from sklearn.linear_model import LogisticRegression

    from .model import out_of_fold_pred_probs

    lab = dataset.labeled_mask
    oof, _ = out_of_fold_pred_probs(
        X[np.flatnonzero(lab)],
        dataset.labels[lab],
        estimator=LogisticRegression(C=10.0, max_iter=max_iter),
        n_classes=dataset.n_classes,
        random_state=random_state,
        class_names=dataset.classes,
        backend=backend,
    )
    p = np.full((dataset.n_items, dataset.n_classes), 1.0 / dataset.n_classes)
    p[lab] = oof
    return p


def encode_texts(
    dataset: Dataset,
    sentence: Any,
    why: str | None,
    *,
    need_pred_probs: bool,
    random_state: int,
    backend: Any = None,
) -> tuple[np.ndarray, Any, tuple[np.ndarray, str] | None, dict[str, str]]:
    """(features, raw TF-IDF rows, (pred_probs, source) or None, encoder info) of the texts.

    ``sentence`` is the sentence encoder, or None for TF-IDF/LSA (``why``: the reason it
    was not available, said with :data:`TEXT_EXTRA`; None when TF-IDF was asked for).
    ``backend``: where the out-of-fold folds run (one task per fold); the encoder carries
    its own.
    """
    from .encode import TfidfEncoder

    assert dataset.texts is not None
    with progress(1, "encoding texts (TF-IDF)") as advance:
        tfidf = TfidfEncoder(random_state=random_state).fit(dataset.texts)
        raw = tfidf.transform_raw(dataset.texts)
        advance(1)
    if sentence is None:
        with progress(1, "encoding texts (LSA)") as advance:
            lsa = tfidf.encode(dataset.texts)
            advance(1)
        note = None
        if why is not None:
            note = (
                f"fell back to TF-IDF/LSA ({why}); for sentence embeddings, which find "
                f"label errors, near-duplicates and outliers by meaning: {TEXT_EXTRA}"
            )
        info = encoder_info("TF-IDF/LSA", TfidfEncoder.name, note)
        probs = None
        if need_pred_probs:
            sparse = tfidf.transform_sparse(dataset.texts)
            probs = (
                text_pred_probs(dataset, sparse, random_state, backend=backend),
                "out-of-fold (logistic regression on TF-IDF)",
            )
        return lsa, raw, probs, info
    from ._validation import check_features

    emb = check_features(
        sentence.encode(dataset.texts), n_items=dataset.n_items, argument="encoder output"
    )
    info = encoder_info("sentence embeddings", str(getattr(sentence, "name", "encoder")))
    probs = None
    if need_pred_probs:
        # the mean of two logistic regressions, on sparse TF-IDF and on the embeddings:
        # better label-error detection than either alone or one model on both side by side
        # (benchmarks/results/text_issues.md); as measured there, max_iter=1000
        sparse = tfidf.transform_sparse(dataset.texts)
        p_tfidf = text_pred_probs(dataset, sparse, random_state, max_iter=1000, backend=backend)
        p_emb = text_pred_probs(dataset, emb, random_state, max_iter=1000, backend=backend)
        source = "out-of-fold (mean of logistic regressions on TF-IDF and on sentence embeddings)"
        probs = ((p_tfidf + p_emb) / 2.0, source)
    return emb, raw, probs, info
