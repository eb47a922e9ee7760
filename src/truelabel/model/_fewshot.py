"""Few-shot text classification on frozen sentence embeddings with a class-prompt prior."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import check_random_state, iter_chunks
from ..exceptions import ValidationError
from ._ngram_view import VIEW_SETS, NgramViews
from ._offset_lr import OffsetLR, fit_offset_lr, fit_temperature
from ._textbase import TextClassifierBase, check_texts, softmax_rows
from ._token_view import (
    TextViews,
    first_token_vectors,
    pooled_and_first_token,
    supports_first_token,
)

__all__ = ["FewShotClassifier"]

#: prior scales tried (0 = no prior, plain L2 logistic regression)
PRIOR_SCALES = (0.0, 10.0, 20.0)
#: weights of the first-token view tried (its vectors are scaled by the weight, so under
#: the one L2 penalty it is regularised weight**2 times less than the embedding)
TOKEN_WEIGHTS = (1.0, 2.0, 3.0, 4.0)
#: L2 strengths tried (mean-loss scale: lam = 1 / (C * n_items) in scikit-learn's C)
PENALTIES = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)


def _allowed(flag: bool, setting: bool | str) -> bool:
    """Whether a view set with this view ``flag`` is allowed by its setting."""
    return setting == "auto" or flag is setting


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
    transformer (see ``_token_view.py``). The prior scale ``s``, the penalty and which
    of the word n-gram, character n-gram and first-token views help are chosen by
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
    chars : {"auto", True, False}, default "auto"
        Character 2-4-gram TF-IDF view (spelling, symbols, digit runs); "auto": kept when
        cross-validation prefers it, alone or with the word n-grams (see
        ``_ngram_view.py``). Needs the texts.
    first_token : {"auto", True, False}, default "auto"
        The first-token view (the last hidden state at the first word; encoders with
        token states only, e.g. :class:`truelabel.encode.OnnxTextEncoder`); "auto": kept
        when cross-validation prefers it. Needs the texts, and one more forward pass.
    prior_scale, penalty : "auto" or float, default "auto"
        Fix the prior scale ``s`` / the L2 strength instead of choosing it by
        cross-validation (a fitted model's choices are in ``selected_params_``).
    temperature : "auto" or float, default "auto"
        Fix the calibration temperature; with every setting fixed (``prior_scale``,
        ``penalty``, ``temperature`` numbers, ``ngrams`` and ``first_token`` booleans) ``fit``
        runs no cross-validation, one fit (what the self-trainer's refits on pseudo-labels
        use: the choices made on the labeled examples, ``set_params(**selected_params_)``).
    n_folds : int, default 5
        Cross-validation folds on the examples (fewer when there are fewer examples).
    random_state : int, Generator or None, default None
        Seed of the fold assignment.

    Attributes
    ----------
    classes_ : ndarray of str
    prior_scale_, penalty_, temperature_ : float
        The chosen prior scale, L2 strength and calibration temperature.
    uses_ngrams_, uses_chars_, uses_first_token_ : bool
        The views kept (word n-grams, character n-grams, first-token).
    cv_log_loss_ : float
        Out-of-fold log-loss of the chosen setting (after the temperature).
    oof_logits_ : ndarray, shape (n_examples, n_classes)
        Out-of-fold logits of the chosen setting (before the temperature).
    selected_params_ : dict
        The chosen settings as constructor keywords (``prior_scale``, ``penalty``,
        ``temperature``, ``ngrams``, ``chars``, ``first_token``, ``token_weight``).
    """

    def __init__(
        self,
        classes: Any,
        *,
        encoder: Any = None,
        template: str = "{}",
        ngrams: bool | str = "auto",
        chars: bool | str = "auto",
        first_token: bool | str = "auto",
        token_weight: float | str = "auto",
        prior_scale: float | str = "auto",
        penalty: float | str = "auto",
        temperature: float | str = "auto",
        n_folds: int = 5,
        random_state: Any = None,
    ) -> None:
        self.classes = classes
        self.encoder = encoder
        self.template = template
        self.ngrams = ngrams
        self.chars = chars
        self.first_token = first_token
        self.token_weight = token_weight
        self.prior_scale = prior_scale
        self.penalty = penalty
        self.temperature = temperature
        self.n_folds = n_folds
        self.random_state = random_state

    # -- inputs ----------------------------------------------------------------------
    def compute_views(self, texts: Any | None = None, X: Any | None = None) -> TextViews:
        """The per-item inputs of :meth:`fit_views` / :meth:`predict_proba_views`.

        ``X`` (embeddings of the same encoder) saves encoding the texts; the first-token
        view runs the encoder on the texts when it can be used (``first_token`` not False
        and, once fitted, ``uses_first_token_``). Compute once, then ``views.take(rows)``.
        """
        fitted = hasattr(self, "model_")
        return self._views(texts, X, self.uses_first_token_ if fitted else self.first_token)

    def _views(self, texts: Any | None, X: Any | None, first_token: Any) -> TextViews:
        items = None if texts is None else check_texts(texts)
        if X is None:
            if items is None:
                raise ValidationError("texts", "and X are both None", "pass texts or vectors")
            if first_token is not False and supports_first_token(self._get_encoder()):
                # both views from one forward pass of the encoder
                X, both = pooled_and_first_token(self._get_encoder(), items)
                return TextViews(self._check_embeddings(X, "encoder output"), items, both)
            Xn = self._encode(items)
        else:
            Xn = self._check_embeddings(X)
            if items is not None and len(items) != Xn.shape[0]:
                raise ValidationError(
                    "texts", f"{len(items)} texts for {Xn.shape[0]} rows", "pass one per row"
                )
        tokens = self._first_token_view(items) if first_token is not False else None
        return TextViews(Xn, items, tokens)

    # -- fitting -----------------------------------------------------------------
    def fit(self, texts: Any, labels: Any) -> FewShotClassifier:
        """Learn from labeled ``texts`` (``labels`` are class names); returns self."""
        return self.fit_views(self._views(texts, None, self.first_token), labels)

    def fit_embeddings(self, X: Any, labels: Any, texts: Any | None = None) -> FewShotClassifier:
        """:meth:`fit` on precomputed embeddings (same encoder); the n-gram and first-token
        views only when ``texts`` are given too."""
        return self.fit_views(self._views(texts, X, self.first_token), labels)

    def fit_views(self, views: TextViews, labels: Any) -> FewShotClassifier:
        """:meth:`fit` on :meth:`compute_views` output (or rows of it); returns self."""
        X, texts, E = views.X, views.texts, views.tokens
        if labels is None:
            raise ValidationError(
                "labels",
                "is None",
                "pass one class name per text, or use ZeroShotClassifier for no labels",
            )
        self._check_settings()
        y = self._label_indices(labels, X.shape[0])
        if len(y) < 2:
            raise ValidationError(
                "labels", f"got {len(y)} labeled example", "pass at least 2 (one per class or more)"
            )
        if self.first_token is True and E is None:
            self._first_token_view(None)  # raises: the view was asked for and is missing
        for arg in ("ngrams", "chars"):
            if getattr(self, arg) is True and texts is None:
                raise ValidationError(
                    arg, "is True but no texts were given", f"pass texts, or {arg}='auto'"
                )
        K = len(self.classes_)
        S = X @ self._class_matrix().T
        rng = check_random_state(self.random_state)
        n_folds = min(self.n_folds, X.shape[0])
        folds = fold_ids(y, n_folds, rng)
        text_arr = np.array(texts if texts is not None else [], dtype=object)
        if self.first_token is False:
            E = None

        warm: dict[tuple[float, int], np.ndarray] = {}
        # each fold's n-gram features of a view set, fitted on its training texts once
        # (the token-weight search reuses the chosen set's)
        fold_features: dict[tuple[tuple[bool, bool], int], tuple[Any, Any]] = {}

        no_views = (False, False)

        def cv_logits(
            scale: float, lam: float, views: tuple[bool, bool], tok: float = 0.0
        ) -> np.ndarray:
            use_tok, use_ngrams = tok > 0, any(views)
            D = np.hstack([X, tok * E]) if use_tok and E is not None else X
            plain = not (use_ngrams or use_tok)
            oof = np.empty((X.shape[0], K))
            for f in range(n_folds):
                tr, te = folds != f, folds == f
                if not te.any():
                    continue
                F_tr = F_te = None
                if use_ngrams:
                    if (views, f) not in fold_features:
                        vec = NgramViews(*views).fit(text_arr[tr].tolist())
                        fold_features[views, f] = (
                            vec.transform(text_arr[tr].tolist()),
                            vec.transform(text_arr[te].tolist()),
                        )
                    F_tr, F_te = fold_features[views, f]
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

        scales = PRIOR_SCALES if self.prior_scale == "auto" else (float(self.prior_scale),)
        lams = PENALTIES if self.penalty == "auto" else (float(self.penalty),)
        toks = TOKEN_WEIGHTS if self.token_weight == "auto" else (float(self.token_weight),)
        fixed = (
            len(scales) == len(lams) == 1
            and (len(toks) == 1 or self.first_token is False)
            and self.temperature != "auto"
            and isinstance(self.ngrams, bool)
            and isinstance(self.chars, bool)
            and isinstance(self.first_token, bool)
        )
        oof: np.ndarray | None = None
        if fixed:  # nothing to choose: one fit, no cross-validation
            scale, lam = scales[0], lams[0]
            vset, tok = (bool(self.ngrams), bool(self.chars)), toks[0] if self.first_token else 0.0
        else:
            best: tuple[float, float, float, tuple[bool, bool], np.ndarray, float] | None = None
            for scale in scales:
                for lam in sorted(lams, reverse=True):
                    oof = cv_logits(scale, lam, no_views)
                    score = calibrated_log_loss(oof)
                    if best is None or score < best[0] - 1e-12:
                        best = (score, scale, lam, no_views, oof, 0.0)
            assert best is not None
            if texts is not None:
                # the view sets the shots support: word and/or character n-grams, or none
                forced = self.ngrams is True or self.chars is True
                plain_best = best
                for pair in VIEW_SETS:
                    if not (_allowed(pair[0], self.ngrams) and _allowed(pair[1], self.chars)):
                        continue
                    oof = cv_logits(plain_best[1], plain_best[2], pair)
                    score = calibrated_log_loss(oof)
                    if (forced and best[3] == no_views) or score < best[0] - 1e-12:
                        best = (score, plain_best[1], plain_best[2], pair, oof, 0.0)
            if E is not None:
                without = best
                for i, weight in enumerate(toks):
                    oof = cv_logits(without[1], without[2], without[3], weight)
                    score = calibrated_log_loss(oof)
                    forced = self.first_token is True and i == 0
                    if forced or score < best[0] - 1e-12:
                        best = (score, without[1], without[2], without[3], oof, weight)
            _, scale, lam, vset, oof, tok = best
        use_tok = tok > 0
        if self.temperature == "auto":
            assert oof is not None
            self.temperature_ = fit_temperature(oof, y)
        else:
            self.temperature_ = float(self.temperature)
        self.oof_logits_ = oof
        self.cv_log_loss_ = np.nan if oof is None else log_loss(oof / self.temperature_)
        self.prior_scale_, self.penalty_ = scale, lam
        self.uses_ngrams_, self.uses_chars_ = vset
        self.uses_first_token_ = use_tok
        F = None
        self.vectorizer_: NgramViews | None = None
        if any(vset):
            assert texts is not None
            self.vectorizer_ = NgramViews(*vset).fit(texts)
            F = self.vectorizer_.transform(texts)
        self.token_weight_ = tok
        D = np.hstack([X, tok * E]) if use_tok and E is not None else X
        self.model_: OffsetLR = fit_offset_lr(D, F, y, scale * S, K, lam)[0]
        self.n_features_in_ = X.shape[1]
        self.selected_params_ = {
            "prior_scale": scale,
            "penalty": lam,
            "temperature": self.temperature_,
            "ngrams": vset[0],
            "chars": vset[1],
            "first_token": use_tok,
            "token_weight": tok if use_tok else self.token_weight,
        }
        return self

    def _check_settings(self) -> None:
        for arg in ("ngrams", "chars", "first_token"):
            value = getattr(self, arg)
            if not (
                value is True or value is False or (isinstance(value, str) and value == "auto")
            ):
                raise ValidationError(
                    arg, f"got {getattr(self, arg)!r}", "pass 'auto', True or False"
                )
        for arg in ("prior_scale", "penalty", "temperature", "token_weight"):
            value = getattr(self, arg)
            if isinstance(value, str) and value == "auto":
                continue
            low = 0.0 if arg == "prior_scale" else np.nextafter(0.0, 1.0)
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not low <= value < np.inf
            ):
                rule = ">= 0" if arg == "prior_scale" else "> 0"
                raise ValidationError(arg, f"got {value!r}", f"pass 'auto' or a number {rule}")
        if not isinstance(self.n_folds, int) or isinstance(self.n_folds, bool) or self.n_folds < 2:
            raise ValidationError("n_folds", f"got {self.n_folds!r}", "pass an integer >= 2")

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
        self._require_fitted("model_")
        return self.predict_proba_views(self.compute_views(texts))

    def predict_proba_embeddings(self, X: Any, texts: Any | None = None) -> np.ndarray:
        """Class probabilities of precomputed embeddings, (n_items, n_classes) float64.

        ``texts`` (the same items) are needed when the fitted model uses the n-gram or the
        first-token view.
        """
        self._require_fitted("model_")
        return self.predict_proba_views(self.compute_views(texts, X))

    def predict_proba_views(self, views: TextViews) -> np.ndarray:
        """Class probabilities of :meth:`compute_views` output, (n_items, n_classes)."""
        self._require_fitted("model_")
        Xn = views.X
        if (self.vectorizer_ is not None and views.texts is None) or (
            self.uses_first_token_ and views.tokens is None
        ):
            view = "n-gram" if self.vectorizer_ is not None else "first-token"
            raise ValidationError(
                "texts",
                f"this model uses the {view} view (uses_ngrams_={self.uses_ngrams_}, "
                f"uses_chars_={self.uses_chars_}, uses_first_token_={self.uses_first_token_})",
                "pass texts= with the embeddings, or fit with ngrams=False, chars=False, "
                "first_token=False",
            )
        C = self._class_matrix()
        out = np.empty((Xn.shape[0], C.shape[0]))
        for rows in iter_chunks(Xn.shape[0]):
            F = None
            D = Xn[rows]
            if self.vectorizer_ is not None and views.texts is not None:
                F = self.vectorizer_.transform(views.texts[rows])
            if self.uses_first_token_ and views.tokens is not None:
                D = np.hstack([D, self.token_weight_ * views.tokens[rows]])
            offset = self.prior_scale_ * (Xn[rows] @ C.T)
            out[rows] = softmax_rows(self.model_.logits(D, F, offset) / self.temperature_)
        return out
