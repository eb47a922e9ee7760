"""Every public step that takes ``backend=`` gives the same result on Ray as on LocalBackend.

One table, ``CASES``: a name and a function ``run(backend, data) -> result``. Each case runs on
``LocalBackend(n_jobs=2)`` and on the session's RayBackend (wrapped to count the chunks it ran,
so a step that ignored ``backend=`` fails; ``LocalBackend.map`` raises meanwhile, so does a
step with one pass that falls back to threads), with small chunks so several chunks are merged.
Results are compared value by value (floats to 1e-9 relative; most are bit-identical).
To add a step: append ``Case("name", lambda be, d: step(..., backend=be, chunk_size=CS))``.
"""

from __future__ import annotations

import atexit
import dataclasses
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from truelabel.backend import Chunk, LocalBackend, share

CS = 50  # rows per chunk: the 240-item problems run in 5 chunks


class Counted:
    """A backend that delegates to ``inner`` and counts the chunks it was given."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.chunks = 0

    @property
    def n_workers(self) -> int:
        return int(self.inner.n_workers)

    def share(self, obj: Any) -> Any:
        return share(self.inner, obj)

    def map(self, fn: Callable[[Chunk, Any], Any], chunks: Any, shared: Any) -> Any:
        chunks = list(chunks)
        self.chunks += len(chunks)
        return self.inner.map(fn, chunks, shared)


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _data() -> dict[str, Any]:
    rng = np.random.default_rng(11)
    n, k = 240, 4
    truth = rng.integers(0, k, n)
    labels = truth.copy()
    flip = rng.random(n) < 0.15
    labels[flip] = (truth[flip] + rng.integers(1, k, flip.sum())) % k
    pred_probs = _softmax(rng.normal(size=(n, k)) + 2.5 * np.eye(k)[truth])
    centers = rng.normal(scale=4.0, size=(k, 8))
    X = (centers[truth] + rng.normal(size=(n, 8))).astype(np.float32)
    X[7] = X[3]  # an exact copy
    raw = sp.random(n, 60, density=0.08, format="lil", random_state=3, dtype=np.float64)
    raw[7] = raw[3]
    raw = raw.tocsr()
    big_truth = rng.integers(0, k, 1500)
    X_big = (centers[big_truth] + rng.normal(size=(1500, 8))).astype(np.float32)
    # a crowd: 120 items, 6 annotators of accuracy 0.55-0.9, 3 answers per item
    acc = np.array([0.9, 0.85, 0.8, 0.7, 0.6, 0.55])
    rows = []
    for item in range(120):
        for j in rng.choice(6, 3, replace=False):
            lab = truth[item] if rng.random() < acc[j] else rng.integers(0, k)
            rows.append((f"i{item:03d}", f"a{j}", f"c{lab}"))
    annotations = pd.DataFrame(rows, columns=["item_id", "annotator_id", "label"])
    ml = annotations.copy()
    ml["label"] = [f"c{x % k}|c{(x + 1) % k}" if x % 3 else f"c{x % k}" for x in range(len(ml))]
    # weak supervision: 5 labeling functions voting the truth with abstains (-1)
    L = np.where(rng.random((n, 5)) < 0.6, truth[:, None], -1)
    noisy = rng.random((n, 5)) < 0.2
    L[noisy & (L >= 0)] = rng.integers(0, k, (noisy & (L >= 0)).sum())
    L[:, 4] = L[:, 0]  # a copy: the label model's dependence step
    return {
        "n": n, "k": k, "truth": truth, "labels": labels, "pred_probs": pred_probs, "X": X,
        "raw": raw, "X_big": X_big, "annotations": annotations, "multilabel": ml, "L": L,
    }  # fmt: skip


DATA = _data()


def _graph() -> Any:
    from truelabel.detect import build_knn_graph

    return build_knn_graph(DATA["X"], n_neighbors=5, method="exact", backend=LocalBackend(1))


DATA["graph"] = _graph()  # the input of the steps that take a graph


class Case(NamedTuple):
    name: str
    run: Callable[[Any, dict[str, Any]], Any]


def _detect() -> list[Case]:
    from truelabel.detect import (
        CALIBRATION_METHODS,
        FILTER_METHODS,
        QUALITY_METHODS,
        blend_pred_probs,
        build_knn_graph,
        calibrate_pred_probs,
        compute_confident_joint,
        estimate_joint,
        estimate_noise_matrices,
        find_label_issues,
        get_label_quality_scores,
        knn_pred_probs,
    )
    from truelabel.detect._duplicates import near_duplicate_sets
    from truelabel.detect._original_space import original_neighbors

    def graph(be: Any, d: dict[str, Any]) -> Any:
        return build_knn_graph(d["X"], n_neighbors=5, method="exact", backend=be, chunk_size=CS)

    def knn_blend(be: Any, d: dict[str, Any]) -> Any:
        g = d["graph"]
        kp = knn_pred_probs(g, d["labels"], d["k"], backend=be, chunk_size=CS)
        return kp, blend_pred_probs(d["labels"], d["pred_probs"], kp, backend=be, chunk_size=CS)

    def duplicates(be: Any, d: dict[str, Any]) -> Any:
        g = d["graph"]
        sim = 1.0 / (1.0 + g.distances)
        return near_duplicate_sets(g.indices, sim, 0.5, backend=be, chunk_size=CS)

    def original(be: Any, d: dict[str, Any]) -> Any:
        g = d["graph"]
        return original_neighbors(d["raw"], g.indices, backend=be, chunk_size=CS)

    cases = [
        Case(
            f"find_label_issues[{f}]",
            lambda be, d, f=f: find_label_issues(
                d["labels"], d["pred_probs"], filter_by=f, backend=be, chunk_size=CS
            ),
        )
        for f in FILTER_METHODS
    ]
    cases += [
        Case(
            "find_label_issues[ranked]",
            lambda be, d: find_label_issues(
                d["labels"], d["pred_probs"], return_ranked=True, backend=be, chunk_size=CS
            ),
        ),
        *(
            Case(
                f"get_label_quality_scores[{m}]",
                lambda be, d, m=m: get_label_quality_scores(
                    d["labels"], d["pred_probs"], method=m, backend=be, chunk_size=CS
                ),
            )
            for m in QUALITY_METHODS
        ),
        Case(
            "compute_confident_joint",
            lambda be, d: compute_confident_joint(
                d["labels"],
                d["pred_probs"],
                return_indices_of_off_diagonals=True,
                backend=be,
                chunk_size=CS,
            ),
        ),
        Case(
            "estimate_noise_matrices",
            lambda be, d: estimate_noise_matrices(
                d["labels"], d["pred_probs"], backend=be, chunk_size=CS
            ),
        ),
        Case(
            "estimate_joint",
            lambda be, d: estimate_joint(d["labels"], d["pred_probs"], backend=be, chunk_size=CS),
        ),
        *(
            Case(
                f"calibrate_pred_probs[{m}]",
                lambda be, d, m=m: calibrate_pred_probs(
                    d["labels"], d["pred_probs"], method=m, backend=be, chunk_size=CS
                ),
            )
            for m in CALIBRATION_METHODS
        ),
        Case("build_knn_graph[exact]", graph),
        Case(
            "build_knn_graph[ivf]",
            lambda be, d: build_knn_graph(
                d["X_big"], n_neighbors=5, method="ivf", backend=be, chunk_size=300
            ),
        ),
        Case("knn_pred_probs+blend_pred_probs", knn_blend),
        Case("near_duplicate_sets", duplicates),
        Case("original_neighbors", original),
    ]
    return cases


def _aggregate() -> list[Case]:
    from truelabel.aggregate import MACE, DawidSkene, MultiLabelDawidSkene, OneCoinDawidSkene

    def fit(cls: Any, **kw: Any) -> Callable[[Any, dict[str, Any]], Any]:
        def run(be: Any, d: dict[str, Any]) -> Any:
            agg = cls(backend=be, chunk_size=17, **kw).fit(d["annotations"])
            return agg.probas_, agg.labels_, agg.skills_

        return run

    def multilabel(be: Any, d: dict[str, Any]) -> Any:
        agg = MultiLabelDawidSkene(backend=be, chunk_size=17).fit(d["multilabel"])
        return agg.probas_, agg.skills_

    return [
        Case("DawidSkene", fit(DawidSkene, n_init=2)),
        Case("OneCoinDawidSkene", fit(OneCoinDawidSkene)),
        Case("MACE", fit(MACE)),
        Case("MultiLabelDawidSkene", multilabel),
    ]


def _weak() -> list[Case]:
    from truelabel.weak import LabelModel, lf_dependence, lf_summary, vote_em

    def label_model(be: Any, d: dict[str, Any]) -> Any:
        lm = LabelModel(n_classes=d["k"], backend=be, chunk_size=CS).fit(d["L"])
        return lm.predict_proba(d["L"])

    return [
        Case(
            "vote_em",
            lambda be, d: vote_em(d["L"], d["k"], n_init=2, backend=be, chunk_size=CS),
        ),
        Case("LabelModel", label_model),
        Case(
            "lf_summary",
            lambda be, d: lf_summary(d["L"], labels=d["truth"], backend=be, chunk_size=CS),
        ),
        Case(
            "lf_dependence",
            lambda be, d: lf_dependence(d["L"], d["truth"], d["k"], backend=be, chunk_size=CS),
        ),
    ]


def _autolabel() -> list[Case]:
    from truelabel.autolabel import CertifiedAutoLabeler, counts_above, grid_histogram
    from truelabel.autolabel._step import certify_pool

    def labeler(be: Any, d: dict[str, Any]) -> Any:
        p, y = d["pred_probs"], d["truth"]
        lab = CertifiedAutoLabeler(max_error=0.1).fit(p[:160], y[:160], backend=be)
        return lab.decide(p[160:], backend=be)

    def pool(be: Any, d: dict[str, Any]) -> Any:
        p, y = d["pred_probs"], d["truth"]
        return certify_pool(p[160:], p[:160], y[:160], max_error=0.1, backend=be).decisions

    def grid(be: Any, d: dict[str, Any]) -> Any:
        conf = d["pred_probs"].max(axis=1)
        wrong = d["pred_probs"].argmax(axis=1) != d["truth"]
        g = np.linspace(0.2, 1.0, 41)
        return (
            counts_above(conf, g, wrong, backend=be, chunk_size=CS),
            grid_histogram(conf, wrong, g, backend=be, chunk_size=CS),
        )

    return [Case("CertifiedAutoLabeler", labeler), Case("certify_pool", pool), Case("grid", grid)]


def _active() -> list[Case]:
    from truelabel.active import (
        ActiveLearner,
        badge_select,
        k_center_greedy,
        typicality_scores,
        typiclust_select,
        uncertainty_scores,
    )

    def learner(be: Any, d: dict[str, Any]) -> Any:
        # 1,500 items: the pool passes run in whole blocks, so a smaller pool is one chunk
        al = ActiveLearner(d["X_big"], random_state=0, backend=be, chunk_size=CS)
        ids = np.arange(0, 1500, 25)
        al.teach(ids, [f"c{i % 4}" for i in range(ids.size)])
        return al.suggest(8)

    return [
        *(
            Case(
                f"uncertainty_scores[{m}]",
                lambda be, d, m=m: uncertainty_scores(
                    d["pred_probs"], method=m, backend=be, chunk_size=CS
                ),
            )
            for m in ("least_confidence", "margin", "entropy")
        ),
        Case(
            "typicality_scores",
            lambda be, d: typicality_scores(d["X"], n_neighbors=5, backend=be, chunk_size=CS),
        ),
        Case(
            "typiclust_select",
            lambda be, d: typiclust_select(d["X"], 6, random_state=0, backend=be, chunk_size=CS),
        ),
        Case(
            "k_center_greedy",
            lambda be, d: k_center_greedy(d["X"], 6, labeled=[0, 1], backend=be, chunk_size=CS),
        ),
        Case(
            "badge_select",
            lambda be, d: badge_select(
                d["X"], d["pred_probs"], 6, random_state=0, backend=be, chunk_size=CS
            ),
        ),
        Case("ActiveLearner", learner),
    ]


def _model() -> list[Case]:
    from truelabel.model import adjust_to_pool_priors
    from truelabel.model._pseudo import knn_cache_probs

    def cache(be: Any, d: dict[str, Any]) -> Any:
        unit = d["X"] / np.linalg.norm(d["X"], axis=1, keepdims=True)
        return knn_cache_probs(
            unit, unit[:100], d["labels"][:100], d["k"], backend=be, chunk_size=CS
        )

    return [
        Case(
            "adjust_to_pool_priors",
            lambda be, d: adjust_to_pool_priors(
                d["pred_probs"], [0.25] * 4, backend=be, chunk_size=CS
            ),
        ),
        Case("knn_cache_probs", cache),
    ]


def _scale_out() -> list[Case]:
    """The steps given ``backend=`` for issue 11: out-of-fold folds, conformal scores and
    sets, the whole Audit, and the ONNX encoder (a session per Ray worker)."""
    from truelabel import Audit
    from truelabel.conformal import CrossConformalClassifier, SplitConformalClassifier
    from truelabel.conformal._scores import conformity_scores, label_scores
    from truelabel.model import out_of_fold_pred_probs

    def oof(be: Any, d: dict[str, Any]) -> Any:
        return out_of_fold_pred_probs(d["X"], d["labels"], cv=3, random_state=0, backend=be)

    def split(be: Any, d: dict[str, Any]) -> Any:
        p, y = d["pred_probs"], d["labels"]
        model = SplitConformalClassifier(method="aps", random_state=0, backend=be, chunk_size=CS)
        return model.fit(p[:120], y[:120]).predict_set(p[120:])

    def cross(be: Any, d: dict[str, Any]) -> Any:
        p = d["pred_probs"]
        model = CrossConformalClassifier(random_state=0, backend=be, chunk_size=CS)
        model.fit(p, d["labels"], np.arange(d["n"]) % 2)  # two folds
        return model.predict_set(np.stack([p[:40], p[40:80]]))  # each fold's model on 40 items

    def audit(be: Any, d: dict[str, Any]) -> Any:
        run = Audit(n_neighbors=5, backend=be, chunk_size=CS)
        result = run.run(labels=d["labels"], pred_probs=d["pred_probs"], features=d["X"])
        return result.issues

    def audit_npy(be: Any, d: dict[str, Any]) -> Any:
        """Inputs given as .npy files: memory-mapped here, mapped again by each Ray worker."""
        if "npy_dir" not in d:
            d["npy_dir"] = tempfile.mkdtemp(prefix="truelabel-test-")
            atexit.register(shutil.rmtree, d["npy_dir"], True)
        folder = Path(d["npy_dir"])
        for name in ("pred_probs", "X"):
            np.save(folder / f"{name}.npy", d[name].astype(np.float32))
        run = Audit(n_neighbors=5, backend=be, chunk_size=CS)
        result = run.run(
            labels=d["labels"],
            pred_probs=str(folder / "pred_probs.npy"),
            features=str(folder / "X.npy"),
        )
        return result.issues

    def encode(be: Any, d: dict[str, Any]) -> Any:
        pytest.importorskip("onnxruntime", reason="the [text] extra is not installed")
        from truelabel.encode import OnnxTextEncoder

        texts = [f"item {i} is about {w}" for i, w in enumerate(["cats", "stocks"] * 60)]
        return OnnxTextEncoder(batch_size=8, backend=be, chunk_size=24).encode(texts)

    return [
        Case("out_of_fold_pred_probs", oof),
        Case(
            "conformity_scores",
            lambda be, d: conformity_scores(
                d["pred_probs"], method="raps", random_state=0, backend=be, chunk_size=CS
            ),
        ),
        Case(
            "label_scores",
            lambda be, d: label_scores(
                d["pred_probs"], d["labels"], random_state=0, backend=be, chunk_size=CS
            ),
        ),
        Case("SplitConformalClassifier", split),
        Case("CrossConformalClassifier", cross),
        Case("Audit", audit),
        Case("Audit[npy sources]", audit_npy),
        Case(  # no pred_probs: the out-of-fold folds run on the backend too
            "Audit[oof]",
            lambda be, d: (
                Audit({"label": {}}, backend=be, chunk_size=CS)
                .run(labels=d["labels"], features=d["X"])
                .issues
            ),
        ),
        Case("OnnxTextEncoder", encode),
    ]


CASES = [
    *_detect(), *_aggregate(), *_weak(), *_autolabel(), *_active(), *_model(), *_scale_out()
]  # fmt: skip


def assert_same(a: Any, b: Any, where: str = "result") -> None:
    """Equal value by value: arrays and frames (floats to 1e-9 relative), dataclasses,
    named tuples, sequences and mappings recursively."""
    assert type(a) is type(b), (where, type(a), type(b))
    if isinstance(a, pd.DataFrame | pd.Series):
        kind = pd.testing.assert_frame_equal if isinstance(a, pd.DataFrame) else None
        (kind or pd.testing.assert_series_equal)(a, b, check_exact=False, rtol=1e-9, atol=1e-12)
    elif isinstance(a, np.ndarray):
        assert a.shape == b.shape and a.dtype == b.dtype, (where, a.shape, b.shape)
        if a.dtype.kind == "f":
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12, err_msg=where)
        else:
            np.testing.assert_array_equal(a, b, err_msg=where)
    elif sp.issparse(a):
        assert_same(a.toarray(), b.toarray(), where)
    elif dataclasses.is_dataclass(a):
        for f in dataclasses.fields(a):
            assert_same(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}")
    elif isinstance(a, tuple | list):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            assert_same(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, float):
        assert a == pytest.approx(b, rel=1e-9, abs=1e-12), where
    elif hasattr(a, "__dict__") and not isinstance(a, type):
        assert_same(vars(a), vars(b), where)
    else:
        assert a == b, where


def _forget_cached_statistics() -> None:
    """Confident learning caches its last statistics: each run must compute its own."""
    from truelabel.detect import _confident_learning

    _confident_learning._CACHE.clear()


def _no_local_pass(self: LocalBackend, fn: Any, chunks: Any, shared: Any) -> Any:
    raise AssertionError(f"{fn.__qualname__} ran on a LocalBackend, not the backend given")


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_ray_equals_local(case: Case, ray_backend: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    _forget_cached_statistics()
    local = Counted(LocalBackend(n_jobs=2))
    want = case.run(local, DATA)
    assert local.chunks >= 2, "the step did not run (several chunks) on the backend it was given"
    _forget_cached_statistics()
    ray = Counted(ray_backend)
    # every pass of the step runs on the backend given: none falls back to threads here
    monkeypatch.setattr(LocalBackend, "map", _no_local_pass)
    got = case.run(ray, DATA)
    assert ray.chunks == local.chunks
    assert_same(want, got, case.name)
