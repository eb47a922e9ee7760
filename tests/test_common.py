"""Conformance checks every registered detector must pass (like sklearn's check_estimator)."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pandas as pd
import pytest

from truelabel import Audit, ValidationError
from truelabel.aggregate import Annotations
from truelabel.detect import AuditContext, available_detectors, get_detector
from truelabel.detect._base import _REGISTRY

#: the detectors that run on the audit's own inputs; those needing a service given in
#: their settings (``needs_service``: llm_judge, an LLM judge) have their own contract tests
DETECTORS = [n for n in available_detectors() if not getattr(_REGISTRY[n], "needs_service", False)]


def _context(
    perm: np.ndarray | None = None, random_state: int = 0, unit: bool = False
) -> AuditContext:
    rng = np.random.default_rng(0)
    n, k = 300, 3
    centers = rng.normal(scale=4.0, size=(k, 4))
    y = rng.integers(0, k, n)
    X = centers[y] + rng.normal(size=(n, 4))
    labels = np.where(rng.random(n) < 0.1, (y + 1) % k, y)
    z = X @ centers.T
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    # a crowd of 5 annotators (3 good, 2 poor), each answering ~60% of the items; item ids
    # are row positions, so a row permutation permutes the annotated items the same way
    ann = []
    for j, acc in enumerate((0.9, 0.85, 0.8, 0.5, 0.4)):
        said = np.where(rng.random(n) < acc, y, (y + rng.integers(1, k, n)) % k)
        asked = np.flatnonzero(rng.random(n) < 0.6)
        ann.append(pd.DataFrame({"item_id": asked, "annotator_id": j, "label": said[asked]}))
    if perm is not None:
        X, labels, p = X[perm], labels[perm], p[perm]
        for frame in ann:
            frame["item_id"] = np.argsort(perm)[frame["item_id"]]
    if unit:  # unit-norm rows: the cosine (original-space) paths of the detectors
        X = X / np.linalg.norm(X, axis=1, keepdims=True)
    table = pd.concat(ann, ignore_index=True)
    missing = np.setdiff1d(np.arange(n), table["item_id"])  # every item gets an answer
    extra = pd.DataFrame({"item_id": missing, "annotator_id": 0, "label": 0})
    return AuditContext(
        labels=labels,
        pred_probs=p,
        features=X,
        n_classes=k,
        n_neighbors=8,
        random_state=random_state,
        annotations=Annotations(pd.concat([table, extra], ignore_index=True)),
    )


@pytest.mark.parametrize("name", DETECTORS)
def test_detector_contract(name):
    det = get_detector(name)
    ctx = _context()
    assert det.can_run(ctx)
    res = det.detect(ctx)
    cols = res.columns
    assert isinstance(cols, pd.DataFrame) and len(cols) == ctx.n_items
    assert cols[f"is_{name}_issue"].dtype == bool
    score = cols[f"{name}_score"].to_numpy(dtype=float)
    assert np.isfinite(score).all() and (score >= 0).all() and (score <= 1).all()
    # flagged items score lower on average than the rest
    flagged = cols[f"is_{name}_issue"].to_numpy()
    if flagged.any() and (~flagged).any():
        assert score[flagged].mean() < score[~flagged].mean()


@pytest.mark.parametrize("name", DETECTORS)
def test_detector_is_deterministic_and_order_invariant(name):
    a = get_detector(name).detect(_context()).columns
    b = get_detector(name).detect(_context()).columns
    pd.testing.assert_frame_equal(a, b)
    perm = np.random.default_rng(1).permutation(300)
    c = get_detector(name).detect(_context(perm)).columns
    score = f"{name}_score"
    # the same items get the same scores whatever the row order (up to float noise);
    # near-duplicate set ids are renumbered, so compare scores and flags only
    np.testing.assert_allclose(c[score].to_numpy(), a[score].to_numpy()[perm], atol=0.02)
    agree = (c[f"is_{name}_issue"].to_numpy() == a[f"is_{name}_issue"].to_numpy()[perm]).mean()
    assert agree > 0.98


def _misspell(key: str) -> str:
    """A typo a person makes: the last letter doubled."""
    return key + key[-1]


@pytest.mark.parametrize("name", DETECTORS)
def test_detector_declares_settings_and_runs_with_them(name):
    settings = dict(_REGISTRY[name].settings)
    det = get_detector(name, **settings)
    assert det.params == settings
    for key, default in settings.items():
        assert det.setting(key) == default
        assert get_detector(name).setting(key) == default  # the default when not given
    det.detect(_context())


@pytest.mark.parametrize("unit", [False, True])
@pytest.mark.parametrize("name", DETECTORS)
def test_detector_settings_stored_untouched(name, unit):
    """Neither the dict passed in nor ``det.params`` changes when the detector runs, with
    every setting given or none (a detector writing a default or a derived value into its
    params fails here)."""
    given = copy.deepcopy(dict(_REGISTRY[name].settings))
    for params in (given, {}):
        before = copy.deepcopy(params)
        det = get_detector(name, **params)
        det.detect(_context(unit=unit))
        det.detect(_context(random_state=1, unit=unit))
        assert det.params == before and params == before
        clone = pickle.loads(pickle.dumps(det))
        assert type(clone) is type(det) and clone.params == before


@pytest.mark.parametrize("name", DETECTORS)
def test_detector_refuses_unknown_settings_naming_the_nearest(name):
    for key in _REGISTRY[name].settings:
        typo = _misspell(key)
        with pytest.raises(
            ValidationError,
            match=rf"issue_types\['{name}'\]: unknown setting '{typo}'; did you mean '{key}'\?",
        ):
            get_detector(name, **{typo: _REGISTRY[name].settings[key]})
        with pytest.raises(ValidationError, match=rf"issue_types\['{name}'\]: unknown setting"):
            Audit({name: {typo: 1}}).run(labels=np.zeros(3, dtype=int))  # before any work
    with pytest.raises(ValidationError, match=rf"unknown setting 'zzzqqq'; settings of '{name}'"):
        get_detector(name, zzzqqq=1)


@pytest.mark.parametrize("name", DETECTORS)
def test_detector_results_reproducible_from_the_seed(name):
    a = get_detector(name).detect(_context(random_state=3))
    b = get_detector(name).detect(_context(random_state=3))
    pd.testing.assert_frame_equal(a.columns, b.columns)
    assert a.info.keys() == b.info.keys()


def test_audit_result_pickles():
    ctx = _context()
    res = Audit().run(labels=ctx.labels, pred_probs=ctx.pred_probs, features=ctx.features)
    again = pickle.loads(pickle.dumps(res))
    pd.testing.assert_frame_equal(again.issues, res.issues)
