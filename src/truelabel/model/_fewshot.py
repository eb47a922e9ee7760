"""Few-shot text classification on frozen sentence embeddings with a class-prompt prior."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import check_random_state, iter_chunks
from ..exceptions import ValidationError
from ._offset_lr import OffsetLR, fit_offset_lr, fit_temperature
from ._textbase import TextClassifierBase, check_texts, softmax_rows

__all__ = ["FewShotClassifier"]

#: prior scales tried (0 = no prior, plain L2 logistic regression)
PRIOR_SCALES = (0.0, 10.0, 20.0)
#: L2 strengths tried (mean-loss scale: lam = 1 / (C * n_items) in scikit-learn's C)
PENALTIES = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)


def _ngram_vectorizer() -> Any:
    from sklearn.feature_extraction.text import TfidfVectorizer

    # "xxbos" marks the start of the text, so the opening words ("how many", "who")
    # are their own bigrams: question type and register live there.
    return TfidfVectorizer(
        ngram_range=(1, 2),
        sublinear_tf=True,
        preprocessor=lambda s: "xxbos " + s.lower(),
        dtype=np.float64,
    )


def fold_ids(y: np.ndarray, n_folds: int, rng: np.random.Generator) -> np.ndarray:
    """Stratified folds: each class's items dealt round-robin from a random start."""
    folds = np.empty(len(y), dtype=np.int64)
    for k in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == k))
        folds[idx] = (np.arange(len(idx)) + rng.integers(n_folds)) % n_folds
    return folds


