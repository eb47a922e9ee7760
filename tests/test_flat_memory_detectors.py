"""Issue 11, flat memory inside the detectors: the intermediates that grow with N are scratch
arrays (spill files above the threshold) or are not made at all, and every result equals the
whole-array expression it replaces, value by value, for any block size, backend and threshold.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from truelabel import Audit
from truelabel._spill import is_spilled, spill_at
from truelabel.aggregate import Annotations, DawidSkene
from truelabel.aggregate import _table_parquet as tp
from truelabel.backend import LocalBackend
from truelabel.detect import _confident_learning as cl
from truelabel.detect import _label_detector as ld
from truelabel.detect import _outliers as out
from truelabel.detect import find_label_issues, get_label_quality_scores
from truelabel.detect._base import AuditContext
from truelabel.detect._duplicates import NearDuplicateDetector
from truelabel.detect._filter import _compute_issue_mask
from truelabel.detect._knn import KNNGraph
from truelabel.exceptions import ValidationError

NEVER = 1 << 62


def _whole_outliers(dist: np.ndarray, z: float) -> tuple[np.ndarray, np.ndarray, float]:
    """The outlier detector's former whole-array expressions (the oracle)."""
    d = dist.mean(axis=1).astype(np.float64)
    scale = np.median(d) or 1.0
    score = np.exp(-d / scale)
    return score, out.robust_upper_outliers(np.log(d + 1e-12 * scale), z), float(scale)


@pytest.mark.parametrize("rows", [1, 7, 1 << 16])
@pytest.mark.parametrize("spill", [False, True])
@pytest.mark.parametrize("kind", ["spread", "median_zero", "all_zero"])
def test_distance_outliers_equal_the_whole_array_expressions(
    monkeypatch: pytest.MonkeyPatch, rows: int, spill: bool, kind: str
) -> None:
    rng = np.random.default_rng(rows + len(kind))
    dist = np.sort(rng.lognormal(size=(301, 4)).astype(np.float32), axis=1)
    dist[::50] *= 40  # a few far rows: flagged
    if kind == "median_zero":  # most rows are copies of a neighbour: median 0, scale 1
        dist[:200] = 0.0
    elif kind == "all_zero":
        dist[:] = 0.0
    monkeypatch.setattr(out, "_ROWS", rows)
    with spill_at(0 if spill else NEVER):
        score, flagged, scale = out._distance_outliers(dist, 3.5)
    w_score, w_flagged, w_scale = _whole_outliers(dist, 3.5)
    assert scale == w_scale
    assert score.dtype == np.float64 and np.array_equal(score, w_score)
    assert np.array_equal(flagged, w_flagged)
    assert is_spilled(score) == is_spilled(flagged) == spill  # outputs: filled in place
    if kind == "spread":
        assert flagged[::50].all() and 0 < flagged.sum() < 30
    if kind != "spread":
        assert scale == 1.0


def test_robust_outliers_work_buffer_spilled_same_mask() -> None:
    v = np.random.default_rng(3).standard_cauchy(500)
    with spill_at(NEVER):
        mem = out.robust_upper_outliers(v, 2.0)
    with spill_at(0):
        spilled = out.robust_upper_outliers(v, 2.0)
    assert np.array_equal(mem, spilled) and 0 < mem.sum() < 500


def _euclid_ctx(dist0: np.ndarray) -> AuditContext:
    n = dist0.size
    x = np.random.default_rng(1).standard_normal((n, 3)).astype(np.float32)
    idx = ((np.arange(n) + 1) % n).astype(np.int32)[:, None]
    ctx = AuditContext(labels=None, pred_probs=None, features=x, n_classes=0, n_neighbors=1)
    ctx.__dict__["knn"] = KNNGraph(idx, dist0[:, None].astype(np.float32), exact=True)
    return ctx


