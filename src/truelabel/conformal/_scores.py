"""Conformity scores for classification: LAC, APS and RAPS, for every candidate label at once.

A conformity (nonconformity) score is large when a label fits the item badly. Scores of
every candidate label are computed together, shape ``(n_items, n_classes)``; the score of
the true label is one column of that matrix, so calibration and prediction share exactly
the same arithmetic.
"""

from __future__ import annotations

import os
from typing import Any, NamedTuple

import numpy as np

from .._validation import check_choice, check_labels, check_pred_probs, check_random_state
from ..backend import Backend, Chunk, chunk_ranges, get_backend
from ..data._source import ArraySource, Source, open_source, to_array
from ..exceptions import ValidationError

__all__ = [
    "SCORE_METHODS",
    "ScoreJob",
    "UniformDraws",
    "conformity_scores",
    "label_scores",
    "score_chunk",
]

SCORE_METHODS = ("lac", "aps", "raps")


def check_score_params(method: Any, lam: Any, k_reg: Any) -> tuple[str, float, int]:
    """Validate the score settings shared by every conformal classifier."""
    method = check_choice("method", method, SCORE_METHODS)
    numeric = isinstance(lam, int | float | np.number) and not isinstance(lam, bool)
    if not numeric or not np.isfinite(lam) or lam < 0:
        raise ValidationError(
            "lam", f"got {lam!r}, expected a finite number >= 0", "pass e.g. lam=0.01"
        )
    if isinstance(k_reg, bool) or not isinstance(k_reg, int | np.integer) or k_reg < 0:
        raise ValidationError(
            "k_reg", f"got {k_reg!r}, expected an integer >= 0", "pass e.g. k_reg=1"
        )
    return method, float(lam), int(k_reg)


def _compute_scores(
    pred_probs: np.ndarray,
    method: str,
    u: np.ndarray | None,
    lam: float,
    k_reg: int,
) -> np.ndarray:
    """Scores of every candidate label, (n_items, n_classes) float64. Trusts its input.

    ``u`` is None (non-randomized) or one Uniform(0, 1) draw per item, shared by all its
    candidate labels so the prediction sets stay nested in the threshold.
    """
    p = pred_probs.astype(np.float64, copy=False)
    if method == "lac":
        return np.asarray(1.0 - p)
    order = np.argsort(-p, axis=1, kind="stable")
    sorted_p = np.take_along_axis(p, order, axis=1)
    cum = np.cumsum(sorted_p, axis=1)
    sorted_scores = cum if u is None else cum - sorted_p + u[:, None] * sorted_p
    if method == "raps":
        ranks = np.arange(1, p.shape[1] + 1, dtype=np.float64)
        sorted_scores = sorted_scores + lam * np.maximum(0.0, ranks - k_reg)
    out = np.empty_like(sorted_scores)
    np.put_along_axis(out, order, sorted_scores, axis=1)
    return out


class UniformDraws:
    """One ``Uniform(0, 1)`` draw per item, ``rng.random(n)``, served by row range.

    With a generator whose bit generator can ``advance`` (NumPy's default PCG64), only its
    starting state is kept: rows ``start:stop`` are drawn by a copy advanced ``start``
    steps (one 64-bit step per double), so a chunk draws exactly its own slice of
    ``rng.random(n)`` and no array of ``n`` draws is ever held or sent to a worker. Other
    bit generators draw the ``n`` values once, here. ``rng`` ends where
    ``rng.random(n)`` would have left it either way.
    """

    def __init__(self, rng: np.random.Generator, n: int) -> None:
        bit = rng.bit_generator
        self.n = int(n)
        self.values: np.ndarray | None = None
        self.kind: type[np.random.BitGenerator] | None = None
        if callable(getattr(bit, "advance", None)):
            self.kind = type(bit)
            self.state = bit.state
            bit.advance(self.n)  # type: ignore[attr-defined]
        else:
            self.values = rng.random(self.n)

    def block(self, start: int, stop: int) -> np.ndarray:
        """The draws of rows ``start:stop``."""
        if self.values is not None:
            return self.values[start:stop]
        assert self.kind is not None
        bit = self.kind()
        bit.state = self.state
        bit.advance(start)  # type: ignore[attr-defined]
        return np.random.Generator(bit).random(stop - start)


