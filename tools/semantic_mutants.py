"""Named semantic mutants: each is a plausible bug that some test must catch.

mutmut's operator-level mutants (``tools/mutation.sh``) flip one token at a time; the bugs that
matter more are a setting ignored, a mode swapped, a guard removed. Each entry below patches one
exact snippet in a scratch copy of ``src/`` and runs the named tests there: the mutant is *killed*
when a test fails (pytest exit code 1). A snippet that no longer occurs exactly once is reported as
``stale`` (the code moved: update the entry), never silently skipped.

    python tools/semantic_mutants.py            # all mutants, table + exit 1 if any survives
    python tools/semantic_mutants.py -k pool    # only those whose name contains "pool"

Not part of CI (about ten minutes); results are in benchmarks/results/mutation.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutant:
    name: str
    path: str  # relative to the repository root
    old: str
    new: str
    tests: tuple[str, ...]  # the narrowest test files that catch it
    issue: bool = False  # named in observation 9 of issue 6


# where the mutants live (paths relative to the repository root)
VALIDATION = "src/truelabel/_validation.py"
AGG_AGREEMENT = "src/truelabel/aggregate/_agreement.py"
AGG_BASE = "src/truelabel/aggregate/_base.py"
AGG_DS = "src/truelabel/aggregate/_dawid_skene.py"
AGG_EM = "src/truelabel/aggregate/_em.py"
AGG_MACE = "src/truelabel/aggregate/_mace.py"
AGG_MAJORITY = "src/truelabel/aggregate/_majority.py"
AGG_QUALITY = "src/truelabel/aggregate/_quality.py"
AGG_TABLE = "src/truelabel/aggregate/_table.py"
AUTO_CERTIFIED = "src/truelabel/autolabel/_certified.py"
AUTO_GRID = "src/truelabel/autolabel/_grid.py"
AUTO_SEARCH = "src/truelabel/autolabel/_search.py"
AUTO_STEP = "src/truelabel/autolabel/_step.py"
CLI_APP = "src/truelabel/cli/_app.py"
CLI_AUTOLABEL = "src/truelabel/cli/_autolabel.py"
CONF_MULTILABEL = "src/truelabel/conformal/_multilabel.py"
DATA_LABELS = "src/truelabel/data/_labels.py"
DATA_NAMES = "src/truelabel/data/_names.py"
DATA_READERS = "src/truelabel/data/_readers.py"
DET_AUDIT = "src/truelabel/detect/_audit.py"
DET_BASE = "src/truelabel/detect/_base.py"
DET_CALIBRATION = "src/truelabel/detect/_calibration.py"
DET_CONFIDENT_LEARNING = "src/truelabel/detect/_confident_learning.py"
DET_CONFIDENT_PASSES = "src/truelabel/detect/_confident_passes.py"
DET_DUPLICATES = "src/truelabel/detect/_duplicates.py"
DET_FILTER = "src/truelabel/detect/_filter.py"
DET_KNN = "src/truelabel/detect/_knn.py"
DET_OUTLIERS = "src/truelabel/detect/_outliers.py"
DET_OVERLAP = "src/truelabel/detect/_overlap.py"
DET_RANK = "src/truelabel/detect/_rank.py"
DET_TOPN = "src/truelabel/detect/_topn.py"
MODEL_OOF = "src/truelabel/model/_oof.py"
PIPELINE = "src/truelabel/pipeline.py"
REP_ASSETS = "src/truelabel/report/_assets.py"
REP_HISTOGRAM = "src/truelabel/report/_histogram.py"
REP_HTML = "src/truelabel/report/_html.py"
REP_SECTIONS = "src/truelabel/report/_sections.py"
REP_SVG = "src/truelabel/report/_svg.py"
# scale-out (issue 11): sources, backend= on oof / encoder / conformal scores
AGG_TABLE_PARQUET = "src/truelabel/aggregate/_table_parquet.py"
CONF_SCORES = "src/truelabel/conformal/_scores.py"
CONF_SPLIT = "src/truelabel/conformal/_split.py"
CONF_CROSS = "src/truelabel/conformal/_cross.py"
DATA_SOURCE = "src/truelabel/data/_source.py"
DET_LABEL = "src/truelabel/detect/_label_detector.py"
ENC_ONNX = "src/truelabel/encode/_onnx.py"

MUTANTS: list[Mutant] = [
    # --- aggregate ---
    Mutant(
        "aggregate: DS smoothing ignored",
        AGG_DS,
        "alpha = np.full((k, k), float(self.smoothing) / k)",
        "alpha = np.full((k, k), 0.01 / k)",
        ("tests/test_aggregate_oracles.py",),
    ),
    Mutant(
        "aggregate: DS pooled prior ignored",
        AGG_DS,
        "        if self.prior_strength > 0:\n            pooled",
        "        if False:\n            pooled",
        ("tests/test_aggregate_oracles.py",),
    ),
    Mutant(
        "aggregate: DS class prior not learned",
        AGG_DS,
        "prior = (totals + 1.0) / (totals.sum() + len(totals))",
        "prior = np.full(len(totals), 1.0 / len(totals))",
        ("tests/test_aggregate_oracles.py",),
    ),
    Mutant(
        "aggregate: gold not clamped in the E-step",
        AGG_EM,
        "        if has.any():\n            rows = np.flatnonzero(has)",
        "        if False:\n            rows = np.flatnonzero(has)",
        ("tests/test_aggregate.py",),
    ),
    Mutant(
        "aggregate: ties to the first class",
        AGG_BASE,
        "return np.asarray(np.argmax(np.where(tied, draws + 1.0, 0.0), axis=1))",
        "return np.asarray(np.argmax(posteriors, axis=1))",
        ("tests/test_aggregate.py",),
    ),
    Mutant(
        "aggregate: conflicting repeats accepted",
        AGG_TABLE,
        '        if self.duplicates == "raise":\n            if conflict.any():',
        '        if self.duplicates == "raise":\n            if False:',
        ("tests/test_aggregate.py",),
    ),
    Mutant(
        "aggregate: duplicates last keeps the first",
        AGG_TABLE,
        '        if self.duplicates == "first":\n            return order[first]',
        '        if self.duplicates in ("first", "last"):\n            return order[first]',
        ("tests/test_aggregate.py",),
    ),
    Mutant(
        "aggregate: items in row order",
        AGG_TABLE,
        "codes, uniques = pd.factorize(values, sort=True)",
        "codes, uniques = pd.factorize(values, sort=False)",
        ("tests/test_aggregate.py",),
    ),
    Mutant(
        "aggregate: one-coin accuracy not floored at chance",
        AGG_DS,
        "        p = np.maximum(p, 1.0 / k)  # no annotator",
        "        p = np.maximum(p, 0.0)  # no annotator",
        ("tests/test_aggregate_synthetic.py",),
    ),
    Mutant(
        "aggregate: one-coin class prior always learned",
        AGG_DS,
        '        if self.class_prior == "uniform":',
        "        if False:",
        ("tests/test_aggregate_synthetic.py",),
    ),
    Mutant(
        "aggregate: EM statistics summed in float (no fixed point)",
        AGG_EM,
        "    fixed = np.rint(post * _SCALE_T)",
        "    fixed = post * _SCALE_T",
        ("tests/test_aggregate_synthetic.py",),
    ),
    Mutant(
        "aggregate: only the first EM start",
        AGG_EM,
        "    for index, init in enumerate(inits):",
        "    for index, init in enumerate(inits[:1]):",
        ("tests/test_aggregate_synthetic.py",),
    ),
    Mutant(
        "aggregate: worst EM start kept",
        AGG_EM,
        "if best is None or objective > best.objective:",
        "if best is None or objective < best.objective:",
        ("tests/test_aggregate_synthetic.py",),
    ),
    Mutant(
        "aggregate: EM never checks convergence",
        AGG_EM,
        "if prev is not None and abs(objective - prev) <= tol * n_labels:",
        "if False:",
        ("tests/test_aggregate.py",),
    ),
    Mutant(
        "aggregate: MACE responsibilities ignore the spam distribution",
        AGG_MACE,
        "knows = comp[:, None] / (comp[:, None] + (1.0 - comp[:, None]) * xi)",
        "knows = comp[:, None] + 0.0 * xi",
        ("tests/test_aggregate_oracles.py",),
    ),
    Mutant(
        "aggregate: MACE uniform class prior",
        AGG_MACE,
        "        log_prior, prior_term = log_class_prior(totals)",
        "        log_prior, prior_term = np.full(k, -np.log(k)), 0.0",
        ("tests/test_aggregate_oracles.py",),
    ),
    Mutant(
        "aggregate: weighted vote uses accuracy, not log-odds",
        AGG_MAJORITY,
        "w = np.maximum(0.0, np.log((k - 1) * p / (1.0 - p)))",
        "w = p",
        ("tests/test_aggregate_oracles.py",),
    ),
    Mutant(
        "aggregate: quality ignores gold",
        AGG_QUALITY,
        "    use_gold = n_gold > 0",
        "    use_gold = n_gold < 0",
        ("tests/test_aggregate_oracles.py",),
    ),
    Mutant(
        "aggregate: Wilson interval ignores confidence",
        AGG_QUALITY,
        "z = float(norm.ppf(0.5 + confidence / 2.0))",
        "z = 1.0",
        ("tests/test_aggregate_oracles.py",),
    ),
    Mutant(
        "aggregate: Krippendorff without the self-pair correction",
        AGG_AGREEMENT,
        "o = scaled.T @ v - np.diag(scaled.sum(axis=0))",
        "o = scaled.T @ v",
        ("tests/test_aggregate_oracles.py",),
    ),
    Mutant(
        "aggregate: Cohen chance from one annotator's marginals",
        AGG_AGREEMENT,
        "p_e = (row * col).sum(axis=1) / n**2",
        "p_e = (row * row).sum(axis=1) / n**2",
        ("tests/test_aggregate_oracles.py",),
    ),
    Mutant(
        "aggregate: Fleiss chance uniform",
        AGG_AGREEMENT,
        "p_e = float((p_k**2).sum())",
        "p_e = 1.0 / len(p_k)",
        ("tests/test_aggregate_oracles.py",),
    ),
    # --- autolabel ---
    Mutant(
        "accept every pool item once anything is certified",
        AUTO_CERTIFIED,
        "accepted = has_t & (conf >= np.where(has_t, thr, np.inf))",
        "accepted = has_t.copy()",
        ("tests/test_autolabel.py", "src/truelabel/autolabel"),
        issue=True,
    ),
    Mutant(
        "rate threshold in pool mode",
        AUTO_CERTIFIED,
        "t, bound, other_t = pool_t, (pool.bound if pool else None), cert.threshold",
        "t, bound, other_t = cert.threshold, cert.bound, pool_t",
        ("tests/test_autolabel.py", "src/truelabel/autolabel"),
        issue=True,
    ),
    Mutant(
        "ignore calibration_label_error",
        AUTO_CERTIFIED,
        "return self.max_error * (1.0 - self.calibration_label_error)",
        "return self.max_error",
        ("tests/test_autolabel.py", "src/truelabel/autolabel"),
        issue=True,
    ),
    Mutant(
        "swap guarantee modes",
        AUTO_CERTIFIED,
        'if self.guarantee == "rate":\n                t, bound',
        'if self.guarantee != "rate":\n                t, bound',
        ("tests/test_autolabel.py", "src/truelabel/autolabel"),
    ),
    Mutant(
        "class-conditional ignored (per-class correction dropped)",
        AUTO_CERTIFIED,
        'if not self.class_conditional:\n            self._counts["all"]',
        'if True:\n            self._counts["all"]',
        ("tests/test_autolabel.py", "src/truelabel/autolabel"),
    ),
    Mutant(
        "simultaneous Bonferroni dropped",
        AUTO_CERTIFIED,
        "return self.delta / max(n_groups, 1) if simultaneous else self.delta",
        "return self.delta",
        ("tests/test_autolabel.py", "src/truelabel/autolabel"),
    ),
    Mutant(
        "zero-accepted guard on certified removed",
        AUTO_CERTIFIED,
        "certified=n_acc > 0,",
        "certified=any(t is not None for t in thresholds.values()),",
        ("tests/test_autolabel.py", "src/truelabel/autolabel"),
    ),
    Mutant(
        "fallback keeps level after a failure",
        AUTO_GRID,
        "        else:\n            level = 0.0\n    return chosen",
        "    return chosen",
        ("tests/test_autolabel.py", "src/truelabel/autolabel"),
    ),
    Mutant(
        "no reallocation of unreachable starts",
        AUTO_GRID,
        "    first = share + spare",
        "    first = share",
        ("tests/test_autolabel.py", "src/truelabel/autolabel"),
    ),
    Mutant(
        "histogram off by one on ties",
        AUTO_GRID,
        'idx = ascending.size - np.searchsorted(ascending, c, side="right")',
        'idx = ascending.size - np.searchsorted(ascending, c, side="left")',
        ("tests/test_autolabel.py", "src/truelabel/autolabel"),
    ),
    Mutant(
        "n_more returns the last failing size",
        AUTO_SEARCH,
        "    return hi - total",
        "    return lo - total",
        ("tests/test_autolabel.py", "src/truelabel/autolabel"),
    ),
    Mutant(
        "bound not unadjusted for label noise",
        AUTO_CERTIFIED,
        "return min(1.0, bound / (1.0 - self.calibration_label_error))",
        "return min(1.0, bound)",
        ("tests/test_autolabel.py", "src/truelabel/autolabel"),
    ),
    Mutant(
        "pool H0 without +1",
        AUTO_SEARCH,
        "k = np.floor(max_error * m).astype(np.int64) + 1",
        "k = np.floor(max_error * m).astype(np.int64)",
        ("tests/test_autolabel.py", "src/truelabel/autolabel"),
    ),
    Mutant(
        "certificate.json certified from the calibration rate",
        AUTO_STEP,
        '"certified": result.certified,',
        '"certified": labeler.threshold_ is not None,',
        ("tests/test_cli_certify.py",),
    ),
    Mutant(
        "rate p-value at full delta from every start (no split)",
        AUTO_GRID,
        "    share = delta / len(START_RATES)\n    starts",
        "    share = delta\n    starts",
        ("tests/test_autolabel.py", "src/truelabel/autolabel"),
    ),
    Mutant(
        "prediction-set alpha ignored (always 0.1)",
        AUTO_STEP,
        'SplitConformalClassifier(method="lac", alpha=alpha)',
        'SplitConformalClassifier(method="lac", alpha=0.1)',
        ("tests/test_autolabel_step_oracles.py",),
    ),
    Mutant(
        "empty prediction set left empty",
        AUTO_STEP,
        "    sets[np.arange(pool.shape[0]), pool.argmax(axis=1)] |= ~sets.any(axis=1)\n",
        "",
        ("tests/test_autolabel_step_oracles.py",),
    ),
    Mutant(
        "uncertified class threshold written as NaN",
        AUTO_STEP,
        "return [None if np.isnan(v) else float(v) for v in value]",
        "return [float(v) for v in value]",
        ("tests/test_autolabel_step_oracles.py",),
    ),
    Mutant(
        "per-class need ignores simultaneous",
        AUTO_CERTIFIED,
        "n_groups = len(self.certificates_) if self.simultaneous else 1",
        "n_groups = 1",
        ("tests/test_autolabel_step_oracles.py",),
    ),
    Mutant(
        "per-class need ignores calibration_label_error",
        AUTO_CERTIFIED,
        "need = min_items_to_certify(0.0, self._eps, self.delta / max(n_groups, 1))",
        "need = min_items_to_certify(0.0, self.max_error, self.delta / max(n_groups, 1))",
        ("tests/test_autolabel_step_oracles.py",),
    ),
    # --- conformal ---
    Mutant(
        "FWER quantile set to 1",
        CONF_MULTILABEL,
        "self.quantile_ = _compute_quantile(worst, alpha)",
        "self.quantile_ = 1.0",
        ("tests/test_conformal_multilabel.py",),
        issue=True,
    ),
    # --- detect ---
    Mutant(
        "detector mutates its params (near_duplicate writes its radius, euclidean)",
        DET_DUPLICATES,
        "        sets = near_duplicate_sets(\n            ctx.knn.indices,",
        '        self.params["threshold"] = radius\n        sets = near_duplicate_sets(\n            ctx.knn.indices,',
        ("tests/test_common.py",),
        issue=True,
    ),
    Mutant(
        "detector mutates its params (outlier writes its default z)",
        DET_OUTLIERS,
        '        z = float(self.params.get("z", _Z))',
        '        z = float(self.params.setdefault("z", _Z))',
        ("tests/test_common.py",),
        issue=True,
    ),
    Mutant(
        "detector mutates its params (near_duplicate writes its threshold)",
        DET_DUPLICATES,
        "        sets = near_duplicate_sets(\n            graph.indices,",
        '        self.params["threshold"] = threshold\n        sets = near_duplicate_sets(\n            graph.indices,',
        ("tests/test_common.py",),
        issue=True,
    ),
    Mutant(
        "drop noise-rate warning",
        DET_AUDIT,
        "    if not rate > NOISE_RATE_WARN:\n        return",
        "    if True:\n        return",
        ("tests/test_cli.py", "tests/test_error_paths.py"),
    ),
    Mutant(
        "unknown settings accepted",
        DET_BASE,
        "        check_settings(type(self), params)\n",
        "",
        ("tests/test_common.py", "tests/test_validation.py", "tests/test_detectors.py"),
    ),
    Mutant(
        "no closest hint",
        DET_BASE,
        "        hint = closest(str(key), valid)\n",
        "        hint = None\n",
        ("tests/test_common.py", "tests/test_validation.py"),
    ),
    Mutant(
        "no value type check",
        DET_BASE,
        "            _check_value(argument, key, value, cls.settings[key])\n",
        "",
        ("tests/test_validation.py",),
    ),
    Mutant(
        "Audit n_neighbors unchecked",
        DET_AUDIT,
        "or self.n_neighbors < 1",
        "or self.n_neighbors < -10",
        ("tests/test_validation.py",),
    ),
    Mutant(
        "confused pairs not sorted (_overlap)",
        DET_OVERLAP,
        "    order = np.lexsort((b, a, -values))",
        "    order = np.lexsort((b, a))",
        ("tests/test_overlap.py", "src/truelabel/detect/_overlap.py"),
    ),
    Mutant(
        "pairs sorted ascending",
        DET_OVERLAP,
        "    order = np.lexsort((b, a, -values))",
        "    order = np.lexsort((b, a, values))",
        ("tests/test_overlap.py", "src/truelabel/detect/_overlap.py"),
    ),
    Mutant(
        "asymmetric ignored",
        DET_OVERLAP,
        "    values = joint[a, b] if asymmetric else joint[a, b] + joint[b, a]",
        "    values = joint[a, b] + joint[b, a]",
        ("tests/test_overlap.py", "src/truelabel/detect/_overlap.py"),
    ),
    Mutant(
        "symmetric uses one triangle",
        DET_OVERLAP,
        "    values = joint[a, b] if asymmetric else joint[a, b] + joint[b, a]",
        "    values = joint[a, b]",
        ("tests/test_overlap.py", "src/truelabel/detect/_overlap.py"),
    ),
    Mutant(
        "label_issues unsorted",
        DET_AUDIT,
        'return flagged.sort_values("label_score", kind="stable")',
        "return flagged",
        ("tests/test_report.py",),
        issue=True,
    ),
    Mutant(
        "label_issues unfiltered",
        DET_AUDIT,
        'flagged = self.issues[self.issues["is_label_issue"]]',
        "flagged = self.issues",
        ("tests/test_report.py",),
        issue=True,
    ),
    Mutant(
        "detect imports report at module level",
        DET_AUDIT,
        "from .._progress import progress\n",
        "from .._progress import progress\nfrom ..report import render_report  # noqa: F401\n",
        ("tests/test_layering.py",),
    ),
    Mutant(
        "prune_by_class is argmax != label",
        DET_FILTER,
        'if filter_by == "predicted_neq_given":',
        'if filter_by in ("predicted_neq_given", "prune_by_class"):',
        ("tests/test_scores_oracles.py", "tests/test_confident_learning.py"),
        issue=True,
    ),
    Mutant(
        "low_normalized_margin is argmax != label",
        DET_FILTER,
        'if filter_by == "predicted_neq_given":',
        'if filter_by in ("predicted_neq_given", "low_normalized_margin"):',
        ("tests/test_scores_oracles.py",),
        issue=True,
    ),
    Mutant(
        "noise_aware filter flags every disagreeing item",
        DET_FILTER,
        'if filter_by == "predicted_neq_given":',
        'if filter_by in ("predicted_neq_given", "noise_aware"):',
        ("tests/test_scores_oracles.py", "tests/test_confident_learning.py"),
    ),
    Mutant(
        "min_examples_per_class ignored",
        DET_FILTER,
        "allowed = np.maximum(n_per_class - min_examples_per_class, 0)",
        "allowed = np.maximum(n_per_class, 0)",
        ("tests/test_scores_oracles.py", "tests/test_confident_learning.py"),
    ),
    Mutant(
        "both = union instead of intersection",
        DET_FILTER,
        'mask = mask & by_rate if filter_by == "both" else by_rate',
        'mask = mask | by_rate if filter_by == "both" else by_rate',
        ("tests/test_scores_oracles.py", "tests/test_confident_learning.py"),
    ),
    Mutant(
        "class_temperature returns the input unchanged",
        DET_CALIBRATION,
        "            param = np.exp(res.x)",
        "            param = np.ones(k)",
        ("tests/test_calibration_oracles.py", "tests/test_calibration.py"),
        issue=True,
    ),
    Mutant(
        "prior calibration ignores the class prior",
        DET_CALIBRATION,
        "        param = ps / np.maximum(mean_p / labels.shape[0], _TINY)",
        "        param = np.ones(k)",
        ("tests/test_calibration_oracles.py", "tests/test_calibration.py"),
    ),
    Mutant(
        "default score never shrinks (lam = 1)",
        DET_RANK,
        "    return 0.0 if not dispersion > 1.0 else 1.0 - 1.0 / dispersion",
        "    return 1.0",
        ("tests/test_scores_oracles.py", "tests/test_confident_learning.py"),
    ),
    Mutant(
        "default score always uniform (lam = 0)",
        DET_RANK,
        "    return 0.0 if not dispersion > 1.0 else 1.0 - 1.0 / dispersion",
        "    return 0.0",
        ("tests/test_scores_oracles.py", "tests/test_confident_learning.py"),
    ),
    Mutant(
        "top-n merge keeps the chunk's own n only",
        DET_TOPN,
        "            best = _keep_lowest(np.r_[best[0], low[0]], np.r_[best[1], low[1]], n)",
        "            best = low",
        ("tests/test_chunked_label_passes.py",),
    ),
    Mutant(
        "top-n ties broken by higher index",
        DET_TOPN,
        'keep[tied[np.argsort(idx[tied], kind="stable")[:need]]] = True',
        'keep[tied[np.argsort(-idx[tied], kind="stable")[:need]]] = True',
        ("tests/test_chunked_label_passes.py",),
    ),
    Mutant(
        "stale cache after an in-place change of pred_probs",
        DET_CONFIDENT_LEARNING,
        "        and np.array_equal(hit.rows, rows)\n",
        "",
        ("tests/test_chunked_label_passes.py",),
    ),
    Mutant(
        "cache ignores the labels' checksum",
        DET_CONFIDENT_LEARNING,
        "    key = (pred_probs.shape, pred_probs.dtype.str, first.label_crcs)",
        "    key = (pred_probs.shape, pred_probs.dtype.str)",
        ("tests/test_chunked_label_passes.py",),
    ),
    Mutant(
        "class without items gets threshold 0",
        DET_CONFIDENT_PASSES,
        "        return np.where(self.counts > 0, t, np.inf)",
        "        return np.where(self.counts > 0, t, 0.0)",
        ("tests/test_confident_joint_oracle.py",),
    ),
    Mutant(
        "near_duplicate cosine threshold ignored",
        DET_DUPLICATES,
        "        threshold = self._threshold(COSINE_THRESHOLD, 0.0, 1.0)\n",
        "        threshold = self._threshold(COSINE_THRESHOLD, 0.0, 1.0) * 0 + COSINE_THRESHOLD\n",
        ("tests/test_detector_oracles.py", "tests/test_detectors.py", "tests/test_text_issues.py"),
        issue=True,
    ),
    Mutant(
        "near_duplicate euclidean threshold ignored",
        DET_DUPLICATES,
        "        radius = threshold * scale\n",
        "        radius = RADIUS_FRACTION * scale\n",
        ("tests/test_detector_oracles.py", "tests/test_detectors.py"),
        issue=True,
    ),
    Mutant(
        "near_duplicate metric setting ignored",
        DET_DUPLICATES,
        '        if metric == "cosine" or (metric == "auto" and ctx.uses_cosine):',
        "        if ctx.uses_cosine:",
        ("tests/test_detectors.py", "tests/test_text_issues.py"),
    ),
    Mutant(
        "union-find merge drops the other chunk's pairs",
        DET_DUPLICATES,
        "        _pairs_chunk, chunks, shared, combine=_merge_forests, backend=backend, initial=empty",
        "        _pairs_chunk, chunks, shared, combine=lambda a, b: a if a[0].size else b, backend=backend, initial=empty",
        ("tests/test_detectors.py", "tests/test_text_issues.py"),
    ),
    Mutant(
        "hash collision joins without the exact re-check",
        DET_DUPLICATES,
        "        lead = np.where(lead_sim >= threshold, lead, own)  # a hash collision never joins\n",
        "",
        ("tests/test_detectors.py", "tests/test_text_issues.py"),
    ),
    Mutant(
        "outlier sign flipped (pred_probs only)",
        DET_OUTLIERS,
        "            flagged = robust_upper_outliers(-np.log(np.maximum(score, 1e-12)), z)",
        "            flagged = robust_upper_outliers(np.log(np.maximum(score, 1e-12)), z)",
        ("tests/test_detector_oracles.py", "tests/test_detectors.py"),
        issue=True,
    ),
    Mutant(
        "outlier sign flipped (plain features)",
        DET_OUTLIERS,
        "            flagged = robust_upper_outliers(np.log(d + 1e-12 * scale), z)",
        "            flagged = robust_upper_outliers(-np.log(d + 1e-12 * scale), z)",
        ("tests/test_detector_oracles.py", "tests/test_detectors.py"),
    ),
    Mutant(
        "outlier sign flipped (text, cosine)",
        DET_OUTLIERS,
        "            flagged = robust_upper_outliers(-np.log(np.maximum(score, 1e-6)), z)",
        "            flagged = robust_upper_outliers(np.log(np.maximum(score, 1e-6)), z)",
        ("tests/test_detector_oracles.py", "tests/test_text_issues.py", "tests/test_detectors.py"),
    ),
    Mutant(
        "outlier z setting ignored",
        DET_OUTLIERS,
        '        z = float(self.params.get("z", _Z))',
        "        z = _Z",
        ("tests/test_detector_oracles.py", "tests/test_detectors.py"),
    ),
    Mutant(
        "text outliers use the original space only",
        DET_OUTLIERS,
        "            score = orig * np.clip(feat.mean(axis=1), 0.0, 1.0)",
        "            score = orig",
        ("tests/test_detector_oracles.py", "tests/test_text_issues.py"),
    ),
    Mutant(
        "kNN block merge keeps only the last block",
        DET_KNN,
        "        best_d, best_i = _smallest(np.hstack([best_d, d]), np.hstack([best_i, ids]), m)",
        "        best_d, best_i = d, ids",
        ("tests/test_knn_blockwise.py",),
    ),
    Mutant(
        "kNN keeps k candidates, not k + 1 (self included)",
        DET_KNN,
        "    m = min(k + 1 + _SPARE, X.shape[0])",
        "    m = min(k, X.shape[0])",
        ("tests/test_knn_blockwise.py",),
    ),
    # --- model ---
    Mutant(
        "drop too-few-per-class warning",
        MODEL_OOF,
        "    if small.size == 0:\n        return",
        "    if True:\n        return",
        ("tests/test_model_and_data_gen.py", "tests/test_cli.py"),
    ),
    Mutant(
        "ignore estimator in out_of_fold_pred_probs",
        MODEL_OOF,
        "est = default_estimator(random_state) if estimator is None else estimator",
        "est = default_estimator(random_state)",
        ("tests/test_model_and_data_gen.py",),
        issue=True,
    ),
    Mutant(
        "sklearn warnings not caught (leak)",
        MODEL_OOF,
        '        with warnings.catch_warnings(record=True) as caught:\n            warnings.simplefilter("always")\n            for f in range',
        "        with __import__('contextlib').nullcontext([]) as caught:\n            for f in range",
        ("tests/test_cli.py::test_tiny_classes_warn_and_nothing_else_leaks",),
    ),
    # --- data ---
    Mutant(
        "sort classes as text",
        DATA_LABELS,
        "return cls(tuple(natural_sorted(pd.unique(names).tolist())))",
        "return cls(tuple(sorted(pd.unique(names).tolist())))",
        ("tests/test_data.py", "tests/test_cli.py"),
    ),
    Mutant(
        "drop variant warning",
        DATA_LABELS,
        "            _warn_case_variants(names, argument)\n",
        "",
        ("tests/test_data.py", "tests/test_cli.py"),
    ),
    Mutant(
        "merge case variants silently",
        DATA_NAMES,
        "    raw = pd.Series(present, dtype=object).astype(str)\n    stripped = raw.str.strip()",
        "    raw = pd.Series(present, dtype=object).astype(str)\n    stripped = raw.str.strip().str.lower()",
        ("tests/test_data.py",),
    ),
    Mutant(
        "strip silently",
        DATA_NAMES,
        "    if changed.any():\n        examples",
        "    if False:\n        examples",
        ("tests/test_data.py",),
    ),
    Mutant(
        "no delimiter sniffing",
        DATA_READERS,
        "    sep = sniff_delimiter(path, default)\n",
        "    sep = default\n",
        ("tests/test_data.py", "tests/test_cli.py"),
    ),
    Mutant(
        "JSONL line numbers from 0",
        DATA_READERS,
        "enumerate(fh, start=1)",
        "enumerate(fh, start=0)",
        ("tests/test_data.py", "tests/test_cli.py"),
    ),
    # --- _validation ---
    Mutant(
        "relay drops the record",
        VALIDATION,
        "                sink.append(str(w.message))",
        "                pass",
        ("tests/test_data.py", "tests/test_cli.py"),
    ),
    # --- pipeline ---
    Mutant(
        "ignore --overwrite (always allowed)",
        PIPELINE,
        "if earlier and not overwrite:",
        "if earlier and not True:",
        ("tests/test_cli.py",),
    ),
    Mutant(
        "summary not bounded",
        PIPELINE,
        "SUMMARY_MAX_CLASSES = 30\n",
        "SUMMARY_MAX_CLASSES = 3000\n",
        ("tests/test_cli.py",),
    ),
    Mutant(
        "top pairs smallest first",
        PIPELINE,
        "np.argsort(-off.ravel()[flat]",
        "np.argsort(off.ravel()[flat]",
        ("tests/test_cli.py",),
    ),
    Mutant(
        "column-order check off",
        PIPELINE,
        "    if text > natural + 0.2:",
        "    if False:",
        ("tests/test_cli.py",),
    ),
    Mutant(
        "text pred_probs reported as given",
        PIPELINE,
        '        result.info["label"]["pred_probs_source"] = source',
        "        pass",
        ("tests/test_cli.py",),
    ),
    # --- cli ---
    Mutant(
        "CLI ignores --guarantee",
        CLI_APP,
        "guarantee=guarantee,",
        "",
        ("tests/test_cli_certify.py",),
    ),
    Mutant(
        "skip the --out check",
        CLI_APP,
        '            check_output_dir(out, overwrite=overwrite, argument="--out")\n            cols',
        "            cols",
        ("tests/test_cli.py",),
    ),
    Mutant(
        "ignore --overwrite (never allowed) in CLI",
        CLI_APP,
        'check_output_dir(out, overwrite=overwrite, argument="--out")\n            cols',
        'check_output_dir(out, overwrite=False, argument="--out")\n            cols',
        ("tests/test_cli.py",),
    ),
    Mutant(
        "third-party warnings shown",
        CLI_APP,
        "                if not issubclass(w.category, TruelabelWarning):\n                    others += 1\n                elif",
        "                if False:\n                    others += 1\n                elif",
        ("tests/test_cli.py",),
    ),
    Mutant(
        "CLI errors name library args",
        CLI_APP,
        "    elif isinstance(err, ValidationError) and err.argument in _FLAGS:",
        "    elif False:",
        ("tests/test_cli.py",),
    ),
    # --- report ---
    Mutant(
        "histogram ignores flagged (histogram_svg)",
        REP_HISTOGRAM,
        "flagged, _ = np.histogram(v[mask], bins=edges)",
        "flagged = np.zeros(len(edges) - 1, dtype=np.int64)",
        ("tests/test_report.py",),
    ),
    Mutant(
        "report histogram ignores flagged (no mask passed)",
        REP_SECTIONS,
        "        highlight_mask=flagged,\n        log_scale=True,",
        "        highlight_mask=None,\n        log_scale=True,",
        ("tests/test_report.py",),
    ),
    Mutant(
        "log_scale ignored (always stacked linear)",
        REP_HISTOGRAM,
        "    if log_scale:\n        ticks",
        "    if False:\n        ticks",
        ("tests/test_report.py",),
    ),
    Mutant(
        "value_range ignored",
        REP_HISTOGRAM,
        "        inside = (v >= lo) & (v <= hi)",
        "        inside = np.ones(v.shape, dtype=bool)",
        ("tests/test_report.py",),
    ),
    Mutant(
        "report pairs: threshold >=1 dropped",
        REP_SECTIONS,
        'table = table[table["n_overlapping"] >= 1].head(limit)',
        "table = table.head(limit)",
        ("tests/test_report.py",),
    ),
    Mutant(
        "escaping removed: example text",
        REP_SECTIONS,
        'line += f" {esc(short)}"',
        'line += f" {short}"',
        ("tests/test_report.py",),
    ),
    Mutant(
        "escaping removed: next-steps code",
        REP_SECTIONS,
        'return f"<code>{esc(text)}</code>"',
        'return f"<code>{text}</code>"',
        ("tests/test_report.py",),
    ),
    Mutant(
        "next-steps section missing",
        REP_HTML,
        "        next_steps_section(issues, summary, pairs, types),\n",
        "",
        ("tests/test_report.py",),
    ),
    Mutant(
        "empty duplicate-set column shown",
        REP_HTML,
        "has_dup = bool((dup_ids >= 0).any())",
        'has_dup = "near_duplicate_set" in issues.columns',
        ("tests/test_report.py",),
    ),
    Mutant(
        "items table not sorted",
        REP_HTML,
        'order = np.argsort(key.to_numpy(dtype=float, na_value=np.inf), kind="stable")[:max_rows]',
        "order = np.arange(len(issues))[:max_rows]",
        ("tests/test_report.py",),
    ),
    Mutant(
        "diagonal not masked",
        REP_SVG,
        "        np.fill_diagonal(m, np.nan)  # grey, and out of the colour scale",
        "        pass",
        ("tests/test_report.py",),
    ),
    Mutant(
        "CSP hash of another script",
        REP_ASSETS,
        'digest = base64.b64encode(hashlib.sha256(SORT_JS.encode("utf-8")).digest()).decode()',
        'digest = base64.b64encode(hashlib.sha256(b"x").digest()).decode()',
        ("tests/test_report.py",),
    ),
    Mutant(
        "escaping removed: class-name cells",
        REP_SECTIONS,
        'return f\'<td class="name">{esc(value).replace("_", "_<wbr>")}</td>\'',
        'return f\'<td class="name">{str(value).replace("_", "_<wbr>")}</td>\'',
        ("tests/test_report.py",),
    ),
    Mutant(
        "notes section rendered when empty",
        REP_HTML,
        "    if notes:\n        parts.append(",
        "    if True:\n        parts.append(",
        ("tests/test_report.py",),
    ),
    Mutant(
        "per-class chart with zero bars",
        REP_HTML,
        "    if not any(v for v in per_class.values()):",
        "    if False:",
        ("tests/test_report.py",),
    ),
    Mutant(
        "zoom panel never shown",
        REP_SECTIONS,
        "        if hi > lo and n_above >= 0.5 * finite.sum():",
        "        if False:",
        ("tests/test_report.py",),
    ),
    Mutant(
        "heatmap: all 100 classes (no sub-matrix)",
        REP_SECTIONS,
        "    if k <= CELL_TEXT_LIMIT:",
        "    if True:",
        ("tests/test_report.py",),
    ),
    Mutant(
        "near-dup next step always shown",
        REP_SECTIONS,
        'if counts.get("near_duplicate"):',
        'if "near_duplicate" in counts:',
        ("tests/test_report.py",),
    ),
    Mutant(
        "report raises/hides for an audit without labels",
        REP_HTML,
        '    has_labels = "is_label_issue" in issues.columns',
        "    has_labels = True",
        ("tests/test_report.py",),
        issue=True,
    ),
    # --- cli/_autolabel.py: the command is a decorated function, which mutmut 3 never mutates ---
    Mutant(
        "autolabel CLI: --seed ignored",
        CLI_AUTOLABEL,
        "random_state=seed,",
        "random_state=0,",
        ("tests/test_autolabel_mutant_gaps.py", "tests/test_autolabel_texts.py"),
    ),
    Mutant(
        "autolabel CLI: --confidence ignored",
        CLI_AUTOLABEL,
        "confidence=confidence,",
        "confidence=0.95,",
        ("tests/test_autolabel_mutant_gaps.py", "tests/test_autolabel_texts.py"),
    ),
    Mutant(
        "autolabel CLI: --guarantee ignored",
        CLI_AUTOLABEL,
        "guarantee=guarantee,",
        'guarantee="rate",',
        ("tests/test_autolabel_mutant_gaps.py", "tests/test_autolabel_texts.py"),
    ),
    Mutant(
        "autolabel CLI: --max-error ignored",
        CLI_AUTOLABEL,
        "max_error=max_error,",
        "max_error=None,",
        ("tests/test_autolabel_mutant_gaps.py", "tests/test_autolabel_texts.py"),
    ),
    Mutant(
        "autolabel CLI: --no-cache ignored",
        CLI_AUTOLABEL,
        "if cache:",
        "if True:",
        ("tests/test_autolabel_mutant_gaps.py", "tests/test_autolabel_texts.py"),
    ),
    Mutant(
        "autolabel CLI: the cache never used",
        CLI_AUTOLABEL,
        "if cache:",
        "if False:",
        ("tests/test_autolabel_mutant_gaps.py", "tests/test_autolabel_texts.py"),
    ),
    Mutant(
        "autolabel CLI: --label-col read but not passed on",
        CLI_AUTOLABEL,
        "None if label_col is None else table[label_col].to_numpy(dtype=object)",
        "None",
        ("tests/test_autolabel_mutant_gaps.py", "tests/test_autolabel_texts.py"),
    ),
    Mutant(
        "autolabel CLI: --label-col not checked",
        CLI_AUTOLABEL,
        'check_column("--label-col", label_col, table.columns)',
        "pass",
        ("tests/test_autolabel_mutant_gaps.py", "tests/test_autolabel_texts.py"),
    ),
    Mutant(
        "autolabel CLI: rows without text not refused",
        CLI_AUTOLABEL,
        "if texts.isna().any():",
        "if False:",
        ("tests/test_autolabel_mutant_gaps.py", "tests/test_autolabel_texts.py"),
    ),
    Mutant(
        "autolabel CLI: missing --classes file not refused",
        CLI_AUTOLABEL,
        "if not classes.is_file():",
        "if False:",
        ("tests/test_autolabel_mutant_gaps.py", "tests/test_autolabel_texts.py"),
    ),
    Mutant(
        "autolabel CLI: --id-col not written",
        CLI_AUTOLABEL,
        "ids=None if id_col is None else table[id_col]",
        "ids=None",
        ("tests/test_autolabel_mutant_gaps.py", "tests/test_autolabel_texts.py"),
    ),
    Mutant(
        "autolabel CLI: --overwrite ignored",
        CLI_AUTOLABEL,
        "overwrite=overwrite,",
        "overwrite=True,",
        ("tests/test_autolabel_mutant_gaps.py", "tests/test_autolabel_texts.py"),
    ),
    Mutant(
        "autolabel CLI: --quiet ignored",
        CLI_AUTOLABEL,
        "progress_enabled(not quiet)",
        "progress_enabled(True)",
        ("tests/test_autolabel_mutant_gaps.py", "tests/test_autolabel_texts.py"),
    ),
    Mutant(
        "autolabel CLI: Ctrl-C exits 1, not 130",
        CLI_AUTOLABEL,
        "raise typer.Exit(130)",
        "raise typer.Exit(1)",
        ("tests/test_autolabel_mutant_gaps.py", "tests/test_autolabel_texts.py"),
    ),
    Mutant(
        "autolabel CLI: cache counts not shown",
        CLI_AUTOLABEL,
        "if stats:",
        "if False:",
        ("tests/test_autolabel_mutant_gaps.py", "tests/test_autolabel_texts.py"),
    ),
    # the Ray backend: only what its tests catch without starting Ray (the cluster tests run
    # only inside tools/netns-run, so mutants of the task loop are not listed here)
    Mutant(
        "ray: listeners not pinned to loopback",
        "src/truelabel/distributed/_settings.py",
        '        "_node_ip_address": "127.0.0.1",\n',
        "",
        ("tests/distributed/test_settings.py",),
    ),
    Mutant(
        "ray: usage statistics left on",
        "src/truelabel/distributed/_settings.py",
        '    "RAY_USAGE_STATS_ENABLED": "0",\n    "RAY_ENABLE',
        '    "RAY_ENABLE',
        ("tests/distributed/test_settings.py",),
    ),
    Mutant(
        "ray: dashboard on",
        "src/truelabel/distributed/_settings.py",
        '"include_dashboard": False',
        '"include_dashboard": True',
        ("tests/distributed/test_settings.py",),
    ),
    Mutant(
        "backend: PerWorker rebuilt on every use",
        "src/truelabel/backend.py",
        "            if self.token in _BUILT:",
        "            if False:",
        ("tests/test_backend.py",),
    ),
    Mutant(
        "backend: get_backend('ray') ignores the address",
        "src/truelabel/backend.py",
        "        return ray_backend(address)",
        "        return ray_backend(None)",
        ("tests/distributed/test_settings.py",),
    ),
    Mutant(
        "CLI: --chunk-size not passed to the audit",
        "src/truelabel/cli/_audit.py",
        "                    cache_embeddings=cache,\n                    **run_on,",
        "                    cache_embeddings=cache,",
        ("tests/test_cli_backend.py",),
    ),
    Mutant(
        "Audit: chunk_size not handed to the detectors",
        DET_AUDIT,
        "            chunk_size=self.chunk_size,\n        )",
        "        )",
        ("tests/test_cli_backend.py",),
    ),
    # --- scale-out (issue 11): backend= and out-of-core inputs ---
    Mutant(
        "oof: the backend given is ignored",
        MODEL_OOF,
        "get_backend(backend).map(",
        "get_backend(None).map(",
        ("tests/test_oof_backend.py",),
    ),
    Mutant(
        "oof: warnings of folds run in another process are dropped",
        MODEL_OOF,
        "    if os.getpid() == shared.driver_pid:",
        "    if True:",
        ("tests/test_oof_backend.py",),
    ),
    Mutant(
        "audit: the oof folds ignore the audit's backend",
        DET_LABEL,
        "            backend=ctx.backend,\n        )",
        "        )",
        ("tests/test_sources.py",),
    ),
    Mutant(
        "audit: the backend setting is ignored",
        DET_AUDIT,
        "            backend=get_backend(self.backend),",
        "            backend=None,",
        ("tests/test_sources.py",),
    ),
    Mutant(
        "conformal: a chunk's U draws start at the first row",
        CONF_SCORES,
        "        bit.advance(start)  # type: ignore[attr-defined]",
        "        pass",
        ("tests/test_conformal_backend.py",),
    ),
    Mutant(
        "conformal: a chunk scores the first labels, not its own",
        CONF_SCORES,
        "job.labels[chunk.slice]",
        "job.labels[: scores.shape[0]]",
        ("tests/test_conformal_backend.py",),
    ),
    Mutant(
        "conformal: predict_set ignores the backend",
        CONF_SPLIT,
        "get_backend(self.backend).map(set_chunk",
        "get_backend(None).map(set_chunk",
        ("tests/test_conformal_backend.py",),
    ),
    Mutant(
        "conformal: cross-conformal calibration ignores the backend",
        CONF_CROSS,
        "backend=self.backend, chunk_size",
        "backend=None, chunk_size",
        ("tests/test_conformal_backend.py",),
    ),
    Mutant(
        "sources: Parquet copied whole instead of chunk by chunk",
        DATA_SOURCE,
        "        out[start:stop] = src.read(start, stop)",
        "        out[start:stop] = src.read(0, n)[start:stop]",
        ("tests/test_sources.py",),
    ),
    Mutant(
        "sources: a Parquet read decodes every row group before its rows",
        DATA_SOURCE,
        "groups = list(range(max(first, 0), max(last, first + 1)))",
        "groups = list(range(0, max(last, first + 1)))",
        ("tests/test_sources.py",),
    ),
    Mutant(
        "sources: an .npy source pickles its memory map (the data)",
        DATA_SOURCE,
        '        state["_array"] = None',
        "        pass",
        ("tests/test_sources.py",),
    ),
    Mutant(
        "annotations from Parquet: null rows named by their row in the batch",
        AGG_TABLE_PARQUET,
        "row = start + int(np.flatnonzero(missing)[0])",
        "row = int(np.flatnonzero(missing)[0])",
        ("tests/test_annotations_parquet.py",),
    ),
    Mutant(
        "encoder: chunks not cut at whole batches",
        ENC_ONNX,
        "    return -(-int(wanted) // batch_size) * batch_size",
        "    return int(wanted)",
        ("tests/test_onnx_backend.py",),
    ),
    Mutant(
        "encoder: onnxruntime threads ignore the backend's threads",
        ENC_ONNX,
        "threads = max(1, cores // self.backend.n_workers) if local else 1",
        "threads = cores",
        ("tests/test_onnx_backend.py",),
    ),
    Mutant(
        "encoder: each unpickled copy loads its own session",
        ENC_ONNX,
        "        found = _RUNTIMES.get(key)",
        "        found = None",
        ("tests/test_onnx_backend.py",),
    ),
]


def run_one(m: Mutant, python: str) -> tuple[str, str]:
    source = (REPO / m.path).read_text()
    if source.count(m.old) != 1:
        return "stale", f"snippet found {source.count(m.old)} times in {m.path}"
    with tempfile.TemporaryDirectory(prefix="tl-mutant-") as tmp:
        root = Path(tmp)
        shutil.copytree(REPO / "src", root / "src")
        shutil.copytree(REPO / "tests", root / "tests")
        shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
        (root / m.path).write_text(source.replace(m.old, m.new))
        env = {**os.environ, "PYTHONPATH": str(root / "src")}
        cmd = [python, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *m.tests]
        proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True)
        last = (proc.stdout.strip().splitlines() or [""])[-1]
        if proc.returncode == 1:
            return "killed", last
        if proc.returncode == 0:
            return "SURVIVED", last
        return "error", f"pytest exit {proc.returncode}: {last}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-k", default="", help="run only mutants whose name contains this")
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--markdown", type=Path, help="also write the table to this file")
    args = parser.parse_args()
    chosen = [m for m in MUTANTS if args.k in m.name]
    bad = 0
    rows = ["| mutant | file | named in the issue | verdict | tests run |", "|---|---|---|---|---|"]
    for m in chosen:
        verdict, detail = run_one(m, args.python)
        bad += verdict != "killed"
        print(f"{verdict:9s} {m.name}  [{detail}]", flush=True)
        where = m.path.removeprefix("src/truelabel/")
        tests = ", ".join(t.removeprefix("tests/") for t in m.tests)
        rows.append(f"| {m.name} | {where} | {'yes' if m.issue else ''} | {verdict} | {tests} |")
    total = f"{len(chosen) - bad} of {len(chosen)} semantic mutants killed"
    print(total)
    if args.markdown:
        args.markdown.write_text("\n".join([*rows, "", total, ""]))
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