class FewShotClassifier(TextClassifierBase):
    """Logistic regression on frozen embeddings, shrunk towards the zero-shot prior.

    The logits are ``s * cos(text, class prompt) + W x + U ngrams(text) + b``: the first
    term is the zero-shot classifier of :class:`ZeroShotClassifier` (class descriptions or
    names), the rest is learned from the labeled examples with an L2 penalty, so with one
    example per class the model stays near the prior and with many it moves away. The
    prior scale ``s``, the penalty and whether the word n-gram view helps are chosen by
    stratified cross-validation (log-loss) on the examples themselves; the out-of-fold
    logits of the chosen setting then fit one temperature, so ``predict_proba`` is
    calibrated on held-out examples, never on the ones a fold trained on.

    Parameters
    ----------
    classes : list of str, dict of str to str, or path
        Class names, ``{name: description}``, or a classes.txt/.yaml/.json file.
    encoder : Encoder or None, default None
        Text encoder (None: :class:`truelabel.encode.OnnxTextEncoder`).
    template : str, default "{}"
        Prompt with one ``{}`` for the class text of the prior.
    ngrams : {"auto", True, False}, default "auto"
        Word 1-2-gram TF-IDF view of the texts beside the embedding ("auto": kept when
        cross-validation prefers it). Only :meth:`fit` (texts) can use it.
    n_folds : int, default 5
        Cross-validation folds on the examples (fewer when there are fewer examples).
    random_state : int, Generator or None, default None
        Seed of the fold assignment.

    Attributes
    ----------
    classes_ : ndarray of str
    prior_scale_, penalty_, temperature_ : float
        The chosen prior scale, L2 strength and calibration temperature.
    uses_ngrams_ : bool
    cv_log_loss_ : float
        Out-of-fold log-loss of the chosen setting (after the temperature).
    """

    def __init__(
        self,
        classes: Any,
        *,
        encoder: Any = None,
        template: str = "{}",
        ngrams: bool | str = "auto",
        n_folds: int = 5,
        random_state: Any = None,
    ) -> None:
        self.classes = classes
        self.encoder = encoder
        self.template = template
        self.ngrams = ngrams
        self.n_folds = n_folds
        self.random_state = random_state

    # -- fitting -----------------------------------------------------------------
    def fit(self, texts: Any, labels: Any) -> FewShotClassifier:
        """Learn from labeled ``texts`` (``labels`` are class names); returns self."""
        items = check_texts(texts)
        return self._fit(self._encode(items), labels, items)

    def fit_embeddings(self, X: Any, labels: Any, texts: Any | None = None) -> FewShotClassifier:
        """:meth:`fit` on precomputed embeddings (same encoder); the n-gram view only
        when ``texts`` are given too."""
        items = None if texts is None else check_texts(texts)
        return self._fit(self._check_embeddings(X), labels, items)

    def _fit(self, X: np.ndarray, labels: Any, texts: list[str] | None) -> FewShotClassifier:
        if labels is None:
            raise ValidationError(
                "labels",
                "is None",
                "pass one class name per text, or use ZeroShotClassifier for no labels",
            )
        if self.ngrams not in ("auto", True, False):
            raise ValidationError("ngrams", f"got {self.ngrams!r}", "pass 'auto', True or False")
        if not isinstance(self.n_folds, int) or isinstance(self.n_folds, bool) or self.n_folds < 2:
            raise ValidationError("n_folds", f"got {self.n_folds!r}", "pass an integer >= 2")
        if texts is not None and len(texts) != X.shape[0]:
            raise ValidationError(
                "texts", f"{len(texts)} texts for {X.shape[0]} rows", "pass one per row"
            )
        y = self._label_indices(labels, X.shape[0])
        K = len(self.classes_)
        S = X @ self._class_matrix().T
        rng = check_random_state(self.random_state)
        n_folds = min(self.n_folds, X.shape[0])
        folds = fold_ids(y, n_folds, rng)
        text_arr = np.array(texts if texts is not None else [], dtype=object)

        def cv_logits(scale: float, lam: float, use_ngrams: bool) -> np.ndarray:
            oof = np.empty((X.shape[0], K))
            for f in range(n_folds):
                tr, te = folds != f, folds == f
                if not te.any():
                    continue
                F_tr = F_te = None
                if use_ngrams:
                    vec = _ngram_vectorizer().fit(text_arr[tr].tolist())
                    F_tr = vec.transform(text_arr[tr].tolist())
                    F_te = vec.transform(text_arr[te].tolist())
                model, _ = fit_offset_lr(X[tr], F_tr, y[tr], scale * S[tr], K, lam)
                oof[te] = model.logits(X[te], F_te, scale * S[te])
            return oof

        def log_loss(logits: np.ndarray) -> float:
            p = softmax_rows(logits.copy())
            return -float(np.log(np.maximum(p[np.arange(len(y)), y], 1e-300)).mean())

        def calibrated_log_loss(logits: np.ndarray) -> float:
            # scored after its own temperature: the final model is temperature-scaled
            # too, so a sharp but well-ranked setting is not penalised for sharpness
            return log_loss(logits / fit_temperature(logits, y))

        best: tuple[float, float, float, bool, np.ndarray] | None = None
        for scale in PRIOR_SCALES:
            for lam in PENALTIES:
                oof = cv_logits(scale, lam, False)
                score = calibrated_log_loss(oof)
                if best is None or score < best[0] - 1e-12:
                    best = (score, scale, lam, False, oof)
        assert best is not None
        if texts is not None and self.ngrams is not False:
            oof = cv_logits(best[1], best[2], True)
            score = calibrated_log_loss(oof)
            if self.ngrams is True or score < best[0] - 1e-12:
                best = (score, best[1], best[2], True, oof)
        _, scale, lam, use_ngrams, oof = best
        self.temperature_ = fit_temperature(oof, y)
        self.cv_log_loss_ = log_loss(oof / self.temperature_)
        self.prior_scale_, self.penalty_, self.uses_ngrams_ = scale, lam, use_ngrams
        F = None
        self.vectorizer_: Any = None
        if use_ngrams:
            self.vectorizer_ = _ngram_vectorizer().fit(texts)
            F = self.vectorizer_.transform(texts)
        self.model_: OffsetLR = fit_offset_lr(X, F, y, scale * S, K, lam)[0]
        self.n_features_in_ = X.shape[1]
        return self

    # -- prediction ----------------------------------------------------------------
    def predict_proba(self, texts: Any) -> np.ndarray:
        """Class probabilities, shape (n_items, n_classes), columns in ``classes_`` order."""
        items = check_texts(texts)
        return self.predict_proba_embeddings(self._encode(items), texts=items)

    def predict_proba_embeddings(self, X: Any, texts: Any | None = None) -> np.ndarray:
        """Class probabilities of precomputed embeddings, (n_items, n_classes) float64.

        ``texts`` (the same items) are needed when the fitted model uses the n-gram view.
        """
        self._require_fitted("model_")
        Xn = self._check_embeddings(X)
        items = None
        if self.uses_ngrams_:
            if texts is None:
                raise ValidationError(
                    "texts",
                    "this model uses the word n-gram view (uses_ngrams_ is True)",
                    "pass texts= with the embeddings, or fit with ngrams=False",
                )
            items = check_texts(texts)
            if len(items) != Xn.shape[0]:
                raise ValidationError(
                    "texts", f"{len(items)} texts for {Xn.shape[0]} rows", "pass one per row"
                )
        C = self._class_matrix()
        out = np.empty((Xn.shape[0], C.shape[0]))
        for rows in iter_chunks(Xn.shape[0]):
            F = None if items is None else self.vectorizer_.transform(items[rows])
            offset = self.prior_scale_ * (Xn[rows] @ C.T)
            out[rows] = softmax_rows(self.model_.logits(Xn[rows], F, offset) / self.temperature_)
        return out