def _draw_u(rng: np.random.Generator | None, n: int) -> UniformDraws | None:
    return None if rng is None else UniformDraws(rng, n)


def _u_block(u: UniformDraws | np.ndarray | None, start: int, stop: int) -> np.ndarray | None:
    if u is None:
        return None
    if isinstance(u, UniformDraws):
        return u.block(start, stop)
    return u[start:stop]


class ScoreJob(NamedTuple):
    """The shared inputs of :func:`score_chunk` (picklable: an ``.npy`` or Parquet source
    pickles as its path)."""

    pred_probs: Any  # ndarray or truelabel.data.Source
    labels: np.ndarray | None
    method: str
    u: UniformDraws | np.ndarray | None
    lam: float
    k_reg: int


def score_chunk(chunk: Chunk, job: ScoreJob) -> np.ndarray:
    """Scores of rows ``chunk.start:chunk.stop``: every candidate label's (no labels), else
    the given label's. A pure per-chunk function, run by any backend."""
    p = job.pred_probs
    block = p.read(chunk.start, chunk.stop) if isinstance(p, Source) else p[chunk.slice]
    scores = _compute_scores(
        block, job.method, _u_block(job.u, chunk.start, chunk.stop), job.lam, job.k_reg
    )
    if job.labels is None:
        return scores
    return scores[np.arange(scores.shape[0]), job.labels[chunk.slice]]


def _run_scores(
    job: ScoreJob, shape: tuple[int, ...], backend: Backend | str | None, chunk_size: int | None
) -> np.ndarray:
    out = np.empty(shape, dtype=np.float64)
    chunks = chunk_ranges(shape[0], chunk_size)
    for chunk, block in zip(
        chunks, get_backend(backend).map(score_chunk, chunks, job), strict=True
    ):
        out[chunk.slice] = block
    return out


def _scores_chunked(
    pred_probs: Any,
    method: str,
    u: UniformDraws | np.ndarray | None,
    lam: float,
    k_reg: int,
    *,
    backend: Backend | str | None = None,
    chunk_size: int | None = None,
) -> np.ndarray:
    job = ScoreJob(pred_probs, None, method, u, lam, k_reg)
    return _run_scores(job, tuple(pred_probs.shape), backend, chunk_size)


def _label_scores_chunked(
    pred_probs: Any,
    labels: np.ndarray,
    method: str,
    u: UniformDraws | np.ndarray | None,
    lam: float,
    k_reg: int,
    *,
    backend: Backend | str | None = None,
    chunk_size: int | None = None,
) -> np.ndarray:
    job = ScoreJob(pred_probs, labels, method, u, lam, k_reg)
    return _run_scores(job, (pred_probs.shape[0],), backend, chunk_size)


def _rows(pred_probs: Any) -> tuple[np.ndarray, Any]:
    """Validated probabilities, and what the chunks read: the ``.npy``/Parquet source
    itself when one was given (a Ray task then maps the file, not a copy), else the array."""
    if isinstance(pred_probs, str | os.PathLike | Source):
        src = open_source(pred_probs, argument="pred_probs")
        arr = check_pred_probs(to_array(src, argument="pred_probs"))
        return arr, src if not isinstance(src, ArraySource) else arr
    arr = check_pred_probs(pred_probs)
    return arr, arr