@pytest.mark.parametrize("spill", [False, True])
@pytest.mark.parametrize("kind", ["spread", "median_zero", "all_zero"])
def test_euclidean_duplicate_scores_equal_the_whole_array_expression(
    spill: bool, kind: str
) -> None:
    d = np.random.default_rng(2).lognormal(size=200).astype(np.float32)
    if kind == "median_zero":  # the scale is the mean of the positive distances
        d[:150] = 0.0
    elif kind == "all_zero":  # the scale is 1
        d[:] = 0.0
    with spill_at(0 if spill else NEVER):
        det = NearDuplicateDetector(metric="euclidean").detect(_euclid_ctx(d))
    d1 = d.astype(np.float64)
    med = float(np.median(d1))
    scale = med if med > 0 else float(d1[d1 > 0].mean()) if (d1 > 0).any() else 1.0
    want = 1.0 - np.exp(-d1 / scale)
    got = det.columns["near_duplicate_score"].to_numpy()
    assert np.array_equal(got, want)
    assert det.info["radius"] == 0.13 * scale
    assert (kind == "all_zero") == (scale == 1.0)


def _noisy(n: int = 600, k: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, n)
    p = 0.4 * rng.dirichlet(np.ones(k), n) + 0.6 * np.eye(k)[truth]
    y = truth.copy()
    y[::9] = (y[::9] + 1) % k
    return y, p.astype(np.float32)


@pytest.mark.parametrize("filter_by", ["noise_aware", "low_self_confidence"])
def test_remembered_scores_are_spilled_and_equal_a_fresh_computation(filter_by: str) -> None:
    """The scores kept with the cached statistics (for a later get_label_quality_scores) are
    a scratch array, and are the default scores, not the filter's full-matrix ones."""
    y, p = _noisy()
    method = "noise_aware" if filter_by == "noise_aware" else "self_confidence"
    cl._CACHE.clear()
    fresh = get_label_quality_scores(y, p, method=method)  # computed, nothing remembered
    cl._CACHE.clear()
    with spill_at(0):
        stats = cl._compute_stats(y, p)
        mask = _compute_issue_mask(y, p, filter_by, stats=stats)
    kept = cl._CACHE["last"].scores[method]
    assert is_spilled(kept) and not kept.flags.writeable
    assert np.array_equal(kept, fresh)
    assert np.array_equal(get_label_quality_scores(y, p, method=method), fresh)  # the cache
    cl._CACHE.clear()
    assert np.array_equal(mask, find_label_issues(y, p, filter_by=filter_by))
    assert 20 < mask.sum() < 150


