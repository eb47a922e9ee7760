"""Zero-shot text classification: cosine to the embedded class names or descriptions."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import iter_chunks
from ..exceptions import ValidationError
from ._textbase import TextClassifierBase, softmax_rows

__all__ = ["ZeroShotClassifier"]


def check_temperature(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < np.inf:
        raise ValidationError("temperature", f"got {value!r}", "pass a positive number, e.g. 0.05")
    return float(value)


def adapt_centroids(X: np.ndarray, C: np.ndarray, n_iter: int) -> tuple[np.ndarray, np.ndarray]:
    """Class centroids and prior from an unlabeled pool, anchored at the class prompts.

    Spherical k-means started at the prompt vectors ``C``: each round assigns every
    pool item to its nearest centroid and moves the centroid to the normalised sum of
    its items plus the prompt vector (the prompt stays in as one pseudo-item, so an
    empty class keeps its prompt). The prior is the share of the pool assigned to each
    class, with one pseudo-item per class (Laplace), so no class gets probability 0.
    """
    K = C.shape[0]
    M = C.copy()
    counts = np.zeros(K)
    for _ in range(n_iter):
        sums = C.copy()
        counts = np.zeros(K)
        for rows in iter_chunks(X.shape[0]):
            assign = (X[rows] @ M.T).argmax(axis=1)
            np.add.at(sums, assign, X[rows])
            counts += np.bincount(assign, minlength=K)
        M = sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)
    prior = (counts + 1.0) / (counts.sum() + K)
    return M, prior


class ZeroShotClassifier(TextClassifierBase):
    """Classify texts by their cosine similarity to the class names or descriptions.

    ``predict_proba(texts)`` is ``softmax(cos(text, class_k) / temperature + log prior_k)``
    where ``class_k`` is the embedded class prompt: the description when ``classes`` is a
    ``{name: description}`` dict, else the name (``_`` and ``-`` read as spaces), put into
    ``template``. It works without ``fit`` (uniform prior, prompt vectors). ``fit(texts)``
    on the unlabeled pool adapts without labels: the class vectors move to the pool's
    clusters (spherical k-means started at, and anchored to, the prompts) and the prior
    becomes the share of the pool in each class.

    Parameters
    ----------
    classes : list of str, dict of str to str, or path
        Class names, ``{name: description}``, or a classes.txt/.yaml/.json file
        (see :func:`truelabel.model.read_classes`).
    encoder : Encoder or None, default None
        Text encoder (None: :class:`truelabel.encode.OnnxTextEncoder`, all-MiniLM-L6-v2).
    template : str, default "{}"
        Prompt with one ``{}`` for the class text, e.g. ``"a question about {}"``.
    temperature : float, default 0.05
        Softmax temperature on cosine similarities (fixed a priori; smaller is sharper).
    n_iter : int, default 10
        Rounds of centroid adaptation in ``fit``.
    random_state : None
        Accepted for the common constructor of text classifiers; nothing here is random.

    Attributes
    ----------
    classes_ : ndarray of str, shape (n_classes,)
    class_vectors_ : ndarray, shape (n_classes, dim)
        After ``fit``: the adapted class vectors.
    prior_ : ndarray, shape (n_classes,)
        After ``fit``: the estimated class shares of the pool.

    Examples
    --------
    >>> from truelabel import ZeroShotClassifier  # doctest: +SKIP
    >>> clf = ZeroShotClassifier(classes={"refund": "asking for money back",
    ...                                   "card": "a lost or stolen card"})  # doctest: +SKIP
    >>> clf.predict(["I want my money back"]).tolist()  # doctest: +SKIP
    ['refund']
    """

    def __init__(
        self,
        classes: Any,
        *,
        encoder: Any = None,
        template: str = "{}",
        temperature: float = 0.05,
        n_iter: int = 10,
        random_state: Any = None,
    ) -> None:
        self.classes = classes
        self.encoder = encoder
        self.template = template
        self.temperature = temperature
        self.n_iter = n_iter
        self.random_state = random_state

    def fit(self, texts: Any, labels: Any = None) -> ZeroShotClassifier:
        """Adapt the class vectors and prior to the unlabeled pool ``texts``; returns self."""
        self._no_labels(labels)
        return self.fit_embeddings(self._encode(texts), None)

    def fit_embeddings(self, X: Any, labels: Any = None) -> ZeroShotClassifier:
        """:meth:`fit` on precomputed embeddings of the pool (same encoder)."""
        self._no_labels(labels)
        if not isinstance(self.n_iter, int) or isinstance(self.n_iter, bool) or self.n_iter < 1:
            raise ValidationError("n_iter", f"got {self.n_iter!r}", "pass an integer >= 1")
        check_temperature(self.temperature)
        Xn = self._check_embeddings(X)
        self.class_vectors_, self.prior_ = adapt_centroids(Xn, self._class_matrix(), self.n_iter)
        self.n_features_in_ = Xn.shape[1]
        return self

    def _no_labels(self, labels: Any) -> None:
        if labels is not None:
            raise ValidationError(
                "labels",
                "ZeroShotClassifier learns from no labels",
                "use FewShotClassifier(classes=...).fit(texts, labels) for labeled examples",
            )

    def decision_function_embeddings(self, X: Any) -> np.ndarray:
        """Cosine similarity of each row of ``X`` to each class vector, (n_items, n_classes)."""
        Xn = self._check_embeddings(X)
        C = getattr(self, "class_vectors_", None)
        return Xn @ (self._class_matrix() if C is None else C).T

    def predict_proba_embeddings(self, X: Any) -> np.ndarray:
        """Class probabilities of precomputed embeddings, (n_items, n_classes) float64."""
        T = check_temperature(self.temperature)
        logits = self.decision_function_embeddings(X) / T
        prior = getattr(self, "prior_", None)
        if prior is not None:
            logits += np.log(prior)
        return softmax_rows(logits)
