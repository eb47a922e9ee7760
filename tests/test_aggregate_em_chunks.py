"""The EM core where a second mutmut sample (aggregate/_em.py) found no test: exactly two
chunks, a count matrix whose last items and annotators gave no answer, the fix in the
empty-``inits`` error."""

from __future__ import annotations

import numpy as np
import pytest

from truelabel import ValidationError
from truelabel.aggregate._em import MStep, counts_from_codes, run_em

ITEM = np.array([0, 0, 0, 1, 1, 2, 2, 2, 3, 3, 4])
ANNOT = np.array([0, 1, 2, 0, 2, 0, 1, 2, 1, 2, 0])
LABEL = np.array([0, 0, 1, 2, 2, 1, 1, 0, 0, 2, 1])


def _step(N, totals, prev):
    # a data-driven M-step (smoothed confusions and priors), so wrong counts change the result
    conf = N + 0.5
    conf /= conf.sum(axis=2, keepdims=True)
    prior = (totals + 1.0) / (totals + 1.0).sum()
    return MStep(np.log(conf), np.log(prior), 0.0)


def _run(counts, chunk_size):
    shares = counts.toarray().reshape(counts.shape[0], -1, 3).sum(axis=1) + 1e-3
    init = shares / shares.sum(axis=1, keepdims=True)
    return run_em(counts, n_annotators=3, n_classes=3, m_step=_step, inits=[init],
                  max_iter=30, chunk_size=chunk_size, backend="local", warn=False)  # fmt: skip


@pytest.mark.parametrize("chunk_size", [2, 3, 4])  # 3 chunks, exactly 2 chunks (twice)
def test_any_number_of_chunks_gives_the_one_chunk_result(chunk_size):
    counts = counts_from_codes(ITEM, ANNOT, LABEL, (5, 3, 3))
    whole, split = _run(counts, None), _run(counts, chunk_size)
    np.testing.assert_allclose(split.posteriors, whole.posteriors, rtol=1e-12, atol=1e-15)
    assert split.log_likelihood == pytest.approx(whole.log_likelihood, rel=1e-12)
    assert split.n_iter == whole.n_iter


def test_count_matrix_keeps_items_and_annotators_without_answers():
    # items 5, 6 and annotator 3 answered nothing: the shape comes from `shape`, not the data
    m = counts_from_codes(ITEM, ANNOT, LABEL, (7, 4, 3))
    assert m.shape == (7, 12)
    assert m[5:].nnz == 0 and m[:, 9:].nnz == 0
    np.testing.assert_array_equal(
        m[:5, :9].toarray(), counts_from_codes(ITEM, ANNOT, LABEL, (5, 3, 3)).toarray()
    )


def test_empty_inits_says_what_to_pass():
    counts = counts_from_codes(ITEM, ANNOT, LABEL, (5, 3, 3))
    with pytest.raises(ValidationError, match=r"inits: is empty; pass at least one initialization"):
        run_em(counts, n_annotators=3, n_classes=3, m_step=_step, inits=[])