def test_noise_aware_filter_keeps_no_full_matrix_scores(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the lowest n of the full-matrix scores are needed: the pass writes no per-item
    array of them (the default scores, remembered, are its one per-item output)."""
    from truelabel.detect import _filter

    seen = []

    def spy(*args: object, scores_out: object = None, also: object = None) -> object:
        seen.append((scores_out is None, also is None))
        return real(*args, scores_out=scores_out, also=also)

    real = _filter._lowest_n
    monkeypatch.setattr(_filter, "_lowest_n", spy)
    y, p = _noisy()
    cl._CACHE.clear()
    find_label_issues(y, p, filter_by="noise_aware")
    find_label_issues(y, p, filter_by="low_self_confidence")
    assert seen == [(True, False), (False, True)]


def _label_oracle(y: np.ndarray, p: np.ndarray, filter_by: str, method: str) -> pd.DataFrame:
    """The label columns from the public functions, on the labelled rows only (caches cleared)."""
    lab = np.flatnonzero(y >= 0)
    cl._CACHE.clear()
    mask = np.zeros(y.size, dtype=bool)
    mask[lab] = find_label_issues(y[lab], p[lab], filter_by=filter_by)
    cl._CACHE.clear()
    score = np.full(y.size, np.nan)
    score[lab] = get_label_quality_scores(y[lab], p[lab], method=method)
    cl._CACHE.clear()
    return pd.DataFrame({"is_label_issue": mask, "label_score": score})


@pytest.mark.parametrize("unlabelled", [False, True])
@pytest.mark.parametrize("filter_by", ["noise_aware", "both", "predicted_neq_given"])
def test_label_detector_columns_equal_the_public_functions(
    unlabelled: bool, filter_by: str
) -> None:
    y, p = _noisy(seed=4)
    if unlabelled:
        y[::13] = -1
    ctx = AuditContext(labels=y, pred_probs=p, features=None, n_classes=4)
    with spill_at(0):
        cols = ld.LabelDetector(filter_by=filter_by).detect(ctx).columns
    want = _label_oracle(y, p, filter_by, "noise_aware")
    pd.testing.assert_frame_equal(cols[["is_label_issue", "label_score"]], want, check_exact=True)
    assert cols["is_label_issue"].sum() > 10
    assert cols["label_score"].isna().sum() == (y < 0).sum()
    sugg = cols["suggested_label"].to_numpy()
    assert sugg.dtype == np.int64 and np.array_equal(sugg, p.argmax(axis=1))


def test_partly_labelled_blend_equals_the_whole_array_blend(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The kNN blend on the labelled rows, gathered a block of rows at a time into scratch
    arrays, equals the former boolean-mask copies; unlabelled rows keep pred_probs."""
    from truelabel.detect._knn_labels import blend_pred_probs, knn_pred_probs

    rng = np.random.default_rng(8)
    y, p = _noisy(n=500, seed=8)
    y[::7] = -1
    x = (rng.standard_normal((500, 3)) + 2 * np.eye(4, 3)[np.maximum(y, 0)]).astype(np.float32)
    ctx = AuditContext(labels=y, pred_probs=p, features=x, n_classes=4, n_neighbors=5)
    lab = y >= 0
    kp = knn_pred_probs(ctx.knn, y, 4)
    blended, w = blend_pred_probs(y[lab], p[lab], kp[lab])
    want = p.astype(np.float32, copy=True)
    want[lab] = blended
    monkeypatch.setattr(ld, "_ROWS", 3)
    with spill_at(0):
        res = ld.LabelDetector().detect(ctx)
    got = ctx.cache["label_pred_probs"]
    assert is_spilled(got) and np.array_equal(got, want)
    assert res.info["knn_blend_weight_of_pred_probs"] == w
    assert not np.array_equal(got[lab], p[lab])  # the blend changed the labelled rows
    assert np.array_equal(got[~lab], p[~lab])


def _audit_data() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(11)
    n, k = 1200, 3
    truth = rng.integers(0, k, n)
    x = (rng.standard_normal((n, 4)) + 3.0 * np.eye(k, 4)[truth]).astype(np.float32)
    x[40:45] = x[3]  # exact copies
    x[::97] *= 6  # far rows
    y = truth.copy()
    y[:50] = (truth[:50] + 1) % k
    logits = rng.normal(size=(n, k)) + 2.0 * np.eye(k)[truth]
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return {"labels": y, "pred_probs": p, "features": x}


@pytest.mark.parametrize("labels_as", ["int64", "int32", "float", "unlabelled"])
def test_audit_equal_for_any_backend_chunk_size_and_spill(labels_as: str) -> None:
    data = _audit_data()
    y = data["labels"]
    if labels_as == "int32":
        y = y.astype(np.int32)
    elif labels_as == "float":
        y = y.astype(np.float64)
    elif labels_as == "unlabelled":
        y = y.copy()
        y[::19] = -1
    data = {**data, "labels": y}
    issues = {"label": {}, "outlier": {}, "near_duplicate": {}}
    runs = []
    for be, cs, spill in (
        (LocalBackend(1), None, NEVER),
        (LocalBackend(2), 100, 0),
        (LocalBackend(2), 333, NEVER),
    ):
        with spill_at(spill):
            runs.append(Audit(issues, backend=be, chunk_size=cs, knn_method="ivf").run(**data))
    first = runs[0]
    for other in runs[1:]:
        pd.testing.assert_frame_equal(first.issues, other.issues, check_exact=True)
        assert first.summary == other.summary
    t = first.issues
    assert t[["is_label_issue", "is_outlier_issue", "is_near_duplicate_issue"]].sum().min() > 3
    assert (t["near_duplicate_set"].to_numpy()[40:45] == t["near_duplicate_set"].iloc[3]).all()
    if labels_as == "unlabelled":  # -1: no given label, no score, never flagged
        none = y < 0
        assert t["given_label"].isna().to_numpy().tolist() == none.tolist()
        assert t["label_score"].isna().to_numpy().tolist() == none.tolist()
        assert not t["is_label_issue"].to_numpy()[none].any()
    if labels_as in ("int32", "float"):  # converted labels: the same table as int64 labels
        base = Audit(issues, knn_method="ivf").run(**_audit_data())
        pd.testing.assert_frame_equal(first.issues, base.issues, check_exact=True)


def test_converted_labels_are_scratch_and_int64_labels_are_not_copied() -> None:
    from truelabel._validation import check_labels

    y = np.array([0, 2, 1, 2], dtype=np.int64)
    assert check_labels(y) is y
    with spill_at(0):
        for src in (y.astype(np.int32), y.astype(np.uint8), y.astype(np.float32)):
            got = check_labels(src, n_classes=3)
            assert got.dtype == np.int64 and is_spilled(got) and got.tolist() == [0, 2, 1, 2]
    with spill_at(NEVER):
        assert not is_spilled(check_labels(y.astype(np.int32)))


@pytest.mark.parametrize("spill", [0, NEVER])
def test_label_range_errors_unchanged(spill: int) -> None:
    p = np.full((3, 2), 0.5)
    with spill_at(spill):
        with pytest.raises(ValidationError, match=r"label -2 at item 1 is outside the class set"):
            Audit({"label": {}}).run(labels=np.array([0, -2, 1], np.int32), pred_probs=p)
        big = np.array([0, 2**31, 1], dtype=np.int64)  # beyond int32: refused, not wrapped
        with pytest.raises(ValidationError, match=r"label 2147483648 at item 1 is outside"):
            Audit({"label": {}}).run(labels=big, pred_probs=p)
        with pytest.raises(ValidationError, match=r"label 4294967296 at item 2 is outside"):
            Audit({"label": {}}).run(labels=np.array([0, 1, 2**32], np.uint64), pred_probs=p)
        with pytest.raises(ValidationError, match=r"label -2 at item 1 is outside"):
            Audit({"label": {}}).run(labels=np.array([0, -2, -1], np.int16), pred_probs=p)


def test_sorted_item_indexer_equals_get_indexer() -> None:
    index = pd.Index(np.array([-5, 0, 3, 10, 2**40], dtype=np.int64))
    look = tp._sorted_indexer(index)
    values = pd.Series(np.array([3, 2**40, -5, 7, 11, 2**41, -6, 0], dtype=np.int64))
    got = look(values)
    assert got.tolist() == [2, 4, 0, -1, -1, -1, -1, 1]
    assert got.tolist() == index.get_indexer(values).tolist()
    other = pd.Series(np.array([3, 10], dtype=np.int32))  # another dtype: pandas' lookup
    assert look(other).tolist() == [2, 3]
    for unsorted in (
        pd.Index([3, 1, 2]),
        pd.Index(["a", "b"]),
        pd.Index([1.0, 2.0]),
        pd.Index([7]),
    ):
        assert tp._sorted_indexer(unsorted) == unsorted.get_indexer


def _answers(n_items: int, ids: str) -> pd.DataFrame:
    rng = np.random.default_rng(9)
    item = np.repeat(np.arange(n_items) * 3 + 5, 3)
    if ids == "str":
        item = np.array([f"i{v:05d}" for v in item])
    who = np.tile(np.array(["a", "b", "c"]), n_items)
    truth = np.repeat(rng.integers(0, 3, n_items), 3)
    said = np.where(rng.random(item.size) < 0.8, truth, rng.integers(0, 3, item.size))
    return pd.DataFrame({"item_id": item, "annotator_id": who, "label": said})


@pytest.mark.parametrize("ids", ["int", "str"])
@pytest.mark.parametrize("batch_rows", [4, 1 << 18])
def test_parquet_table_without_a_hash_index_equals_the_frame_one(
    tmp_path: pytest.TempPathFactory, ids: str, batch_rows: int
) -> None:
    df = _answers(300, ids).sample(frac=1.0, random_state=1)  # rows in any order
    path = str(tmp_path) + "/answers.parquet"
    df.to_parquet(path)
    with spill_at(0):
        ann = Annotations.from_parquet(path, batch_rows=batch_rows)
        spilled = DawidSkene().fit(ann)
    ref = Annotations(df)
    assert ann.items.equals(ref.items) and ann.items.dtype == ref.items.dtype
    for name in ("item_codes", "annotator_codes", "label_codes", "gold_codes"):
        assert np.array_equal(getattr(ann, name), getattr(ref, name)), name
    assert is_spilled(ann.gold_codes) and (ann.gold_codes == -1).all()
    assert is_spilled(ann.counts.indptr)
    assert (ann.counts != ref.counts).nnz == 0
    if ids == "int":  # no hash table of the items was built on the index (pandas caches it)
        assert "_engine" not in ann.items._cache
    with spill_at(NEVER):
        memory = DawidSkene().fit(ref)
    pd.testing.assert_frame_equal(spilled.probas_, memory.probas_, check_exact=True)
    assert spilled.labels_.equals(memory.labels_)


def test_gold_codes_in_a_scratch_array_keep_their_values() -> None:
    df = _answers(50, "int")
    gold = pd.Series({5: 1, 8: 2, 9999: 0})  # 9999 was never annotated: ignored, warned
    with spill_at(0), pytest.warns(match="have no annotation"):
        ann = Annotations(df, gold=gold)
    want = np.full(50, -1)
    want[[0, 1]] = [1, 2]
    assert is_spilled(ann.gold_codes) and ann.gold_codes.tolist() == want.tolist()


@pytest.mark.parametrize("rows", [1, 3, 1 << 16])
def test_unit_norm_check_by_blocks(monkeypatch: pytest.MonkeyPatch, rows: int) -> None:
    from truelabel.detect import _base

    monkeypatch.setattr(_base, "_NORM_ROWS", rows)
    x = np.random.default_rng(0).standard_normal((10, 3))
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)

    def cosine(features: np.ndarray) -> bool:
        ctx = AuditContext(labels=None, pred_probs=None, features=features, n_classes=0)
        return bool(ctx.uses_cosine)

    assert cosine(unit)
    for row, factor in ((9, 1.01), (0, 0.99), (5, 1.0009)):
        off = unit.copy()
        off[row] *= factor
        assert cosine(off) == (factor == 1.0009)  # within 1e-3 of unit norm still counts
    assert not cosine(x)


