"""Label texts from class names or a few examples, and certify what can be certified.

The flow behind ``truelabel autolabel``: encode every text once -> zero-shot (no labeled
rows) or few-shot (the labeled rows) probabilities for every row -> with ``max_error``, a
certificate from the labeled rows' *cross-fitted* probabilities (each labeled row scored
by a model that never saw it) -> every unlabeled row accepted or sent to review with the
reason. No files here: :mod:`truelabel.certification` writes them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..exceptions import ValidationError
from ._step import CertifyResult, certify_pool

__all__ = ["TextAutoLabelResult", "autolabel_texts", "min_calibration_items"]

#: labeled rows are split into this many folds for the cross-fitted calibration
N_FOLDS = 5
#: distinct texts predicted per call: bounds the classifier's working memory (its views of
#: the texts: embeddings, first-token vectors, n-grams) whatever the number of rows
PREDICT_BLOCK = 8192


class _MemoEncoder:
    """Serve the vectors of texts encoded up front; encode anything else (class prompts).

    With ``tokens`` (first-token vectors of the same texts, from the same forward pass) it
    serves the few-shot first-token view too, so no text is run through the model twice.
    """

    def __init__(
        self, encoder: Any, texts: list[str], vectors: np.ndarray, tokens: Any = None
    ) -> None:
        self.inner = encoder
        self.name = str(getattr(encoder, "name", "encoder"))
        self.identity = str(getattr(encoder, "identity", self.name))
        self._row = {t: i for i, t in enumerate(texts)}
        self._vectors = vectors
        self._tokens = tokens

    def __getattr__(self, name: str) -> Any:
        # anything else (e.g. `first_token_vectors`, the few-shot first-token view) is the
        # wrapped encoder's, so the classifiers see the same capabilities through the memo
        if name in ("inner", "_tokens"):
            raise AttributeError(name)
        if self._tokens is not None and name == "first_token_vectors":
            return self._first_token_vectors
        if self._tokens is not None and name == "encode_with_first_token":
            return self._encode_with_first_token
        return getattr(self.inner, name)

    @staticmethod
    def _serve(table: np.ndarray, rows: np.ndarray, items: list[str], compute: Any) -> np.ndarray:
        if (rows >= 0).all():
            return table[rows]
        out = np.empty((len(items), table.shape[1]), dtype=table.dtype)
        known = rows >= 0
        out[known] = table[rows[known]]
        out[~known] = compute([t for t, k in zip(items, known, strict=True) if not k])
        return out

    def _rows(self, items: list[str]) -> np.ndarray:
        return np.array([self._row.get(t, -1) for t in items], dtype=np.int64)

    def encode(self, items: Sequence[str]) -> np.ndarray:
        items = list(items)
        return self._serve(self._vectors, self._rows(items), items, self.inner.encode)

    def _first_token_vectors(
        self, items: Sequence[str], batch_size: int | None = None
    ) -> np.ndarray:
        items = list(items)
        return self._serve(self._tokens, self._rows(items), items, self.inner.first_token_vectors)

    def _encode_with_first_token(
        self, items: Sequence[str], batch_size: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        items = list(items)
        rows = self._rows(items)
        if (rows >= 0).all():
            return self._vectors[rows], self._tokens[rows]
        return self.inner.encode_with_first_token(items)


def min_calibration_items(max_error: float, delta: float) -> int:
    """Fewest reviewed items that can certify anything: all of them predicted right and
    ``(1 - max_error) ** n <= delta`` (the exact binomial test at zero errors)."""
    return math.ceil(math.log(delta) / math.log1p(-max_error))


@dataclass
class TextAutoLabelResult:
    """What :func:`autolabel_texts` returns.

    Attributes
    ----------
    labels : DataFrame
        One row per input text (index = input position): ``label``, ``probability`` (of
        that label), ``top3`` (``name:probability`` joined by ``|``), ``method`` (``given``,
        ``zero-shot`` or ``few-shot``); with ``max_error`` also ``decision`` (``given``,
        ``accepted`` or ``review``) and ``reason``. Labeled rows keep their given label;
        their probabilities are cross-fitted (from a model that did not see the row).
    pred_probs : ndarray of shape (n_items, n_classes)
        Columns in ``classes`` order.
    classes : list of str
    certify : CertifyResult or None
        The certificate over the unlabeled rows (None without ``max_error``).
    message : str
        One line for the user: what was labeled, what was certified, or why not.
    summary : dict
        JSON-able facts of the run.
    """

    labels: pd.DataFrame
    pred_probs: np.ndarray
    classes: list[str]
    certify: CertifyResult | None
    message: str
    summary: dict[str, Any] = field(default_factory=dict)


def _given_labels(labels: Any, n: int, names: list[str]) -> np.ndarray:
    """Class codes of the labeled rows, -1 where a row is unlabeled (None, NaN or blank)."""
    values = pd.Series(list(labels.tolist() if hasattr(labels, "tolist") else labels))
    if len(values) != n:
        raise ValidationError(
            "labels",
            f"has {len(values)} entries for {n} texts",
            "pass one label (or None) per text",
        )
    blank = values.isna() | values.astype(str).str.strip().eq("")
    text = values.astype(str).str.strip()
    lookup = {name: k for k, name in enumerate(names)}
    codes = text.map(lookup)
    unknown = ~blank & codes.isna()
    if unknown.any():
        row = int(np.flatnonzero(unknown.to_numpy())[0])
        raise ValidationError(
            "labels",
            f"row {row} has {values.iloc[row]!r}, which is not one of the classes {names}",
            "fix the label or add the class to the classes",
        )
    return np.where(blank.to_numpy(), -1, codes.fillna(-1).to_numpy()).astype(np.int64)


def _top3(pred_probs: np.ndarray, names: list[str]) -> list[str]:
    top = np.argsort(-pred_probs, axis=1, kind="stable")[:, :3]
    p = np.take_along_axis(pred_probs, top, axis=1)
    arr = np.asarray(names, dtype=object)[top]
    return [
        "|".join(f"{c}:{v:.3f}" for c, v in zip(r, q, strict=True))
        for r, q in zip(arr, p, strict=True)
    ]


def _cross_fitted(
    make: Any, texts: list[str], codes: np.ndarray, names: list[str], random_state: int
) -> np.ndarray:
    """Probabilities of each labeled text from a model fitted on the other folds."""
    from ..model._fewshot import fold_ids

    rng = np.random.default_rng(random_state)
    n_folds = int(min(N_FOLDS, len(codes)))
    folds = fold_ids(codes, n_folds, rng)
    out = np.empty((len(codes), len(names)), dtype=np.float64)
    arr = np.asarray(texts, dtype=object)
    label_names = np.asarray(names, dtype=object)[codes]
    for f in range(n_folds):  # over folds (<= 5), not items
        held = folds == f
        if not held.any():
            continue
        model = make().fit(list(arr[~held]), list(label_names[~held]))
        out[held] = model.predict_proba(list(arr[held]))
    return out


def _predict_rows(model: Any, items: list[str], rows: np.ndarray, out: np.ndarray) -> None:
    """``out[rows] = model.predict_proba(items[rows])``, each distinct text predicted once and
    at most :data:`PREDICT_BLOCK` of them at a time (memory bounded for any number of rows)."""
    texts = [items[i] for i in rows]
    unique = list(dict.fromkeys(texts))
    slot = {t: j for j, t in enumerate(unique)}
    inverse = np.fromiter((slot[t] for t in texts), dtype=np.int64, count=len(texts))
    order = np.argsort(inverse, kind="stable")  # rows grouped by their distinct text
    bounds = np.searchsorted(inverse[order], np.arange(0, len(unique), PREDICT_BLOCK))
    for b, start in enumerate(range(0, len(unique), PREDICT_BLOCK)):
        probs = model.predict_proba(unique[start : start + PREDICT_BLOCK])
        sel = order[bounds[b] : bounds[b + 1] if b + 1 < len(bounds) else len(order)]
        out[rows[sel]] = probs[inverse[sel] - start]


def autolabel_texts(
    texts: Any,
    classes: Any,
    labels: Any = None,
    *,
    max_error: float | None = None,
    confidence: float = 0.95,
    guarantee: str = "rate",
    encoder: Any = None,
    random_state: int = 0,
    llm: dict[str, Any] | None = None,
) -> TextAutoLabelResult:
    """Label ``texts`` from class names (zero-shot) or a few labeled rows (few-shot).

    Parameters
    ----------
    texts : sequence of str
    classes : list of str, dict of str to str, or path
        Class names, ``{name: description}`` or a classes.txt/.yaml/.json file.
    labels : sequence or None, default None
        A label (a class name) for the rows a person labeled, None/NaN/"" elsewhere.
        Without any, the labels are zero-shot.
    max_error : float or None, default None
        Certify the unlabeled rows' labels at this error (``guarantee="rate"``: the error
        rate of the accepted labels) with probability ``confidence``; the rest go to
        review. The certificate is computed on the labeled rows' cross-fitted
        probabilities (5 folds): each is scored by a model fitted without it, as the
        unlabeled rows are by the model fitted on all labeled rows; that model saw a
        quarter more examples, so the certificate errs on the safe side as far as more
        examples help.
    confidence : float, default 0.95
    guarantee : {"rate", "pool"}, default "rate"
    encoder : Encoder or None, default None
        None: :class:`truelabel.encode.OnnxTextEncoder`. Every text is encoded once.
    random_state : int, default 0
        Seed of the folds and of the few-shot model selection.
    llm : dict or None, default None
        Label with an LLM instead of the encoder: keyword arguments of
        :class:`truelabel.llm.LLMClassifier` (``base_url``, ``model``, ...). Its
        probabilities are calibrated on the content-free inputs, and a temperature is fitted
        on the labeled rows when there are any (cross-fitted for the certificate, as for
        the few-shot model). No text is encoded.

    Returns
    -------
    TextAutoLabelResult
    """
    from ..model._classes import check_classes
    from ..model._fewshot import FewShotClassifier
    from ..model._textbase import check_texts
    from ..model._zeroshot import ZeroShotClassifier

    items = check_texts(texts)
    spec = check_classes(classes)
    names = list(spec.names)
    if len(names) < 2:
        raise ValidationError("classes", f"got {len(names)} class", "pass at least two classes")
    if max_error is not None and not 0.0 < max_error < 1.0:
        raise ValidationError("max_error", f"got {max_error!r}", "pass a value in (0, 1)")
    if not 0.0 < confidence < 1.0:
        raise ValidationError("confidence", f"got {confidence!r}", "pass a value in (0, 1)")
    codes = (
        np.full(len(items), -1, dtype=np.int64)
        if labels is None
        else _given_labels(labels, len(items), names)
    )
    if llm is not None:
        return _autolabel_llm(items, classes, names, codes, llm, max_error, confidence,
                              guarantee, random_state)  # fmt: skip
    if encoder is None:
        from ..encode import OnnxTextEncoder

        encoder = OnnxTextEncoder()
    unique = list(dict.fromkeys(items))
    one_pass = getattr(encoder, "encode_with_first_token", None)
    if (codes >= 0).any() and callable(one_pass):
        # few-shot: its first-token view comes from the same forward pass as the vectors
        memo = _MemoEncoder(encoder, unique, *one_pass(unique))
    else:
        memo = _MemoEncoder(encoder, unique, encoder.encode(unique))
    # a CachedEncoder's counts of that one pass over the texts (later calls: class prompts)
    cache_stats = getattr(encoder, "stats", None)
    cache_stats = (
        dict(cache_stats, path=str(encoder.path)) if isinstance(cache_stats, dict) else None
    )
    spec_arg = classes  # the classifiers read the same spec (names, descriptions or file)

    labeled = codes >= 0
    pred_probs = np.empty((len(items), len(names)), dtype=np.float64)
    if not labeled.any():
        method = "zero-shot"
        model: Any = ZeroShotClassifier(spec_arg, encoder=memo).fit(items)
        _predict_rows(model, items, np.arange(len(items)), pred_probs)
    else:
        method = "few-shot"

        def make() -> Any:
            return FewShotClassifier(spec_arg, encoder=memo, random_state=random_state)

        _from_labeled(make, items, codes, names, random_state, pred_probs)

    return _finish(
        pred_probs, codes, names, method, memo.name, cache_stats, max_error, confidence,
        guarantee,
    )  # fmt: skip


def _autolabel_llm(
    items: list[str],
    classes: Any,
    names: list[str],
    codes: np.ndarray,
    llm: dict[str, Any],
    max_error: float | None,
    confidence: float,
    guarantee: str,
    random_state: int,
) -> TextAutoLabelResult:
    """The LLM path of :func:`autolabel_texts` (same table, certificate and messages)."""
    from ..llm import LLMClassifier

    def make() -> Any:
        return LLMClassifier(classes, **llm)

    labeled = codes >= 0
    pred_probs = np.empty((len(items), len(names)), dtype=np.float64)
    if not labeled.any():
        method = "llm zero-shot"
        _predict_rows(make().fit(), items, np.arange(len(items)), pred_probs)
    else:
        method = "llm"
        _from_labeled(make, items, codes, names, random_state, pred_probs)
    name = f"llm {llm.get('model') or '$TRUELABEL_LLM_MODEL'}"
    return _finish(pred_probs, codes, names, method, name, None, max_error, confidence, guarantee)


def _from_labeled(
    make: Any,
    items: list[str],
    codes: np.ndarray,
    names: list[str],
    random_state: int,
    pred_probs: np.ndarray,
) -> None:
    """Fill ``pred_probs``: the unlabeled rows from a model fitted on every labeled row, the
    labeled rows cross-fitted (each from a model that never saw it; one row: its own)."""
    labeled = codes >= 0
    pool = np.flatnonzero(~labeled)
    lab_rows = np.flatnonzero(labeled)
    lab_texts = [items[i] for i in lab_rows]
    model = make().fit(lab_texts, [names[c] for c in codes[lab_rows]])
    if pool.size:
        _predict_rows(model, items, pool, pred_probs)
    if lab_rows.size >= 2:
        pred_probs[lab_rows] = _cross_fitted(make, lab_texts, codes[lab_rows], names, random_state)
    else:
        pred_probs[lab_rows] = model.predict_proba(lab_texts)


def _finish(
    pred_probs: np.ndarray,
    codes: np.ndarray,
    names: list[str],
    method: str,
    encoder_name: str,
    cache_stats: dict[str, Any] | None,
    max_error: float | None,
    confidence: float,
    guarantee: str,
) -> TextAutoLabelResult:
    """The labels table, the certificate (with ``max_error``) and the message."""
    labeled = codes >= 0
    pool = np.flatnonzero(~labeled)
    items = range(len(codes))
    best = pred_probs.argmax(axis=1)
    label = np.where(labeled, codes, best)
    table = pd.DataFrame(
        {
            "label": np.asarray(names, dtype=object)[label],
            "probability": pred_probs[np.arange(len(items)), label],
            "top3": _top3(pred_probs, names),
            "method": np.where(labeled, "given", method),
        }
    )
    certificate: CertifyResult | None = None
    summary: dict[str, Any] = {
        "n_items": len(items),
        "n_labeled": int(labeled.sum()),
        "n_unlabeled": int(pool.size),
        "method": method,
        "classes": names,
        "encoder": encoder_name,
    }
    if cache_stats is not None:
        summary["embedding_cache"] = cache_stats
    head = (
        f"{method} labels for {pool.size} unlabeled rows ({int(labeled.sum())} labeled rows given)"
    )
    if max_error is None:
        message = head
    elif pool.size == 0:
        message = head + "; nothing to certify: every row is labeled"
    elif not labeled.any() or labeled.sum() < 2:
        need = min_calibration_items(max_error, 1.0 - confidence)
        message = (
            f"{head}; nothing certified: the certificate needs reviewed labels to calibrate on, "
            f"and at least {need} of them, all predicted right, before anything can be "
            f"certified at {max_error:.2%} error with {confidence:.0%} confidence: pass them "
            "with labels (--label-col)"
        )
        table["decision"] = np.where(labeled, "given", "review")
        table["reason"] = np.where(labeled, "", "no labeled rows to certify on")
    else:
        lab_rows = np.flatnonzero(labeled)
        certificate = certify_pool(
            pred_probs[pool],
            pred_probs[lab_rows],
            codes[lab_rows],
            max_error=max_error,
            delta=1.0 - confidence,
            classes=names,
            guarantee=guarantee,
            index=pool,
        )
        dec = certificate.decisions
        table["decision"] = "given"
        table["reason"] = ""
        table.loc[pool, "decision"] = np.where(dec["accepted"].to_numpy(), "accepted", "review")
        table.loc[pool, "reason"] = dec["reason"].to_numpy()
        message = f"{head}; {certificate.summary['message']}"
        summary["certificate"] = certificate.summary
    summary["message"] = message
    return TextAutoLabelResult(table, pred_probs, names, certificate, message, summary)
