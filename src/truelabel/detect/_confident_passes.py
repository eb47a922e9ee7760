"""The two chunk passes of confident learning, as pure per-chunk functions.

Pass one validates a chunk and returns its additive statistics (class counts, exact
self-confidence sums, a checksum of its labels) plus its argmax and per-row fingerprint;
pass two, given the thresholds, returns the chunk's K x K confident-joint counts and its
confident guesses. :func:`._confident_learning._confident_stats` runs them on a backend.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from .._validation import check_pred_probs_block
from ..backend import Chunk

#: tolerance below a class threshold that still counts as confident (as cleanlab)
_EPS = 1e-6

#: self-confidences are summed as exact integers in units of 2**-40 (split in 20-bit halves so
#: every partial sum is an exact float64), so the thresholds do not depend on chunking
_FIX_BITS = 40
_HALF_BITS = 20


def _fixed_sums(labels: np.ndarray, values: np.ndarray, n_classes: int) -> np.ndarray:
    """Per-class sums of ``values`` in [0, 1] as exact integers: (2, K) high and low halves."""
    q = np.floor(values * float(1 << _FIX_BITS)).astype(np.int64)
    hi = np.bincount(labels, weights=q >> _HALF_BITS, minlength=n_classes)
    lo = np.bincount(labels, weights=q & ((1 << _HALF_BITS) - 1), minlength=n_classes)
    return np.stack([hi, lo])


@dataclass(frozen=True)
class _PassOne:
    """Additive statistics of the validating pass; ``merge`` is associative and exact."""

    counts: np.ndarray  # (K,) int64 items per given label
    sums: np.ndarray  # (2, K) exact fixed-point sums of self-confidence, high and low halves
    label_crcs: tuple[tuple[int, int], ...]  # (chunk start, CRC-32 of its labels)

    def merge(self, other: _PassOne) -> _PassOne:
        return _PassOne(
            self.counts + other.counts, self.sums + other.sums, self.label_crcs + other.label_crcs
        )

    def thresholds(self) -> np.ndarray:
        """Per-class threshold t_k = mean of p[i, k] over items given k (inf if none)."""
        total = (self.sums[0] * float(1 << _HALF_BITS) + self.sums[1]) / float(1 << _FIX_BITS)
        with np.errstate(invalid="ignore", divide="ignore"):
            t = total / self.counts
        # a class with no given examples never becomes confident
        return np.where(self.counts > 0, t, np.inf)


def _projection(n_classes: int, dtype: np.dtype) -> np.ndarray:
    """(2, K): a row of ones (row sums) and fixed random weights in [1, 2) (fingerprint)."""
    v = np.random.default_rng(20240601).random(n_classes) + 1.0
    return np.stack([np.ones(n_classes), v]).astype(dtype)


def _pass_one_chunk(
    chunk: Chunk, shared: tuple[np.ndarray, np.ndarray, np.ndarray, bool]
) -> tuple[_PassOne, np.ndarray, np.ndarray]:
    """Validate one chunk; its class counts and sums, argmax and per-row fingerprint.

    Two row-wise dot products give the row sums (validation) and a random projection of
    every row (the fingerprint that tells whether the statistics of an earlier call still
    hold). ``einsum`` rather than BLAS: one thread per chunk, no oversubscription.
    """
    labels, pred_probs, proj_w, validate = shared
    y = labels[chunk.slice]
    block = pred_probs[chunk.slice]
    if validate:
        row_sums = np.einsum("ij,j->i", block, proj_w[0])
        check_pred_probs_block(block, chunk.start, row_sums=row_sums)
    fingerprint = np.einsum("ij,j->i", block, proj_w[1])
    k = block.shape[1]
    sc = block[np.arange(y.shape[0]), y].astype(np.float64)
    crc = ((chunk.start, zlib.crc32(np.ascontiguousarray(y).tobytes())),)
    stats = _PassOne(np.bincount(y, minlength=k), _fixed_sums(y, sc, k), crc)
    return stats, block.argmax(axis=1).astype(np.int32), fingerprint


def _confident_chunk(
    chunk: Chunk, shared: tuple[np.ndarray, np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """(K x K confident-joint counts, confident guess per item or -1) of one chunk."""
    labels, pred_probs, t = shared
    y = labels[chunk.slice]
    block = pred_probs[chunk.slice]
    k = block.shape[1]
    masked = np.where(block >= t, block, block.dtype.type(-1))  # probabilities are >= 0
    g = masked.argmax(axis=1)
    g[masked[np.arange(g.shape[0]), g] < 0] = -1  # confident in no class
    ok = g >= 0
    cj = np.bincount(y[ok] * k + g[ok], minlength=k * k).reshape(k, k)
    return cj, g.astype(np.int32)
