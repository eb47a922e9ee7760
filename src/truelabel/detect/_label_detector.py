"""The ``label`` issue type: confident learning on (optionally kNN-blended) pred_probs."""

from __future__ import annotations

from types import MappingProxyType

import numpy as np
import pandas as pd

from .._spill import scratch
from .._validation import check_choice, iter_chunks
from ..exceptions import ValidationError
from ._base import AuditContext, Detector, DetectorResult, register_detector
from ._calibration import CALIBRATION_METHODS, _compute_calibrated
from ._confident_learning import _compute_stats, _estimate_from_stats
from ._filter import FILTER_METHODS, _compute_issue_mask
from ._knn_labels import blend_pred_probs, knn_pred_probs
from ._rank import QUALITY_METHODS, _compute_scores

__all__ = ["LabelDetector", "audit_pred_probs"]


#: rows gathered or converted at once by :func:`_rows` and :func:`_as_float32`
_ROWS = 1 << 16


def _rows(arr: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``arr[idx]`` (rows) into a scratch array, a block of rows at a time: the same values,
    in a spill file when large rather than in anonymous memory."""
    out = scratch((idx.size, *arr.shape[1:]), arr.dtype)
    for sl in iter_chunks(idx.size, _ROWS):
        np.take(arr, idx[sl], axis=0, out=out[sl], mode="clip")  # valid rows: no buffer
    return out


def _as_float32(arr: np.ndarray) -> np.ndarray:
    """``arr.astype(np.float32)`` (always a copy) into a scratch array, a block at a time."""
    out = scratch(arr.shape, np.float32)
    for sl in iter_chunks(arr.shape[0], _ROWS):
        out[sl] = arr[sl]
    return out


def audit_pred_probs(ctx: AuditContext) -> np.ndarray:
    """pred_probs for the audit: given ones, else out-of-fold from the features (cached)."""
    if ctx.pred_probs is not None:
        return ctx.pred_probs
    if "oof_pred_probs" not in ctx.cache:
        from ..model import out_of_fold_pred_probs

        assert ctx.labels is not None and ctx.features is not None
        lab = ctx.labels >= 0
        p = np.full((ctx.n_items, ctx.n_classes), 1.0 / ctx.n_classes, dtype=np.float32)
        oof, _ = out_of_fold_pred_probs(
            ctx.features[lab],
            ctx.labels[lab],
            n_classes=ctx.n_classes,
            random_state=ctx.random_state,
            class_names=ctx.class_names,
            backend=ctx.backend,
        )
        p[lab] = oof
        ctx.cache["oof_pred_probs"] = p
    return ctx.cache["oof_pred_probs"]


@register_detector
class LabelDetector(Detector):
    """Given labels that are probably wrong.

    Parameters (passed as ``issue_types={"label": {...}}``)
    ----------------------------------------------------------
    filter_by : str, default "noise_aware"
        See :func:`truelabel.find_label_issues`.
    quality_method : str, default "noise_aware"
        Score written to ``label_score``.
    use_knn : bool, default True
        When features are given, blend ``pred_probs`` with the neighbour label
        distribution of the shared kNN graph (weight chosen by log loss).
    calibrate : {None, "temperature", "class_temperature", "prior"}, default None
        Recalibrate ``pred_probs`` against the given labels before anything else
        (see :func:`truelabel.detect.calibrate_pred_probs`).
    """

    name = "label"
    requires = ("pred_probs", "features")
    requires_all = ("labels",)
    settings = MappingProxyType(
        {
            "filter_by": "noise_aware",
            "quality_method": "noise_aware",
            "use_knn": True,
            "calibrate": None,
        }
    )

    def detect(self, ctx: AuditContext) -> DetectorResult:
        filter_by = self.params.get("filter_by", "noise_aware")
        method = self.params.get("quality_method", "noise_aware")
        use_knn = bool(self.params.get("use_knn", True))
        calibrate = self.params.get("calibrate")
        unknown = set(self.params) - {"filter_by", "quality_method", "use_knn", "calibrate"}
        if unknown:
            raise ValidationError(
                "issue_types['label']",
                f"unknown setting(s) {sorted(unknown)}",
                "use filter_by, quality_method, use_knn or calibrate",
            )
        check_choice("issue_types['label']['filter_by']", filter_by, FILTER_METHODS)
        check_choice("issue_types['label']['quality_method']", method, QUALITY_METHODS)
        if calibrate is not None:
            check_choice("issue_types['label']['calibrate']", calibrate, CALIBRATION_METHODS)
        assert ctx.labels is not None
        p = audit_pred_probs(ctx)
        info: dict[str, object] = {
            "pred_probs_source": "given" if ctx.pred_probs is not None else "out-of-fold"
        }
        if calibrate is not None:
            lab = ctx.labels >= 0
            p = p.astype(np.float64, copy=True)
            p[lab] = _compute_calibrated(ctx.labels[lab], p[lab], calibrate)
            info["calibration"] = calibrate
        # a reduction, not a mask (1 byte per item, alive through the kNN graph's build)
        everything_labelled = int(ctx.labels.min()) >= 0
        if use_knn and ctx.knn is not None:
            run = {"backend": ctx.backend, "chunk_size": ctx.chunk_size}
            kp = knn_pred_probs(ctx.knn, ctx.labels, ctx.n_classes, **run)
            if everything_labelled:  # blend chunk by chunk into kp itself: no extra copy
                p, w = blend_pred_probs(ctx.labels, p, kp, out=kp, **run)
            else:  # the labelled rows blended; the copies are scratch arrays
                rows = np.flatnonzero(ctx.labels >= 0)
                blended = scratch((rows.size, p.shape[1]), np.float32)
                _, w = blend_pred_probs(
                    _rows(ctx.labels, rows), _rows(p, rows), _rows(kp, rows), out=blended, **run
                )
                p = _as_float32(p)
                p[rows] = blended
                del rows, blended
            del kp
            info["knn_blend_weight_of_pred_probs"] = w
        ctx.cache["label_pred_probs"] = p
        # every labelled row: no row list (8 bytes per item) nor copies are made
        lab_idx = None if everything_labelled else np.flatnonzero(ctx.labels >= 0)
        y = ctx.labels if lab_idx is None else _rows(ctx.labels, lab_idx)
        pl = p if lab_idx is None else _rows(p, lab_idx)
        be, cs = ctx.backend, ctx.chunk_size
        stats = _compute_stats(y, pl, backend=be, chunk_size=cs)
        mask = _compute_issue_mask(y, pl, filter_by, stats=stats, backend=be, chunk_size=cs)
        n = ctx.n_items
        if lab_idx is None:  # the mask and the scores are the columns: nothing to fill
            is_issue = mask
            score = _compute_scores(y, pl, method, stats, backend=be, chunk_size=cs)
            suggested = scratch(n, np.int64)  # the output columns: spill files when large
            for sl in iter_chunks(n, _ROWS):
                suggested[sl] = stats.argmax[sl]
        else:
            is_issue = scratch(n, bool, fill=False)
            is_issue[lab_idx] = mask
            score = scratch(n, np.float64, fill=np.nan)
            score[lab_idx] = _compute_scores(y, pl, method, stats, backend=be, chunk_size=cs)
            suggested = scratch(n, np.int64)
            for sl in iter_chunks(n, _ROWS):
                suggested[sl] = p[sl].argmax(axis=1)
        del mask, lab_idx
        info["noise"] = _estimate_from_stats(stats)
        ctx.cache["label_score"] = score  # for detectors that re-check the suspects (llm_judge)
        ctx.cache["label_issue"] = is_issue
        cols = pd.DataFrame(
            {
                "is_label_issue": is_issue,
                "label_score": score,
                "given_label": ctx.labels,
                "suggested_label": suggested,
            },
            copy=False,  # the frame holds these arrays, not a copy of them
        )
        return DetectorResult(columns=cols, info=info)
