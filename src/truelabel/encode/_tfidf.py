"""Fast deterministic text encoder: TF-IDF (word 1-2 grams) + truncated SVD (LSA), and the
raw TF-IDF rows (every term kept) in which near-duplicates and outliers are judged."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..exceptions import NotFittedError, ValidationError

__all__ = ["TfidfEncoder"]

#: hashed columns of the raw TF-IDF space (collisions between two terms are rare at 2**20)
RAW_FEATURES = 1 << 20
#: every run of word characters is a token, one letter or digit included ("5", "I")
_TOKENS = r"(?u)\b\w+\b"


class TfidfEncoder:
    """TF-IDF over word uni- and bigrams, reduced by truncated SVD, rows L2-normalised.

    Deterministic for a fixed ``random_state``. ``encode`` fits on its input the first
    time (transductive, as an audit wants); ``fit`` can be called first on a larger
    corpus. ``transform_sparse`` gives the sparse TF-IDF matrix, which a linear model
    classifies better than the reduced vectors. ``transform_raw`` gives the original
    space: TF-IDF over *every* word uni- and bigram (hashed, no ``min_df``, one-character
    tokens kept). The projection drops rare words, so short texts that differ only in
    them ("What is BPH ?", "What is DSL ?") get the same reduced vector; near-duplicates
    and outliers are judged on the raw rows instead.

    Parameters
    ----------
    n_components : int, default 256
    min_df : int, default 2
    random_state : int, default 0

    Examples
    --------
    >>> from truelabel.encode import TfidfEncoder
    >>> enc = TfidfEncoder(n_components=2)
    >>> enc.encode(["card lost", "card stolen", "refund please", "refund now"]).shape
    (4, 2)
    """

    name = "tfidf-lsa"

    def __init__(self, *, n_components: int = 256, min_df: int = 2, random_state: int = 0) -> None:
        self.n_components = n_components
        self.min_df = min_df
        self.random_state = random_state

    def fit(self, texts: Sequence[str]) -> TfidfEncoder:
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import TfidfTransformer, TfidfVectorizer

        texts = _check_texts(texts)
        min_df = self.min_df if len(texts) >= 10 * self.min_df else 1
        self.vectorizer_ = TfidfVectorizer(
            ngram_range=(1, 2), sublinear_tf=True, min_df=min_df, dtype=np.float32
        )
        tfidf = self.vectorizer_.fit_transform(texts)
        if tfidf.shape[1] < 2:
            raise ValidationError(
                "texts",
                f"have {tfidf.shape[1]} word(s) or word pair(s) in at least {min_df} of the "
                f"{len(texts)} texts; TF-IDF/LSA needs at least 2",
                "pass texts with more words, a sentence encoder, or precomputed vectors",
            )
        k = max(1, min(self.n_components, tfidf.shape[1] - 1, tfidf.shape[0] - 1))
        self.svd_ = TruncatedSVD(k, random_state=self.random_state).fit(tfidf)
        self.raw_idf_ = TfidfTransformer(sublinear_tf=True).fit(_hashing().transform(texts))
        return self

    @property
    def dim(self) -> int:
        self._check_fitted()
        return int(self.svd_.n_components)

    def _check_fitted(self) -> None:
        if not hasattr(self, "svd_"):
            raise NotFittedError("TfidfEncoder is not fitted; call fit(texts) or encode(texts)")

    def transform_sparse(self, texts: Sequence[str]) -> Any:
        """Sparse TF-IDF matrix (n_items, vocabulary)."""
        self._check_fitted()
        return self.vectorizer_.transform(_check_texts(texts))

    def transform_raw(self, texts: Sequence[str]) -> Any:
        """Raw TF-IDF rows (CSR float32, L2-normalised, ``RAW_FEATURES`` hashed columns).

        Every word uni- and bigram counts (idf from the fitted corpus; a term unseen
        there gets the largest idf), so two rows are equal exactly when the texts have
        the same words in the same order, ignoring case and punctuation.

        Examples
        --------
        >>> enc = TfidfEncoder(n_components=2).fit(["What is BPH ?", "What is DSL ?", "hi"])
        >>> raw = enc.transform_raw(["What is BPH ?", "what is bph", "What is DSL ?"])
        >>> [round(float(raw[0].multiply(raw[j]).sum()), 2) for j in (1, 2)]
        [1.0, 0.46]
        """
        self._check_fitted()
        return self.raw_idf_.transform(_hashing().transform(_check_texts(texts)))

    def encode(self, items: Sequence[str]) -> np.ndarray:
        from sklearn.preprocessing import normalize

        if not hasattr(self, "svd_"):
            self.fit(items)
        dense = self.svd_.transform(self.transform_sparse(items))
        return np.asarray(normalize(dense), dtype=np.float32)


def _hashing() -> Any:
    from sklearn.feature_extraction.text import HashingVectorizer

    return HashingVectorizer(
        n_features=RAW_FEATURES,
        ngram_range=(1, 2),
        token_pattern=_TOKENS,
        alternate_sign=False,
        norm=None,
        dtype=np.float32,
    )


def _check_texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        raise ValidationError("texts", "got a single string", "pass a list of texts")
    out = ["" if t is None else str(t) for t in texts]
    if not out:
        raise ValidationError("texts", "is empty", "pass at least one text")
    if not any(t.strip() for t in out):
        raise ValidationError("texts", "are all empty", "check the text column")
    return out