def conformity_scores(
    pred_probs: np.typing.ArrayLike,
    *,
    method: str = "lac",
    randomized: bool = True,
    lam: float = 0.01,
    k_reg: int = 1,
    random_state: int | np.random.Generator | None = None,
    backend: Backend | str | None = None,
    chunk_size: int | None = None,
) -> np.ndarray:
    """Nonconformity score of every candidate label of every item (larger = fits worse).

    Parameters
    ----------
    pred_probs : array of shape (n_items, n_classes)
        Predicted probabilities, rows summing to 1.
    method : {"lac", "aps", "raps"}
        ``lac``: ``1 - p_y``. ``aps``: the total probability of the classes ranked above
        ``y`` plus ``p_y`` (or ``U * p_y`` when randomized). ``raps``: APS plus
        ``lam * max(0, rank_y - k_reg)`` with 1-based ranks.
    randomized : bool, default True
        For APS/RAPS, draw ``U ~ Uniform(0, 1)`` once per item (shared by its labels).
        Ignored by LAC.
    lam, k_reg : float, int
        RAPS penalty weight and the number of top classes that are not penalized.
    random_state : int, Generator or None
        Seed for ``U``.
    backend : Backend, "local" or None
        Runs :func:`score_chunk` over row chunks (None: every core). The scores do not
        depend on the backend or ``chunk_size``: each chunk draws exactly its rows' ``U``.
    chunk_size : int, optional
        Rows per chunk (default :data:`~truelabel.backend.DEFAULT_CHUNK_ROWS`).

    Returns
    -------
    ndarray of shape (n_items, n_classes), float64

    Examples
    --------
    >>> import numpy as np
    >>> from truelabel.conformal import conformity_scores
    >>> p = np.array([[0.6, 0.3, 0.1]])
    >>> conformity_scores(p, method="lac").round(2)
    array([[0.4, 0.7, 0.9]])
    >>> conformity_scores(p, method="aps", randomized=False).round(2)
    array([[0.6, 0.9, 1. ]])
    >>> conformity_scores(p, method="raps", randomized=False, lam=0.1, k_reg=1).round(2)
    array([[0.6, 1. , 1.2]])
    """
    method, lam, k_reg = check_score_params(method, lam, k_reg)
    p, rows = _rows(pred_probs)
    rng = check_random_state(random_state) if randomized and method != "lac" else None
    u = _draw_u(rng, p.shape[0])
    return _scores_chunked(rows, method, u, lam, k_reg, backend=backend, chunk_size=chunk_size)


def label_scores(
    pred_probs: np.typing.ArrayLike,
    labels: np.typing.ArrayLike,
    *,
    method: str = "lac",
    randomized: bool = True,
    lam: float = 0.01,
    k_reg: int = 1,
    random_state: int | np.random.Generator | None = None,
    backend: Backend | str | None = None,
    chunk_size: int | None = None,
) -> np.ndarray:
    """Nonconformity score of the given label of every item.

    Equal to ``conformity_scores(...)[np.arange(n_items), labels]`` with the same seed.

    Parameters
    ----------
    pred_probs : array of shape (n_items, n_classes)
    labels : array of shape (n_items,)
        Integer labels in ``[0, n_classes)``.
    method, randomized, lam, k_reg, random_state, backend, chunk_size
        As in :func:`conformity_scores`.

    Returns
    -------
    ndarray of shape (n_items,), float64

    Examples
    --------
    >>> import numpy as np
    >>> from truelabel.conformal import label_scores
    >>> p = np.array([[0.6, 0.3, 0.1], [0.2, 0.5, 0.3]])
    >>> label_scores(p, [1, 1], method="aps", randomized=False).round(2)
    array([0.9, 0.5])
    """
    method, lam, k_reg = check_score_params(method, lam, k_reg)
    p, rows = _rows(pred_probs)
    y = check_labels(labels, n_classes=p.shape[1], n_items=p.shape[0])
    rng = check_random_state(random_state) if randomized and method != "lac" else None
    u = _draw_u(rng, p.shape[0])
    return _label_scores_chunked(
        rows, y, method, u, lam, k_reg, backend=backend, chunk_size=chunk_size
    )