def _cosine_oracle(ctx: AuditContext, z: float) -> tuple[np.ndarray, np.ndarray]:
    """The cosine outlier path's former whole-array expressions."""
    from truelabel.detect._original_space import normalize_rows, row_cosines

    assert ctx.original_graph is not None and ctx.knn is not None
    k = ctx.knn.n_neighbors
    orig = np.clip(ctx.original_graph.similarities.mean(axis=1), 0.0, 1.0)
    unit = normalize_rows(ctx.features)
    rows = np.repeat(np.arange(ctx.n_items), k)
    feat = row_cosines(unit, rows, ctx.knn.indices.ravel()).reshape(-1, k)
    score = orig * np.clip(feat.mean(axis=1), 0.0, 1.0)
    return score, out.robust_upper_outliers(-np.log(np.maximum(score, 1e-6)), z)


@pytest.mark.parametrize("rows", [1, 7, 1 << 16])
@pytest.mark.parametrize("raw", [False, True])
def test_cosine_outliers_by_row_blocks_equal_the_whole_array_expressions(
    monkeypatch: pytest.MonkeyPatch, rows: int, raw: bool
) -> None:
    import scipy.sparse as sp

    rng = np.random.default_rng(rows)
    n, k = 400, 6
    centers = rng.standard_normal((5, 8))
    x = centers[rng.integers(0, 5, n)] + 0.3 * rng.standard_normal((n, 8))
    x[::41] = rng.standard_normal((len(x[::41]), 8)) * 3  # off-topic rows
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    ctx = AuditContext(labels=None, pred_probs=None, features=x, n_classes=0, n_neighbors=k)
    if raw:  # raw rows (sparse counts) given: the features' unit rows are computed apart
        counts = rng.poisson(0.4, (n, 30)).astype(np.float64)
        counts[:, 0] += 1  # no empty row
        ctx.raw_features = sp.csr_matrix(counts)
    assert ctx.uses_cosine
    monkeypatch.setattr(out, "_ROWS", rows)
    with spill_at(0):
        cols = out.OutlierDetector().detect(ctx).columns
    score, flagged = _cosine_oracle(ctx, 3.5)
    got = cols["outlier_score"].to_numpy()
    assert got.dtype == score.dtype and np.array_equal(got, score)
    assert np.array_equal(cols["is_outlier_issue"].to_numpy(), flagged)
    assert 0 < flagged.sum() < 60


