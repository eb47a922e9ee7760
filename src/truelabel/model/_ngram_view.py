"""The few-shot classifier's sparse views of the texts: word 1-2-grams and character
2-4-grams (TF-IDF), each optional, side by side in one sparse matrix.

Word n-grams carry the opening words of a question ("how many", "who"); character
n-grams carry spelling and register (SMS spam: "txt", "£", "claim", digit runs) that
MiniLM's word pieces blur. Which of them a data set's few labels support is chosen by
cross-validation in :class:`~truelabel.model.FewShotClassifier` (on 5 seeds of 8 shots,
character n-grams alone raised SMS spam and lowered TREC), so no view is fixed a priori.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["VIEW_SETS", "NgramViews"]

#: the (words, chars) view sets cross-validation chooses from (beside "neither")
VIEW_SETS = ((True, False), (False, True), (True, True))


def _with_start_marker(text: str) -> str:
    # "xxbos" marks the start of the text, so the opening words ("how many", "who")
    # are their own bigrams: question type and register live there.
    return "xxbos " + text.lower()


def _word_vectorizer() -> Any:
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(
        ngram_range=(1, 2),
        sublinear_tf=True,
        preprocessor=_with_start_marker,  # top-level: the fitted model pickles
        dtype=np.float64,
    )


def _char_vectorizer() -> Any:
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(
        analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True, dtype=np.float64
    )


class NgramViews:
    """Fitted word and/or character n-gram TF-IDF of some texts; ``transform`` stacks the
    views in use column-wise (each block's rows have unit L2 norm).

    Parameters
    ----------
    words, chars : bool
        Which views to build (at least one).
    """

    def __init__(self, words: bool, chars: bool) -> None:
        if not (words or chars):
            raise ValueError("NgramViews needs words or chars")
        self.words = words
        self.chars = chars
        self.word_: Any = _word_vectorizer() if words else None
        self.char_: Any = _char_vectorizer() if chars else None

    def fit(self, texts: Sequence[str]) -> NgramViews:
        """Learn the vocabularies and IDF weights of ``texts``; returns self."""
        for vec in (self.word_, self.char_):
            if vec is not None:
                vec.fit(list(texts))
        return self

    def transform(self, texts: Sequence[str]) -> Any:
        """Sparse CSR matrix (n_texts, n_features) of the views in use."""
        from scipy import sparse

        blocks = [v.transform(list(texts)) for v in (self.word_, self.char_) if v is not None]
        return blocks[0] if len(blocks) == 1 else sparse.hstack(blocks, format="csr")

    @property
    def vocabulary_(self) -> dict[str, int]:
        """The word view's vocabulary (empty without it)."""
        return dict(self.word_.vocabulary_) if self.word_ is not None else {}
