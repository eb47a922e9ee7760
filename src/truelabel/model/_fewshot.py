"""Few-shot text classification on frozen sentence embeddings with a class-prompt prior."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import check_random_state, iter_chunks
from ..exceptions import ValidationError
from ._offset_lr import OffsetLR, fit_offset_lr, fit_temperature
from ._textbase import TextClassifierBase, check_texts, softmax_rows
from ._token_view import first_token_vectors, supports_first_token

__all__ = ["FewShotClassifier"]

#: prior scales tried (0 = no prior, plain L2 logistic regression)
PRIOR_SCALES = (0.0, 10.0, 20.0)
#: L2 strengths tried (mean-loss scale: lam = 1 / (C * n_items) in scikit-learn's C)
PENALTIES = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)


def _with_start_marker(text: str) -> str:
    # "xxbos" marks the start of the text, so the opening words ("how many", "who")
    # are their own bigrams: question type and register live there.
    return "xxbos " + text.lower()


def _ngram_vectorizer() -> Any:
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(
        ngram_range=(1, 2),
        sublinear_tf=True,
        preprocessor=_with_start_marker,  # top-level: the fitted model pickles
        dtype=np.float64,
    )


def fold_ids(y: np.ndarray, n_folds: int, rng: np.random.Generator) -> np.ndarray:
    """Stratified folds: items grouped by class (classes and items in random order) and
    dealt round-robin, so every fold is non-empty (``n_folds <= len(y)``) and each class's
    items differ by at most one between folds."""
    order = np.concatenate(
        [rng.permutation(np.flatnonzero(y == k)) for k in rng.permutation(np.unique(y))]
    )
    folds = np.empty(len(y), dtype=np.int64)
    folds[order] = np.arange(len(y)) % n_folds
    return folds


class FewShotClassifier(TextClassifierBase):
    """Logistic regression on frozen embeddings, shrunk towards the zero-shot prior.

    The logits are ``s * cos(text, class prompt) + W [x, t] + U ngrams(text) + b``: the first
    term is the zero-shot classifier of :class:`ZeroShotClassifier` (class descriptions or
    names), the rest is learned from the labeled examples with an L2 penalty, so with one
    example per class the model stays near the prior and with many it moves away. ``x``
    is the sentence embedding, ``t`` the first word's contextual vector from the same
    transformer (see ``_token_view.py``). The prior scale ``s``, the penalty and whether
    the word n-gram and first-token views help are chosen by
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
        cross-validation prefers it). Needs the texts (``fit``, or ``texts=``).
    first_token : {"auto", True, False}, default "auto"
        The first-token view (the last hidden state at the first word; encoders with
        token states only, e.g. :class:`truelabel.encode.OnnxTextEncoder`); "auto": kept
        when cross-validation prefers it. Needs the texts, and one more forward pass.
    n_folds : int, default 5
        Cross-validation folds on the examples (fewer when there are fewer examples).
    random_state : int, Generator or None, default None
        Seed of the fold assignment.

    Attributes
    ----------
    classes_ : ndarray of str
    prior_scale_, penalty_, temperature_ : float
        The chosen prior scale, L2 strength and calibration temperature.
    uses_ngrams_, uses_first_token_ : bool
    cv_log_loss_ : float
        Out-of-fold log-loss of the chosen setting (after the temperature).
    oof_logits_ : ndarray, shape (n_examples, n_classes)
        Out-of-fold logits of the chosen setting (before the temperature).
    """

    def __init__(
        self,
        classes: Any,
        *,
        encoder: Any = None,
        template: str = "{}",
        ngrams: bool | str = "auto",
        first_token: bool | str = "auto",
        n_folds: int = 5,
        random_state: Any = None,
    ) -> None:
        self.classes = classes
        self.encoder = encoder
        self.template = template
        self.ngrams = ngrams
        self.first_token = first_token
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
        for arg in ("ngrams", "first_token"):
            value = getattr(self, arg)
            if not (
                value is True or value is False or (isinstance(value, str) and value == "auto")
            ):
                raise ValidationError(
                    arg, f"got {getattr(self, arg)!r}", "pass 'auto', True or False"
                )
        if not isinstance(self.n_folds, int) or isinstance(self.n_folds, bool) or self.n_folds < 2:
            raise ValidationError("n_folds", f"got {self.n_folds!r}", "pass an integer >= 2")
        if texts is not None and len(texts) != X.shape[0]:
            raise ValidationError(
                "texts", f"{len(texts)} texts for {X.shape[0]} rows", "pass one per row"
            )
        y = self._label_indices(labels, X.shape[0])
        if len(y) < 2:
            raise ValidationError(
                "labels", f"got {len(y)} labeled example", "pass at least 2 (one per class or more)"
            )
        K = len(self.classes_)
        S = X @ self._class_matrix().T
        rng = check_random_state(self.random_state)
        n_folds = min(self.n_folds, X.shape[0])
        folds = fold_ids(y, n_folds, rng)
        text_arr = np.array(texts if texts is not None else [], dtype=object)
        E = self._first_token_view(texts) if self.first_token is not False else None

        warm: dict[tuple[float, int], np.ndarray] = {}

        def cv_logits(
            scale: float, lam: float, use_ngrams: bool, use_tok: bool = False
        ) -> np.ndarray:
            D = np.hstack([X, E]) if use_tok and E is not None else X
            plain = not (use_ngrams or use_tok)
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
                # penalties run strong to weak: each fold starts from the last solution
                start = warm.get((scale, f)) if plain else None
                model, w = fit_offset_lr(D[tr], F_tr, y[tr], scale * S[tr], K, lam, start)
                if plain:
                    warm[(scale, f)] = w
                oof[te] = model.logits(D[te], F_te, scale * S[te])
            return oof

        def log_loss(logits: np.ndarray) -> float:
            p = softmax_rows(logits.copy())
            return -float(np.log(np.maximum(p[np.arange(len(y)), y], 1e-300)).mean())

        def calibrated_log_loss(logits: np.ndarray) -> float:
            # scored after its own temperature: the final model is temperature-scaled
            # too, so a sharp but well-ranked setting is not penalised for sharpness
            return log_loss(logits / fit_temperature(logits, y))

        best: tuple[float, float, float, bool, np.ndarray, bool] | None = None
        for scale in PRIOR_SCALES:
            for lam in sorted(PENALTIES, reverse=True):
                oof = cv_logits(scale, lam, False)
                score = calibrated_log_loss(oof)
                if best is None or score < best[0] - 1e-12:
                    best = (score, scale, lam, False, oof, False)
        assert best is not None
        if texts is not None and self.ngrams is not False:
            oof = cv_logits(best[1], best[2], True)
            score = calibrated_log_loss(oof)
            if self.ngrams is True or score < best[0] - 1e-12:
                best = (score, best[1], best[2], True, oof, False)
        if E is not None:
            oof = cv_logits(best[1], best[2], best[3], True)
            score = calibrated_log_loss(oof)
            if self.first_token is True or score < best[0] - 1e-12:
                best = (score, best[1], best[2], best[3], oof, True)
        _, scale, lam, use_ngrams, oof, use_tok = best
        self.temperature_ = fit_temperature(oof, y)
        self.oof_logits_ = oof
        self.cv_log_loss_ = log_loss(oof / self.temperature_)
        self.prior_scale_, self.penalty_, self.uses_ngrams_ = scale, lam, use_ngrams
        self.uses_first_token_ = use_tok
        F = None
        self.vectorizer_: Any = None
        if use_ngrams:
            self.vectorizer_ = _ngram_vectorizer().fit(texts)
            F = self.vectorizer_.transform(texts)
        D = np.hstack([X, E]) if use_tok and E is not None else X
        self.model_: OffsetLR = fit_offset_lr(D, F, y, scale * S, K, lam)[0]
        self.n_features_in_ = X.shape[1]
        return self

    def _first_token_view(self, texts: list[str] | None) -> np.ndarray | None:
        """First-token vectors of ``texts`` when the encoder exposes token states."""
        encoder = self._get_encoder()
        if texts is None or not supports_first_token(encoder):
            if self.first_token is True:
                raise ValidationError(
                    "first_token",
                    "is True but "
                    + (
                        "no texts were given"
                        if texts is None
                        else "the encoder has no token states"
                    ),
                    "pass texts (fit, or fit_embeddings(..., texts=)) with an OnnxTextEncoder, "
                    "or first_token='auto'",
                )
            return None
        return first_token_vectors(encoder, texts)

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
        if self.uses_ngrams_ or self.uses_first_token_:
            if texts is None:
                view = "word n-gram" if self.uses_ngrams_ else "first-token"
                raise ValidationError(
                    "texts",
                    f"this model uses the {view} view (uses_ngrams_={self.uses_ngrams_}, "
                    f"uses_first_token_={self.uses_first_token_})",
                    "pass texts= with the embeddings, or fit with ngrams=False, first_token=False",
                )
            items = check_texts(texts)
            if len(items) != Xn.shape[0]:
                raise ValidationError(
                    "texts", f"{len(items)} texts for {Xn.shape[0]} rows", "pass one per row"
                )
        C = self._class_matrix()
        out = np.empty((Xn.shape[0], C.shape[0]))
        for rows in iter_chunks(Xn.shape[0]):
            F = None
            D = Xn[rows]
            if items is not None and self.uses_ngrams_:
                F = self.vectorizer_.transform(items[rows])
            if items is not None and self.uses_first_token_:
                D = np.hstack([D, first_token_vectors(self._get_encoder(), items[rows])])
            offset = self.prior_scale_ * (Xn[rows] @ C.T)
            out[rows] = softmax_rows(self.model_.logits(D, F, offset) / self.temperature_)
        return out
