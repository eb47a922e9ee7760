"""The EM core's contract where mutation testing (mutmut on ``aggregate/_em.py``) found no
test: the initial statistics with gold clamped, the stopping rule on log-likelihood + penalty,
``tol`` inclusive, every chunk map on the given backend, ``expected_counts`` and
``_row_reduce`` against naive loops, the default name in the warning, empty ``inits``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from truelabel import TruelabelWarning, ValidationError
from truelabel.aggregate._em import (
    MStep,
    _row_reduce,
    counts_from_codes,
    expected_counts,
    run_em,
)
from truelabel.backend import LocalBackend

# 5 items, 3 annotators, 3 classes
ITEM = np.array([0, 0, 0, 1, 1, 2, 2, 2, 3, 3, 4])
ANNOT = np.array([0, 1, 2, 0, 2, 0, 1, 2, 1, 2, 0])
LABEL = np.array([0, 0, 1, 2, 2, 1, 1, 0, 0, 2, 1])
SHAPE = (5, 3, 3)
COUNTS = counts_from_codes(ITEM, ANNOT, LABEL, SHAPE)


def _uniform_step(N, totals, prev):
    k = N.shape[1]
    conf = np.full(N.shape, 0.1)
    conf[:, np.arange(k), np.arange(k)] = 0.8
    return MStep(np.log(conf), np.full(k, -np.log(k)), 0.0)


def test_expected_counts_is_the_naive_sum():
    post = np.random.default_rng(0).dirichlet(np.ones(3), 5)
    naive = np.zeros((*SHAPE[1:], 3))
    for i, j, lab in zip(ITEM, ANNOT, LABEL, strict=True):
        naive[j, :, lab] += post[i]  # N[j, k, l] = sum_i post[i, k] [j said l on i]
    np.testing.assert_allclose(expected_counts(COUNTS, post, 3, 3), naive)


@pytest.mark.parametrize("k", [3, 64, 65, 70])
@pytest.mark.parametrize("op", [np.maximum, np.add])
def test_row_reduce_equals_numpy_on_both_branches(op, k):
    a = np.random.default_rng(k).normal(size=(7, k))
    np.testing.assert_allclose(_row_reduce(op, a), op.reduce(a, axis=1), rtol=1e-12)


def test_first_m_step_sees_the_initial_posteriors_with_gold_clamped():
    gold = np.array([0, -1, 2, -1, -1])  # a class-0 gold item too
    init = np.full((5, 3), 1 / 3)
    seen = []

    def m_step(N, totals, prev):
        seen.append((N.copy(), totals.copy()))
        return _uniform_step(N, totals, prev)

    run_em(COUNTS, n_annotators=3, n_classes=3, m_step=m_step, inits=[init], gold=gold,
           max_iter=1, warn=False)  # fmt: skip
    clamped = init.copy()
    clamped[0], clamped[2] = [1, 0, 0], [0, 0, 1]
    np.testing.assert_allclose(seen[0][0], expected_counts(COUNTS, clamped, 3, 3), atol=1e-9)
    np.testing.assert_allclose(seen[0][1], clamped.sum(axis=0), atol=1e-9)


def test_stopping_rule_is_on_log_likelihood_plus_penalty():
    """Two alternating models with equal objectives (log-likelihood + penalty): EM stops at
    the second iteration; with the penalty subtracted it would never stop."""
    a = _uniform_step(np.zeros((3, 3, 3)), np.ones(3), None)
    b_conf = np.full((3, 3, 3), 0.3)
    b_conf[:, np.arange(3), np.arange(3)] = 0.4
    b = MStep(np.log(b_conf), a.log_prior, 0.0)

    def ll(model):
        res = run_em(COUNTS, n_annotators=3, n_classes=3, m_step=lambda *_: model,
                     inits=[np.full((5, 3), 1 / 3)], max_iter=1, warn=False)  # fmt: skip
        return res.log_likelihood

    gap = ll(a) - ll(b)
    assert abs(gap) > 0.5

    def toggle(N, totals, prev):
        if prev is None or prev.penalty != 0.0:
            return a
        return MStep(b.log_conf, b.log_prior, gap)

    res = run_em(COUNTS, n_annotators=3, n_classes=3, m_step=toggle,
                 inits=[np.full((5, 3), 1 / 3)], tol=1e-9, max_iter=20)  # fmt: skip
    assert res.converged and res.n_iter == 2


def test_tol_zero_stops_on_an_exact_fixed_point():
    # a constant model: every iteration has exactly the same objective
    res = run_em(COUNTS, n_annotators=3, n_classes=3, m_step=_uniform_step,
                 inits=[np.full((5, 3), 1 / 3)], tol=0.0, max_iter=10)  # fmt: skip
    assert res.converged and res.n_iter == 2


def test_every_chunk_map_runs_on_the_given_backend():
    class Recording(LocalBackend):
        def __init__(self):
            super().__init__(n_jobs=1)
            self.calls = []

        def map(self, fn, chunks, shared):
            self.calls.append(fn.__name__)
            return super().map(fn, chunks, shared)

    backend = Recording()
    res = run_em(COUNTS, n_annotators=3, n_classes=3, m_step=_uniform_step,
                 inits=[np.full((5, 3), 1 / 3)], max_iter=3, backend=backend, chunk_size=2,
                 warn=False)  # fmt: skip
    assert backend.calls[0] == "_init_chunk" and backend.calls[-1] == "_posterior_chunk"
    assert len(backend.calls) == res.n_iter + 2


def test_default_name_in_the_warning_and_empty_inits():
    with pytest.warns(TruelabelWarning, match=r"^EM did not converge in max_iter=1"):
        run_em(COUNTS, n_annotators=3, n_classes=3, m_step=_uniform_step,
               inits=[np.full((5, 3), 1 / 3)], max_iter=1)  # fmt: skip
    with pytest.raises(ValidationError, match=r"inits: is empty"):
        run_em(COUNTS, n_annotators=3, n_classes=3, m_step=_uniform_step, inits=[])


def test_the_warning_whole_and_converged_false(recwarn):
    """The message is pinned whole (mutmut: its text upper-cased / wrapped survived), and an
    aggregator stopped by max_iter reports a real False."""
    from truelabel.aggregate import DawidSkene

    run_em(COUNTS, n_annotators=3, n_classes=3, m_step=_uniform_step,
           inits=[np.full((5, 3), 1 / 3)], max_iter=1, tol=1e-6)  # fmt: skip
    (w,) = [x for x in recwarn if issubclass(x.category, TruelabelWarning)]
    assert str(w.message) == (
        "EM did not converge in max_iter=1 iterations (tol=1e-06); the result may change with "
        "more iterations: raise max_iter or tol"
    )
    recwarn.clear()
    rows = [(i, f"a{j}", int(lab)) for i, j, lab in zip(ITEM, ANNOT, LABEL, strict=True)]
    table = pd.DataFrame(rows, columns=["item_id", "annotator_id", "label"])
    ds = DawidSkene(max_iter=1).fit(table)
    (w,) = [x for x in recwarn if issubclass(x.category, TruelabelWarning)]
    assert "DawidSkene did not converge in max_iter=1" in str(w.message)
    assert ds.converged_ is False


def test_the_warning_points_at_the_users_line_whatever_the_path(recwarn):
    """Dawid-Skene, multi-label consensus and the label model reach ``run_em`` at different
    depths; each one's warning is attributed to the caller's line here, not to a frame inside
    truelabel (a fixed stacklevel pointed into ``_dawid_skene.py``)."""
    import inspect

    from truelabel.aggregate import DawidSkene, MultiLabelDawidSkene
    from truelabel.weak import LabelModel

    table = pd.DataFrame(
        [(i, f"a{j}", int(lab)) for i, j, lab in zip(ITEM, ANNOT, LABEL, strict=True)],
        columns=["item_id", "annotator_id", "label"],
    )
    sets = table.assign(label=table["label"].map({0: "x", 1: "y", 2: "x|y"}))
    votes = np.array([[0, 0, 1], [1, 1, 1], [1, -1, 0], [-1, 1, 0], [0, 0, -1]])
    lines = []
    DawidSkene(max_iter=1).fit(table)
    lines.append(inspect.currentframe().f_lineno - 1)
    MultiLabelDawidSkene(max_iter=1).fit(sets)
    lines.append(inspect.currentframe().f_lineno - 1)
    LabelModel(max_iter=1, random_state=0).fit(votes)
    lines.append(inspect.currentframe().f_lineno - 1)
    got = [w for w in recwarn if "did not converge" in str(w.message)]
    assert {w.filename for w in got} == {__file__}
    assert sorted({w.lineno for w in got}) == lines


def test_the_best_start_its_index_and_its_objective():
    """``init`` is the winning start (the first on an exact tie), ``objective`` the final
    log-likelihood plus the penalty, ``converged`` a real False when max_iter stops it."""

    def step(N, totals, prev):
        m = _uniform_step(N, totals, prev)
        return MStep(m.log_conf, m.log_prior, -1.25)

    same = [np.full((5, 3), 1 / 3)] * 2
    res = run_em(COUNTS, n_annotators=3, n_classes=3, m_step=step, inits=same, max_iter=5)
    assert res.init == 0 and res.objectives[0] == res.objectives[1]
    assert res.objective == res.log_likelihood - 1.25
    skew = np.tile([0.98, 0.01, 0.01], (5, 1))

    def learned(N, totals, prev):  # the class prior follows the posteriors: starts differ
        m = _uniform_step(N, totals, prev)
        return MStep(m.log_conf, np.log(totals / totals.sum()), 0.0)

    res = run_em(COUNTS, n_annotators=3, n_classes=3, m_step=learned, inits=[skew, same[0]],
                 max_iter=1, warn=False)  # fmt: skip
    assert res.objectives[1] > res.objectives[0] and res.init == 1
    assert res.converged is False and res.n_iter == 1