@pytest.mark.parametrize("block", [1, 37, 1 << 22])
def test_cell_links_by_blocks_equal_the_1024_row_blocks_and_a_naive_ranking(
    monkeypatch: pytest.MonkeyPatch, block: int
) -> None:
    """Each cell, then its nearest other cells: the same for any block of cells (the block
    shrinks as the number of cells grows; 1 << 22 keeps the former 1024-cell blocks here),
    with ties (integer centroids) as well as without (equal to a naive ranking then)."""
    from truelabel.detect import _ivf

    rng = np.random.default_rng(block)
    tied = rng.integers(-3, 4, (1500, 2)).astype(np.float32)  # many tied distances
    plain = rng.standard_normal((120, 3)).astype(np.float32)
    monkeypatch.setattr(_ivf, "_LINK_BLOCK", 1 << 22)
    want = _ivf._links(tied, 6)
    monkeypatch.setattr(_ivf, "_LINK_BLOCK", block)
    assert np.array_equal(_ivf._links(tied, 6), want)
    got = _ivf._links(plain, 6)
    hs = 0.5 * (plain.astype(np.float64) ** 2).sum(axis=1)
    for c in range(plain.shape[0]):
        d = hs - plain[c].astype(np.float64) @ plain.T.astype(np.float64)
        others = sorted((float(d[j]), j) for j in range(plain.shape[0]) if j != c)
        assert got[c, 0] == c
        assert [j for _, j in others[:5]] == got[c, 1:].tolist()


@pytest.mark.parametrize("spill", [False, True])
def test_confidence_weighted_entropy_rescaled_in_place_equals_the_whole_array_form(
    spill: bool,
) -> None:
    """The rescaling by the largest score happens in the pass's own array (a spill file when
    spilling is forced): the values of ``clip(raw / max(raw.max(), CLIP), 0, 1)``."""
    from truelabel.detect import _rank

    y, p = _noisy()
    method = "confidence_weighted_entropy"
    raw = _rank._SCORE_CHUNK[method](y, p, _rank._global_stats(y, p, method, None))
    want = np.clip(raw / max(raw.max(), _rank._CLIP), 0.0, 1.0)
    with spill_at(0 if spill else NEVER):
        got = _rank._compute_scores(y, p, method, chunk_size=7)
    assert is_spilled(got) == spill
    np.testing.assert_array_equal(got, want)
    assert got.max() == 1.0
