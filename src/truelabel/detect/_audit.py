"""The Audit facade: run registered detectors on one shared context, collect one table."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._progress import progress
from .._spill import scratch
from .._spill_frame import spill_copy, take_names
from .._validation import (
    check_choice,
    check_features,
    check_labels,
    check_pred_probs,
    iter_chunks,
)
from ..backend import Backend, chunk_ranges, get_backend
from ..exceptions import TruelabelWarning, ValidationError, warn_at_caller
from . import (  # noqa: F401  (register detectors)
    _consensus_detector,
    _duplicates,
    _label_detector,
    _outliers,
)
from ._base import AuditContext, Detector, available_detectors, get_detector
from ._confident_learning import NoiseEstimate
from ._knn import KNN_METHODS
from ._original_space import check_raw_features

#: an estimated noise rate above this is reported as unreliable
NOISE_RATE_WARN = 0.5
#: neighbours kept per flagged item (``AuditResult.neighbors``)
NEIGHBORS_KEPT = 5

__all__ = ["Audit", "AuditResult"]


@dataclass
class AuditResult:
    """What an audit found.

    Attributes
    ----------
    issues : DataFrame
        One row per item, indexed like the input: ``is_<type>_issue`` and ``<type>_score``
        for every issue type run (scores in [0, 1], lower = worse), plus ``given_label``,
        ``suggested_label`` and ``near_duplicate_set`` where applicable.
    summary : dict
        Counts per issue type and per class, the estimated noise matrix and noise rate.
    noise : NoiseEstimate or None
        Confident-learning estimate of the label noise (when labels were audited).
    pred_probs : ndarray or None
        The probabilities the label detector used (after any kNN blending).
    neighbors : dict or None
        The nearest neighbours of the flagged items in the shared kNN graph, kept for
        reviewers' context: ``rows`` (int64, the flagged rows) and ``indices`` (rows,
        shape (n_flagged, <= NEIGHBORS_KEPT), nearest first). None when no detector built
        the graph.
    """

    issues: pd.DataFrame
    summary: dict[str, Any]
    noise: NoiseEstimate | None = None
    pred_probs: np.ndarray | None = None
    info: dict[str, dict[str, Any]] = field(default_factory=dict)
    neighbors: dict[str, np.ndarray] | None = None

    def label_issues(self) -> pd.DataFrame:
        """Flagged label issues, worst first."""
        if "is_label_issue" not in self.issues:
            raise ValidationError("issue_types", "the label check did not run", "pass labels")
        flagged = self.issues[self.issues["is_label_issue"]]
        return flagged.sort_values("label_score", kind="stable")

    def to_parquet(self, path: str | Path, *, chunk_size: int | None = None) -> Path:
        """Write :attr:`issues` (index first, as ``item``) a row group per ``chunk_size`` rows
        (default 32,768), atomically: :func:`truelabel.data.write_frame_parquet`."""
        from ..data import write_frame_parquet

        return write_frame_parquet(path, self.issues, chunk_size=chunk_size)

    def write_report(self, path: str | Path, **kwargs: Any) -> Path:
        """Write the HTML report: a shortcut for ``truelabel.report.write_report(self, path)``.

        The report lives downstream of detection; this method only forwards to it (the
        import happens on call, so importing :mod:`truelabel.detect` never loads it).
        """
        from ..report import write_report  # the one allowed call from detect into report

        return write_report(self, path, **kwargs)


class Audit:
    """Find label issues, outliers and near-duplicates in one pass over shared statistics.

    Parameters
    ----------
    issue_types : dict, optional
        ``{issue_type: {setting: value}}``; default: every registered type whose inputs are
        present (``label`` needs labels plus pred_probs or features; ``outlier`` features or
        pred_probs; ``near_duplicate`` features). Unknown types and settings raise
        ``ValidationError`` naming the closest valid one (checked by :meth:`run`, before any
        work).
    n_neighbors : int, default 10
        Neighbours in the shared kNN graph.
    knn_method : {"auto", "exact", "ivf", "hnsw"}
        See :func:`build_knn_graph` (auto: exact up to 20,000 items, the inverted file above).
    random_state : int, default 0
    backend : Backend, "local", "ray" or None, default None
        Runs every chunked pass (out-of-fold folds, confident learning, kNN graph, neighbour
        labels, duplicate sets; None: threads on every core; see :mod:`truelabel.backend`);
        the issues do not depend on it.
    chunk_size : int or None, default None
        Rows per chunk of those passes (None: each step's default); the results do not
        depend on it.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_iris
    >>> from truelabel import Audit
    >>> X, y = load_iris(return_X_y=True)
    >>> y = y.copy(); y[[0, 60, 120]] = [1, 2, 0]  # three wrong labels
    >>> result = Audit(random_state=0).run(labels=y, features=X)
    >>> bool(result.issues["is_label_issue"].iloc[[0, 60, 120]].all())
    True
    """

    def __init__(
        self,
        issue_types: dict[str, dict[str, Any]] | None = None,
        *,
        n_neighbors: int = 10,
        knn_method: str = "auto",
        random_state: int = 0,
        backend: Backend | str | None = None,
        chunk_size: int | None = None,
    ) -> None:
        self.issue_types = issue_types
        self.n_neighbors = n_neighbors
        self.knn_method = knn_method
        self.random_state = random_state
        self.backend = backend
        self.chunk_size = chunk_size

    def _detectors(self) -> tuple[list[Detector], bool]:
        """Build (and so validate) the wanted detectors and the other settings."""
        if (
            not isinstance(self.n_neighbors, int | np.integer)
            or isinstance(self.n_neighbors, bool)
            or self.n_neighbors < 1
        ):
            raise ValidationError("n_neighbors", f"got {self.n_neighbors!r}", "pass an int >= 1")
        check_choice("knn_method", self.knn_method, KNN_METHODS)
        if not isinstance(self.random_state, int | np.integer) or isinstance(
            self.random_state, bool
        ):
            raise ValidationError(
                "random_state", f"got {self.random_state!r}", "pass an integer seed"
            )
        if self.chunk_size is not None:
            chunk_ranges(1, self.chunk_size)  # a ValidationError naming chunk_size if bad
        get_backend(self.backend)  # refuses an unknown backend before any work
        if self.issue_types is None:
            return [get_detector(t) for t in available_detectors()], False
        if not isinstance(self.issue_types, dict):
            raise ValidationError(
                "issue_types",
                f"got {type(self.issue_types).__name__}",
                'pass a dict such as {"label": {}, "outlier": {"z": 4.0}}, or None for all',
            )
        detectors = []
        for name, params in self.issue_types.items():
            if params is not None and not isinstance(params, dict):
                raise ValidationError(
                    f"issue_types[{name!r}]",
                    f"got {type(params).__name__}",
                    "pass a dict of settings ({} for the defaults)",
                )
            detectors.append(get_detector(name, **(params or {})))
        return detectors, True

    def _context(
        self,
        data: Any,
        labels: Any,
        pred_probs: Any,
        features: Any,
        classes: Any,
        annotations: Any = None,
    ) -> tuple[AuditContext, list[str], pd.Index]:
        index: pd.Index | None = None
        if annotations is not None:
            from ..aggregate._table import as_annotations

            annotations = as_annotations(annotations)
            classes = [str(c) for c in annotations.classes] if classes is None else classes
            index = annotations.items.rename(annotations.columns[0])
        if data is not None:
            from ..data import Dataset

            if not isinstance(data, Dataset):
                raise ValidationError(
                    "data", f"got {type(data).__name__}", "pass a truelabel.Dataset or use keywords"
                )
            if data.is_multi_label:
                raise ValidationError(
                    "data", "is multi-label", "use truelabel.find_multilabel_issues for it"
                )
            labels = data.labels if labels is None else labels
            features = data.features if features is None else features
            classes = list(data.classes) if classes is None else classes
            index = data.ids
        from ..data._source import to_array  # .npy stays memory-mapped; Parquet by chunks

        p = None if pred_probs is None else check_pred_probs(to_array(pred_probs, "pred_probs"))
        k: int | None = p.shape[1] if p is not None else None
        if classes is not None:
            if k is not None and len(classes) != k:
                raise ValidationError(
                    "classes", f"{len(classes)} names for {k} classes", "pass one name per class"
                )
            k = len(classes)
        y = None
        if labels is not None:
            raw = np.asarray(to_array(labels, "labels"))
            if raw.ndim == 1 and raw.dtype.kind in "iu" and raw.size and raw.min() == -1:
                lab = raw >= 0
                if not lab.any():
                    raise ValidationError(
                        "labels", "no labelled rows", "label at least a few items"
                    )
                y = scratch(raw.shape[0], np.int64, fill=-1)  # a spill file when large
                y[lab] = check_labels(raw[lab], n_classes=k)
            else:
                y = check_labels(raw, n_classes=k)
            if k is None:
                k = int(y.max()) + 1
        X = None if features is None else check_features(to_array(features, "features"))
        ctx = AuditContext(
            labels=y,
            pred_probs=p,
            features=X,
            n_classes=int(k or 0),
            n_neighbors=self.n_neighbors,
            random_state=self.random_state,
            knn_method=self.knn_method,
            annotations=annotations,
            backend=get_backend(self.backend),
            chunk_size=self.chunk_size,
        )
        n = ctx.n_items
        if annotations is not None and annotations.n_items != n:
            raise ValidationError(
                "annotations",
                f"has {annotations.n_items} items, expected {n}",
                "annotate the same items",
            )
        for name, arr in (("pred_probs", p), ("features", X), ("labels", y)):
            if arr is not None and arr.shape[0] != n:
                raise ValidationError(
                    name, f"has {arr.shape[0]} items, expected {n}", "pass one row per item"
                )
        names = (
            [str(c) for c in classes] if classes is not None else [str(i) for i in range(k or 0)]
        )
        ctx.class_names = tuple(names)
        return ctx, names, index if index is not None else pd.RangeIndex(n)

    def run(
        self,
        data: Any = None,
        *,
        labels: Any = None,
        pred_probs: Any = None,
        features: Any = None,
        classes: Any = None,
        raw_features: Any = None,
        annotations: Any = None,
    ) -> AuditResult:
        """Run the audit.

        Parameters
        ----------
        data : Dataset, optional
            Supplies labels, features, class names and the index.
        labels : array of shape (n_items,), path or Source, optional
            Integer labels, -1 for unlabelled items; also an ``.npy`` path or
            ``x.parquet:COLUMN``.
        pred_probs : array of shape (n_items, n_classes), path or Source, optional
            Out-of-sample probabilities; computed out-of-fold from ``features`` when absent.
            ``x.npy`` is memory-mapped, ``x.parquet:COL`` / ``x.parquet:p_0,p_1,...`` copied
            by chunks to a memory-mapped scratch file (:func:`truelabel.data.open_source`).
        features : array of shape (n_items, n_dims), path or Source, optional
            Features or embeddings (kNN graph for outliers, duplicates, label consistency);
            paths as for ``pred_probs``.
        classes : sequence of str, optional
            Class names, in class-index order.
        raw_features : sparse matrix or array of shape (n_items, n_raw), optional
            The items in their original space when ``features`` are a projection of it
            (the raw TF-IDF rows behind LSA vectors): near-duplicates and outliers are
            judged there by exact cosine.
        annotations : DataFrame or Annotations, optional
            A long table ``item_id, annotator_id, label`` of the same items (items in sorted
            id order, the table's own): the ``consensus`` issue type flags items whose
            consensus is doubtful and lists the annotators who disagree with it.
        """
        wanted, explicit = self._detectors()
        ctx, names, index = self._context(data, labels, pred_probs, features, classes, annotations)
        if raw_features is not None:
            ctx.raw_features = check_raw_features(
                raw_features, ctx.n_items, ctx.features is not None
            )
        detectors = []
        for det in wanted:
            name = det.name
            if det.can_run(ctx):
                detectors.append(det)
            elif explicit:
                need = getattr(det, "need", None) or (
                    " and ".join(det.requires_all) or " or ".join(det.requires)
                )
                raise ValidationError(
                    "issue_types", f"{name!r} needs {need}", f"pass {need} or drop {name!r}"
                )
        if not detectors:
            raise ValidationError(
                "data",
                "no issue type can run on these inputs",
                "pass labels with pred_probs or features",
            )
        frames, info = [], {}
        with progress(len(detectors), "audit") as advance:
            for det in detectors:
                res = det.detect(ctx)
                # its per-item columns move to spill files at once (when large), before the
                # next detector runs: the table being built is never in anonymous memory
                frames.append(_settled(res.columns, ctx))
                info[det.name] = res.info
                del res
                advance(1)
        neighbors = _flagged_neighbors(ctx, frames)
        ctx.release_graphs()  # the graph (120 MB at 1e6 items) is not needed for the table
        issues = _issue_table(frames, index, names)
        del frames
        noise = info.get("label", {}).get("noise")
        summary = _summarize(issues, names, noise, [d.name for d in detectors])
        if noise is not None:
            _warn_noise_rate(float(noise.noise_rate))
        return AuditResult(
            issues=issues,
            summary=summary,
            noise=noise,
            pred_probs=ctx.cache.get("label_pred_probs"),
            info={k: {kk: vv for kk, vv in v.items() if kk != "noise"} for k, v in info.items()},
            neighbors=neighbors,
        )


#: rows per block of :func:`_class_names_of` (below the spill threshold)
_NAMES_BLOCK = 1 << 18


def _class_names_of(codes: np.ndarray, names: list[str]) -> Any:
    """The class name of each code, missing for -1 (:func:`truelabel._spill_frame.take_names`:
    Arrow strings taken block by block, or over spill files when large)."""
    return take_names(codes, names, block=_NAMES_BLOCK)


def _settled(frame: pd.DataFrame, ctx: AuditContext) -> pd.DataFrame:
    """A detector's columns, each NumPy column of at least the spill threshold copied to a
    spill file (:func:`~truelabel._spill_frame.spill_copy`; the labels the context holds are
    kept as they are), in a frame that wraps them without a copy. Arrays the detector also
    left in ``ctx.cache`` are replaced by the same copies, so the originals are freed."""
    cols: dict[str, Any] = {}
    moved: list[tuple[np.ndarray, np.ndarray]] = []
    for name in frame.columns:
        values = frame[name].array
        if not isinstance(values, pd.arrays.NumpyExtensionArray):
            cols[name] = values  # Arrow strings, nullable types: kept as they are
            continue
        arr = values.to_numpy()
        if ctx.labels is not None and np.may_share_memory(arr, ctx.labels):
            cols[name] = arr
            continue
        cols[name] = spill_copy(arr)
        if cols[name] is not arr:
            moved.append((arr, cols[name]))
    for key, value in list(ctx.cache.items()):
        for arr, copy in moved:
            if _same_array(value, arr):
                ctx.cache[key] = copy
    return pd.DataFrame(cols, index=frame.index, copy=False)


def _same_array(a: Any, b: np.ndarray) -> bool:
    """Whether ``a`` is an array over exactly the memory, shape and dtype of ``b``."""
    return (
        isinstance(a, np.ndarray)
        and a.shape == b.shape
        and a.dtype == b.dtype
        and a.strides == b.strides
        and a.__array_interface__["data"][0] == b.__array_interface__["data"][0]
    )


def _issue_table(frames: list[pd.DataFrame], index: pd.Index, names: list[str]) -> pd.DataFrame:
    """The detectors' columns side by side, indexed like the input, the label codes as class
    names: one frame over the settled arrays (no copy; pandas keeps a block per column)."""
    cols: dict[str, Any] = {}
    for frame in frames:
        for name in frame.columns:
            values = frame[name].array
            if name in ("given_label", "suggested_label"):
                values = _class_names_of(values.to_numpy(), names)
            elif isinstance(values, pd.arrays.NumpyExtensionArray):
                values = values.to_numpy()
            cols[name] = values
    return pd.DataFrame(cols, index=index, copy=False)


def _flagged_neighbors(
    ctx: AuditContext, frames: list[pd.DataFrame]
) -> dict[str, np.ndarray] | None:
    """The first :data:`NEIGHBORS_KEPT` neighbours of every flagged row, from the graph the
    detectors built (never built here for this): O(n_flagged) memory."""
    graph = ctx.__dict__.get("knn")  # the cached graph, only if a detector asked for it
    if graph is None:
        return None
    flags = [
        frame[col]
        for frame in frames
        for col in frame.columns
        if col.startswith("is_") and col.endswith("_issue")
    ]
    parts = []
    for sl in iter_chunks(ctx.n_items, _NAMES_BLOCK):  # a block's mask at a time, not n bytes
        flagged = np.zeros(sl.stop - sl.start, dtype=bool)
        for col in flags:
            flagged |= col.iloc[sl].to_numpy(dtype=bool, na_value=False)
        parts.append(sl.start + np.flatnonzero(flagged))
    rows = np.concatenate(parts).astype(np.int64)
    return {"rows": rows, "indices": np.array(graph.indices[rows, :NEIGHBORS_KEPT])}


def _warn_noise_rate(rate: float) -> None:
    """Warn that an estimated noise rate above :data:`NOISE_RATE_WARN` is unreliable."""
    if not rate > NOISE_RATE_WARN:
        return
    warn_at_caller(
        f"the estimated label noise rate is {rate:.1%}, above {NOISE_RATE_WARN:.0%}: the "
        "estimate assumes most labels of each class are right, so at this level it is "
        "unreliable, and so are the flagged label issues. The usual causes are probabilities "
        "from a model that did not learn the classes (too few labelled items per class, "
        "uninformative features) or pred_probs columns not in the order of the classes; check "
        "the model's accuracy against the labels before acting on these results",
        TruelabelWarning,
    )


def _summarize(
    issues: pd.DataFrame, names: list[str], noise: NoiseEstimate | None, types: list[str]
) -> dict[str, Any]:
    counts = {t: int(issues[f"is_{t}_issue"].sum()) for t in types}
    per_class: dict[str, dict[str, int]] = {}
    if "given_label" in issues:
        given = issues["given_label"]
        for t in types:
            flags = issues[f"is_{t}_issue"]
            per_class[t] = dict.fromkeys(names, 0)
            # the flagged rows' names counted a block at a time (no subset of all of them)
            for sl in iter_chunks(len(issues), _NAMES_BLOCK):
                pick = flags.iloc[sl].to_numpy(dtype=bool, na_value=False)
                flagged = given.iloc[sl][pick].value_counts()
                for n in per_class[t]:
                    per_class[t][n] += int(flagged.get(n, 0))
    summary: dict[str, Any] = {
        "n_items": len(issues),
        "n_classes": len(names),
        "classes": names,
        "issue_counts": counts,
        "issues_per_class": per_class,
    }
    if noise is not None:
        summary["noise_matrix"] = noise.noise_matrix.tolist()
        summary["joint"] = noise.joint.tolist()
        summary["estimated_noise_rate"] = noise.noise_rate
    return summary
