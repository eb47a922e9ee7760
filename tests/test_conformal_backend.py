"""Conformal scores and sets as chunk maps: identical for every backend and chunk size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from truelabel.backend import LocalBackend
from truelabel.conformal import (
    CrossConformalClassifier,
    SplitConformalClassifier,
    conformity_scores,
    label_scores,
)
from truelabel.conformal._scores import UniformDraws, _compute_scores
from truelabel.data import write_parquet_chunks
from truelabel.exceptions import ValidationError

from ._backends import PickleBackend

BACKENDS = ["local1", "local2", "pickle"]


def _make(name: str) -> object:
    return {"local1": LocalBackend(1), "local2": LocalBackend(2)}.get(name) or PickleBackend()


SIZES = [1, 7, 1000]


def _data(n: int = 300, k: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(k) * 0.5, size=n)
    y = np.array([rng.choice(k, p=row) for row in p])
    return p, y


def _used(backend: object, times: int) -> None:
    """The backend given was the one that ran the chunks (a setting not ignored)."""
    if isinstance(backend, PickleBackend):
        assert len(backend.shared_bytes) == times


def _oracle(p: np.ndarray, method: str, seed: int | None) -> np.ndarray:
    """One block, U drawn whole from the seed: the formula the chunks must reproduce."""
    u = None if seed is None else np.random.default_rng(seed).random(p.shape[0])
    return _compute_scores(p, method, u, 0.01, 1)


@pytest.mark.parametrize("name", BACKENDS)
@pytest.mark.parametrize("chunk_size", SIZES)
@pytest.mark.parametrize("method", ["lac", "aps", "raps"])
def test_scores_equal_the_one_block_formula(name: str, chunk_size: int, method: str) -> None:
    backend = _make(name)
    p, y = _data()
    want = _oracle(p, method, None if method == "lac" else 11)
    got = conformity_scores(
        p, method=method, random_state=11, backend=backend, chunk_size=chunk_size
    )
    np.testing.assert_array_equal(got, want)
    got_y = label_scores(
        p, y, method=method, random_state=11, backend=backend, chunk_size=chunk_size
    )
    np.testing.assert_array_equal(got_y, want[np.arange(len(y)), y])
    _used(backend, 2)


@pytest.mark.parametrize("name", BACKENDS)
@pytest.mark.parametrize("chunk_size", SIZES)
@pytest.mark.parametrize("mondrian", [False, True])
def test_split_conformal_fit_and_sets_do_not_depend_on_backend(
    name: str, chunk_size: int, mondrian: bool
) -> None:
    backend = _make(name)
    p, y = _data()
    kw = {"method": "raps", "alpha": 0.2, "class_conditional": mondrian, "random_state": 4}
    ref = SplitConformalClassifier(**kw, backend=LocalBackend(1), chunk_size=10**6).fit(p, y)
    got = SplitConformalClassifier(**kw, backend=backend, chunk_size=chunk_size).fit(p, y)
    np.testing.assert_array_equal(np.asarray(got.quantile_), np.asarray(ref.quantile_))
    pool = _data(seed=1)[0]
    np.testing.assert_array_equal(got.predict_set(pool), ref.predict_set(pool))
    _used(backend, 2)  # fit and predict_set both ran on it
    # the oracle: calibration U = the first n draws of the seed's generator
    u = np.random.default_rng(4).random(len(y))
    scores = _compute_scores(p, "raps", u, 0.01, 1)[np.arange(len(y)), y]
    if not mondrian:
        k = int(np.ceil((len(y) + 1) * 0.8 * (1 - 1e-10)))
        assert got.quantile_ == np.sort(scores)[k - 1]


@pytest.mark.parametrize("name", BACKENDS)
@pytest.mark.parametrize("chunk_size", SIZES)
def test_cross_conformal_calibration_does_not_depend_on_backend(name: str, chunk_size: int) -> None:
    backend = _make(name)
    p, y = _data()
    folds = np.arange(len(y)) % 4
    ref = CrossConformalClassifier(method="aps", random_state=2, chunk_size=10**6).fit(p, y, folds)
    got = CrossConformalClassifier(
        method="aps", random_state=2, backend=backend, chunk_size=chunk_size
    )
    got.fit(p, y, folds)
    np.testing.assert_array_equal(got._all_sorted, ref._all_sorted)
    np.testing.assert_array_equal(got.predict_set(p[:50]), ref.predict_set(p[:50]))
    _used(backend, 1)


def test_uniform_draws_serve_any_row_range_and_leave_the_generator_where_random_would() -> None:
    for make in (np.random.default_rng, lambda s: np.random.Generator(np.random.MT19937(s))):
        rng, twin = make(5), make(5)
        draws = UniformDraws(rng, 100)
        full = twin.random(100)
        for start, stop in [(0, 100), (37, 38), (99, 100), (10, 60)]:
            np.testing.assert_array_equal(draws.block(start, stop), full[start:stop])
        assert rng.random() == twin.random()  # both generators moved on by 100 draws
    assert UniformDraws(np.random.default_rng(0), 10**9).values is None  # no 8 GB array


def test_scores_read_a_npy_path_as_a_source_that_pickles_small(tmp_path: Path) -> None:
    p, y = _data(n=5000, k=10)
    np.save(tmp_path / "p.npy", p)
    backend = PickleBackend()
    got = label_scores(str(tmp_path / "p.npy"), y, method="aps", random_state=1, backend=backend)
    np.testing.assert_array_equal(got, label_scores(p, y, method="aps", random_state=1))
    assert max(backend.shared_bytes) < p.nbytes / 4  # the path went to the workers, not p
    write_parquet_chunks(
        tmp_path / "p.parquet", ({"v": p[s : s + 999]} for s in range(0, 5000, 999))
    )
    got_pq = label_scores(
        str(tmp_path / "p.parquet") + ":v", y, method="aps", random_state=1, chunk_size=700
    )
    np.testing.assert_array_equal(got_pq, got)
    with pytest.raises(ValidationError, match=r"pred_probs: .*has no column 'w'; columns: v"):
        label_scores(str(tmp_path / "p.parquet") + ":w", y)
    np.save(tmp_path / "bad.npy", p[:, :1])
    with pytest.raises(ValidationError, match=r"pred_probs: has 1 column\(s\); pass at least two"):
        conformity_scores(tmp_path / "bad.npy")
