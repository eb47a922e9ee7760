"""Active learning (issue 10): truelabel's ActiveLearner vs small-text and scikit-activeml.

Simulated pool-based labeling, all strategies side by side in one run, on text_trec,
text_sms_spam and text_banking77 (../shared/datasets): pool = train split, evaluation = test
split, features = all-MiniLM-L6-v2 int8 embeddings (truelabel's ``OnnxTextEncoder``, rows in
CSV order, read from ``--emb-dir``; ``--embed`` writes them there), labels from the CSVs.

Protocol (identical for every strategy): per seed the same start set of 2 labels per class
(drawn at random from the pool), then batches of 10 up to the budget (200; Banking77 1,000);
the first batch tops the start set up to the next multiple of 10, so the curve passes through
50 and 200 exactly. After every batch the evaluation model, ``LogisticRegression(C=10,
max_iter=2000)`` on the labeled embeddings (the project's MiniLM probe, as in
bench_conformal), is fitted on the labels collected so far and scored on the test split. The
model-based peers query with that same fitted model (scikit-activeml's ``SklearnClassifier``
wrapper around it; small-text's ``SklearnClassifier`` around that), so their "time per query
step" = that fit + the query; truelabel's = ``teach`` of the batch's answers + ``suggest``
(it fits what it needs itself); random's and TypiClust's = the query alone.

Strategies: random; small-text 1.4.1 ``LeastConfidence``, ``BreakingTies``; scikit-activeml
1.0.1 ``Badge``, ``TypiClust``, ``Falcun`` (default settings); truelabel ``ActiveLearner``
(default settings; its ``labels_`` are the labels the evaluation model is fitted on).

Metrics: normalised area under the learning curve (trapezoid over [start, budget] divided by
the width: the mean accuracy over the range), accuracy at 50 / 200 (/ 1,000) labels, median
time per query step. Also (truelabel only): a noisy oracle (20% of answers flipped to a
uniformly drawn other class; the j-th answer on item i from its own seed, so every policy meets
the same flips on the same (item, answer)) at the same number of answers for the default (may
re-label), ``allow_relabel=False`` ("always label new") and "always label three times"
(the same picks, three answers each, majority vote; ties -> first answer); the stopping
estimate (labels used and accuracy lost when it first fires vs labeling to the end); and the
time per query step at a 100k-item pool (TREC's train embeddings tiled with Gaussian jitter,
sd 0.01, re-normalised; 200 labels; batch of 10), every strategy in one process, as ratios.

Setup: ``bash benchmarks/setup.sh --active`` (benchmarks/.venv-active). Runs::

    PY=benchmarks/.venv-active/bin/python
    $PY benchmarks/bench_active.py --emb-dir ../_cache            # everything but Banking77
    $PY benchmarks/bench_active.py --emb-dir ../_cache --datasets text_banking77 --merge
    $PY benchmarks/bench_active.py --emb-dir ../_cache --only truelabel --merge   # cheap re-run
    $PY benchmarks/bench_active.py --render-only

``--merge`` keeps every row of --out that this run does not redo (peers' curves are cached
there, so re-running truelabel's rows is cheap). Writes benchmarks/results/active.json / .md.

Embeddings: --out records a fingerprint of each dataset's embedding files ("embeddings") and a
``--merge`` run on other embeddings is refused. ``--embed`` (main venv: it needs onnxruntime)
writes what the current ``OnnxTextEncoder`` gives on this machine. The vectors depend on the
CPU as well as on the encoder: onnxruntime picks other int8 and float kernels per instruction
set, and the Intel Xeon of the current rows gives other fingerprints than the AMD EPYC of
earlier ones for the same code, so a machine with other fingerprints re-runs every strategy
(with one thread the 5-seed curves of all three datasets take about 15 minutes on a quiet
machine, plus about 2 hours for Badge and TypiClust on Banking77; the noisy-oracle part about
15 more, the 100k-pool timing about 15). The rows of
earlier encoders and machines are in git history; results/active_float_kernel_vectors.json /
.md keeps those of the float-kernel encoder of a5c0f1f (cosine 0.99 to the integer-kernel
vectors; 5-seed TREC AULCs moved by -0.02 to +0.03 per strategy between the two), whose
vectors that encoder gives back on the same CPU::

    git archive a5c0f1f src | tar -x -C /tmp/enc_a5c0f1f   # (mkdir it first)
    PYTHONPATH=/tmp/enc_a5c0f1f/src python - <<'EOF'
    import sys; sys.path.insert(0, "benchmarks"); from pathlib import Path; import bench_active as b
    b.embed(Path("../shared/datasets"), Path("../_cache_float"), b.DATASETS)
    EOF
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

# One BLAS / OpenMP thread unless told otherwise (before numpy loads): a run is a sequence of
# small fits, where extra threads only contend. Banking77's 1,000-label runs take 15-40 s
# each with one thread on a quiet machine for truelabel and the uncertainty peers; earlier
# sessions, with the default threads on a loaded one, saw 8-12 min. scikit-activeml's Badge
# (~11 s a step: gradient embeddings of 384 x 77 per item) and TypiClust (it clusters the pool
# into labels + batch groups, slower as labels grow) take ~16 and ~10 min a seed there.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, WORK, default_datasets_dir, machine, versions, write_json  # noqa: E402

DATASETS = ["text_trec", "text_sms_spam", "text_banking77"]
PEERS = ["random", "st_least_confidence", "st_breaking_ties", "skal_badge", "skal_typiclust"]
PEERS += ["skal_falcun"]
OURS = "truelabel"
STRATEGIES = [*PEERS, OURS]
LABEL = {
    "random": "random",
    "st_least_confidence": "small-text LeastConfidence",
    "st_breaking_ties": "small-text BreakingTies",
    "skal_badge": "scikit-activeml Badge",
    "skal_typiclust": "scikit-activeml TypiClust",
    "skal_falcun": "scikit-activeml Falcun",
    OURS: "truelabel ActiveLearner (default)",
}
USES_MODEL = {"st_least_confidence", "st_breaking_ties", "skal_badge", "skal_falcun"}
PACKAGES = ["numpy", "scipy", "scikit-learn", "pandas", "scikit-activeml", "small-text"]
PACKAGES += ["truelabel"]
LR_C = 10.0
START_PER_CLASS = 2
BATCH = 10
NOISE = 0.2
MISSING = -1


def budget_of(dataset: str) -> int:
    return 1000 if dataset == "text_banking77" else 200


# --- data -----------------------------------------------------------------------------------
def load(dataset: str, data_dir: Path, emb_dir: Path) -> dict:
    folder = data_dir / dataset
    names = [s for s in (folder / "labels.txt").read_text().splitlines() if s.strip()]
    code = {n: i for i, n in enumerate(names)}
    out: dict[str, Any] = {"name": dataset, "K": len(names)}
    for split in ("train", "test"):
        df = pd.read_csv(folder / f"{split}.csv", keep_default_na=False)
        y = df["label"].astype(str).map(code).to_numpy()
        path = emb_dir / f"{dataset}_{split}_minilm.npy"
        if not path.exists():
            sys.exit(f"{path} missing: run this script with --embed (needs truelabel[text])")
        X = np.load(path).astype(np.float32)
        if len(X) != len(y):
            sys.exit(f"{path}: {len(X)} rows for {len(y)} CSV rows")
        out["X" if split == "train" else "Xt"] = X
        out["y" if split == "train" else "yt"] = y.astype(np.int64)
    out["emb_sha"] = emb_fingerprint(emb_dir, dataset)
    return out


def emb_fingerprint(emb_dir: Path, dataset: str) -> str:
    """sha256 (first 16 hex digits) of the dataset's train then test embedding files: which
    embeddings a row was measured on. The encoder's numerics have changed under the same model
    name (integer kernels since 171801a: cosine 0.99 to the float-kernel vectors, and enough to
    move 5-seed TREC AULCs by -0.02 to +0.03), so rows from other embeddings are never merged."""
    import hashlib

    h = hashlib.sha256()
    for split in ("train", "test"):
        h.update((emb_dir / f"{dataset}_{split}_minilm.npy").read_bytes())
    return h.hexdigest()[:16]


def embed(data_dir: Path, emb_dir: Path, datasets: list[str]) -> None:
    from truelabel.encode import OnnxTextEncoder

    enc = OnnxTextEncoder()
    emb_dir.mkdir(parents=True, exist_ok=True)
    for d in datasets:
        for split in ("train", "test"):
            path = emb_dir / f"{d}_{split}_minilm.npy"
            if path.exists():
                continue
            df = pd.read_csv(data_dir / d / f"{split}.csv", keep_default_na=False)
            np.save(path, enc.encode(df["text"].astype(str).tolist()))
            print("embedded", d, split, file=sys.stderr)


def start_set(y: np.ndarray, K: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng([seed, 1])
    picks = [rng.choice(np.flatnonzero(y == k), START_PER_CLASS, replace=False) for k in range(K)]
    return rng.permutation(np.concatenate(picks))


class Oracle:
    """Answers ``y[item]``; with ``noise`` > 0 each answer is flipped to a uniformly drawn
    other class with probability ``noise``, independently per answer. The ``j``-th answer on
    item ``i`` is drawn from its own generator seeded ``(seed, 2, i, j)`` (common random
    numbers): every policy meets the same flips on the same (item, answer) and only its
    choices differ, which makes the policies' comparison paired."""

    def __init__(self, y: np.ndarray, K: int, noise: float, seed: int) -> None:
        self.y, self.K, self.noise, self.seed = y, K, noise, seed
        self.asked: dict[int, int] = {}

    def __call__(self, items: np.ndarray) -> np.ndarray:
        ans = self.y[items].copy()
        if self.noise <= 0:
            return ans
        for pos, i in enumerate(np.asarray(items).tolist()):
            j = self.asked.get(i, 0)
            self.asked[i] = j + 1
            rng = np.random.default_rng([self.seed, 2, i, j])
            if rng.random() < self.noise:
                ans[pos] = (ans[pos] + rng.integers(1, self.K)) % self.K
        return ans


# --- the shared model -----------------------------------------------------------------------
def make_clf(K: int, seed: int):
    from skactiveml.classifier import SklearnClassifier
    from sklearn.linear_model import LogisticRegression

    lr = LogisticRegression(C=LR_C, max_iter=2000)
    return SklearnClassifier(lr, classes=np.arange(K), missing_label=MISSING, random_state=seed)


def fit_eval(X: np.ndarray, y_partial: np.ndarray, Xt: np.ndarray, yt: np.ndarray, K: int,
             seed: int) -> tuple[Any, float, float]:  # fmt: skip
    """(fitted model, test accuracy, fit seconds); ``y_partial`` = label or MISSING per row."""
    clf = make_clf(K, seed)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(X, y_partial)
    fit_s = time.perf_counter() - t0
    acc = float((clf.predict(Xt) == yt).mean())
    return clf, acc, fit_s


# --- strategies -----------------------------------------------------------------------------
class Peer:
    """A peer strategy: one label per item, picks among the unlabeled rows."""

    relabels = False

    def __init__(self, name: str, X: np.ndarray, K: int, seed: int) -> None:
        self.name, self.X, self.K, self.seed = name, X, K, seed
        self.y_partial = np.full(len(X), MISSING, dtype=np.int64)
        self.rng = np.random.default_rng([seed, 3])
        self.rs = np.random.RandomState(seed)
        if name.startswith("st_"):
            from small_text.query_strategies import BreakingTies, LeastConfidence

            self.qs = {"st_least_confidence": LeastConfidence, "st_breaking_ties": BreakingTies}[
                name
            ]()
        elif name.startswith("skal_"):
            from skactiveml.pool import Badge, Falcun, TypiClust

            cls = {"skal_badge": Badge, "skal_typiclust": TypiClust, "skal_falcun": Falcun}[name]
            self.qs = cls(missing_label=MISSING, random_state=self.rs)

    def teach(self, items: np.ndarray, answers: np.ndarray) -> None:
        self.y_partial[items] = answers

    def labels(self) -> np.ndarray:
        return self.y_partial

    def suggest(self, n: int, clf: Any) -> tuple[np.ndarray, np.ndarray]:
        unl = np.flatnonzero(self.y_partial == MISSING)
        if self.name == "random":
            picks = self.rng.choice(unl, n, replace=False)
        elif self.name.startswith("st_"):
            from small_text.classifiers import SklearnClassifier
            from small_text.data import SklearnDataset

            lab = np.flatnonzero(self.y_partial != MISSING)
            ds = SklearnDataset(
                self.X,
                np.where(self.y_partial == MISSING, 0, self.y_partial),
                target_labels=np.arange(self.K),
            )
            st_clf = SklearnClassifier(clf, self.K)
            picks = self.qs.query(st_clf, ds, unl, lab, self.y_partial[lab], n=n)
        elif self.name == "skal_typiclust":
            picks = self.qs.query(self.X, self.y_partial, batch_size=n)
        else:
            picks = self.qs.query(self.X, self.y_partial, clf, fit_clf=False, batch_size=n)
        picks = np.asarray(picks, dtype=np.int64)
        return picks, np.zeros(len(picks), dtype=bool)


class Ours:
    """truelabel's ActiveLearner; ``repeat`` > 1 answers each pick that many times (majority)."""

    def __init__(self, X: np.ndarray, K: int, seed: int, allow_relabel: bool | None = None,
                 repeat: int = 1) -> None:  # fmt: skip
        from truelabel import ActiveLearner

        kw = {} if allow_relabel is None else {"allow_relabel": allow_relabel}
        self.al = ActiveLearner(features=X, random_state=seed, **kw)
        self.n, self.repeat = len(X), repeat
        self.answers: dict[int, list[int]] = {}
        self.relabels = 0

    def teach(self, items: np.ndarray, answers: np.ndarray) -> None:
        self.al.teach(items.tolist(), answers.tolist())
        for i, a in zip(items.tolist(), answers.tolist(), strict=True):
            self.answers.setdefault(i, []).append(a)

    def labels(self) -> np.ndarray:
        out = np.full(self.n, MISSING, dtype=np.int64)
        if self.repeat > 1:  # majority of the answers, ties -> the first answer
            for i, a in self.answers.items():
                vals, counts = np.unique(a, return_counts=True)
                best = vals[counts == counts.max()]
                out[i] = a[0] if len(best) > 1 else best[0]
            return out
        lab = self.al.labels_
        s = lab if isinstance(lab, pd.Series) else pd.Series(lab)
        s = s.dropna()
        out[s.index.to_numpy(dtype=np.int64)] = s.to_numpy(dtype=np.int64)
        return out

    def suggest(self, n: int, clf: Any) -> tuple[np.ndarray, np.ndarray]:
        df = self.al.suggest(n)
        picks = df["item_id"].to_numpy(dtype=np.int64)
        rel = (df["action"] == "relabel").to_numpy()
        self.relabels += int(rel.sum())
        return picks, rel

    def stop_state(self) -> dict | None:
        for name in ("stop_", "stopping_", "stop_estimate_", "stopping_estimate_"):
            v = getattr(self.al, name, None)
            if v is not None:
                return _jsonable(v)
        return None


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if hasattr(v, "_asdict"):
        return _jsonable(v._asdict())
    if hasattr(v, "__dataclass_fields__"):
        return {k: _jsonable(getattr(v, k)) for k in v.__dataclass_fields__}
    if isinstance(v, (np.generic,)):
        return v.item()
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return v if isinstance(v, (int, float, str, bool)) or v is None else repr(v)


def make_strategy(name: str, X: np.ndarray, K: int, seed: int, mode: str = "default"):
    if name != OURS:
        return Peer(name, X, K, seed)
    if mode == "label_new":
        return Ours(X, K, seed, allow_relabel=False)
    if mode == "three_times":
        return Ours(X, K, seed, allow_relabel=False, repeat=3)
    return Ours(X, K, seed)


# --- one simulated run ----------------------------------------------------------------------
def simulate(d: dict, name: str, seed: int, budget: int, noise: float = 0.0,
             mode: str = "default", track_stop: bool = False) -> dict:  # fmt: skip
    """Learning curve of one strategy and seed: answers given -> test accuracy."""
    X, y, K = d["X"], d["y"], d["K"]
    oracle = Oracle(y, K, noise, seed)
    strat = make_strategy(name, X, K, seed, mode)
    repeat = getattr(strat, "repeat", 1)
    start = start_set(y, K, seed)
    items = np.repeat(start, repeat)
    t0 = time.perf_counter()
    strat.teach(items, oracle(items))
    teach_s = time.perf_counter() - t0
    answers = len(items)
    n_ans, acc, step_s, stops = [], [], [], []
    while True:
        t0 = time.perf_counter()
        y_now = strat.labels()  # truelabel: labels_ refits its model here (timed as its step)
        if track_stop:
            stops.append(strat.stop_state())
        own_s = time.perf_counter() - t0
        clf, a, fit_s = fit_eval(X, y_now, d["Xt"], d["yt"], K, seed)
        n_ans.append(answers)
        acc.append(a)
        if repeat == 1:  # top up to a multiple of BATCH first, so the curve passes 50, 200
            want = min(BATCH - answers % BATCH, budget - answers)
        else:  # whole items of `repeat` answers each, at most BATCH answers per step
            want = min(BATCH, budget - answers) // repeat
        if want <= 0:
            break
        t0 = time.perf_counter()
        picks, _ = strat.suggest(want, clf)
        q_s = time.perf_counter() - t0
        if len(picks) != want:
            raise RuntimeError(f"{name} returned {len(picks)} items for {want}")
        items = np.repeat(picks, repeat)
        ans = oracle(items)
        t0 = time.perf_counter()
        strat.teach(items, ans)
        t_s = time.perf_counter() - t0
        # per query step: what the strategy needs between receiving answers and proposing
        step_s.append(
            q_s + (fit_s if name in USES_MODEL else 0.0) + (t_s + own_s if name == OURS else 0)
        )
        answers += len(items)
    out = {"n": n_ans, "acc": acc, "step_s": step_s, "start_teach_s": teach_s}
    if name == OURS:
        out["relabels"] = strat.relabels
        out["items"] = int((strat.labels() != MISSING).sum())
    if track_stop:
        out["stop"] = stops
    return out


def aulc(n: list[int], acc: list[float]) -> float:
    n_a, a_a = np.asarray(n, float), np.asarray(acc, float)
    return float(np.trapezoid(a_a, n_a) / (n_a[-1] - n_a[0]))


def acc_at(n: list[int], acc: list[float], k: int) -> float | None:
    return acc[n.index(k)] if k in n else None


# --- the parts ------------------------------------------------------------------------------
def run_curves(d: dict, strategies: list[str], seeds: list[int], budget: int) -> dict:
    out: dict[str, dict] = {}
    for s in strategies:
        for seed in seeds:
            t0 = time.perf_counter()
            r = simulate(d, s, seed, budget, track_stop=(s == OURS))
            r["wall_s"] = time.perf_counter() - t0
            out.setdefault(s, {})[str(seed)] = r
            print(f"{d['name']} {s} seed {seed}: aulc {aulc(r['n'], r['acc']):.4f} final "
                  f"{r['acc'][-1]:.4f} ({r['wall_s']:.0f} s)", file=sys.stderr, flush=True)  # fmt: skip
    return out


NOISY_MODES = ["default", "label_new", "three_times"]
VERDICT = {True: "met", False: "**missed**", None: "not measured"}


def run_noisy(d: dict, seeds: list[int], budget: int, skip: set | None = None) -> dict:
    out: dict[str, dict] = {}
    for mode in NOISY_MODES:
        for seed in seeds:
            if skip and (mode, str(seed)) in skip:
                continue
            r = simulate(d, OURS, seed, budget, noise=NOISE, mode=mode)
            row = {"answers": r["n"][-1], "acc": r["acc"][-1], "items": r["items"],
                   "relabels": r["relabels"], "n": r["n"], "acc_curve": r["acc"]}  # fmt: skip
            out.setdefault(mode, {})[str(seed)] = row
            print(f"{d['name']} noisy {mode} seed {seed}: {row['answers']} answers, "
                  f"{row['items']} items, acc {row['acc']:.4f}", file=sys.stderr, flush=True)  # fmt: skip
    return out


def tiled_pool(d: dict, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` rows: the pool's embeddings tiled, plus N(0, 0.01^2) jitter, re-normalised."""
    rng = np.random.default_rng([seed, 4])
    idx = np.resize(np.arange(len(d["X"])), n)
    X = d["X"][idx] + rng.normal(0, 0.01, (n, d["X"].shape[1])).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    return X.astype(np.float32), d["y"][idx]


def scale_child(d: dict, name: str, n_items: int, n_labels: int, reps: int) -> dict:
    """Time per query step (batch of 10) of one strategy, ``n_labels`` labels, ``n_items`` pool."""
    X, y = tiled_pool(d, n_items)
    K = d["K"]
    rng = np.random.default_rng([0, 5])
    lab = np.concatenate([start_set(y, K, 0), rng.choice(len(X), n_labels, replace=False)])
    lab = pd.unique(lab)[:n_labels]
    strat = make_strategy(name, X, K, 0)
    t0 = time.perf_counter()
    strat.teach(lab, y[lab])
    setup_s = time.perf_counter() - t0
    wall, cpu = [], []
    for _ in range(reps):
        t0, c0 = time.perf_counter(), time.process_time()
        clf = None
        if name in USES_MODEL:
            clf, _, _ = fit_eval(X, strat.labels(), d["Xt"][:1], d["yt"][:1], K, 0)
        picks, _ = strat.suggest(BATCH, clf)
        strat.teach(picks, y[picks])
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    # the first step may pay one-time work (truelabel's typicality of the pool): shown apart
    later = slice(1, None) if reps > 1 else slice(None)
    return {"step_s": float(np.median(wall[later])), "step_cpu_s": float(np.median(cpu[later])),
            "first_step_s": wall[0], "first_step_cpu_s": cpu[0], "steps_s": wall,
            "steps_cpu_s": cpu, "setup_s": setup_s, "n_labels": len(lab)}  # fmt: skip


def run_scale(a: argparse.Namespace, strategies: list[str]) -> dict:
    """Every strategy in its own process (one after another), with a timeout each."""
    import subprocess

    out: dict[str, Any] = {"n_items": a.scale_items, "timeout_s": a.scale_timeout, "setup": (
        f"{a.scale_dataset} train embeddings tiled to {a.scale_items:,} rows (+ N(0, 0.01^2) "
        f"jitter, re-normalised), 200 labels, batch {BATCH}, {a.scale_reps} steps (s / step = "
        "median of the steps after the first), "
        "each strategy in a fresh process run one after another")}  # fmt: skip
    for s in strategies:
        cmd = [sys.executable, __file__, "--scale-child", s, "--scale-items", str(a.scale_items),
               "--scale-reps", str(a.scale_reps), "--scale-dataset", a.scale_dataset,
               "--data-dir", str(a.data_dir or default_datasets_dir()), "--emb-dir", a.emb_dir]  # fmt: skip
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=a.scale_timeout,
                               check=True)  # fmt: skip
            out[s] = json.loads(r.stdout.strip().splitlines()[-1])
        except subprocess.TimeoutExpired:
            out[s] = {"error": f"did not finish in {a.scale_timeout:.0f} s",
                      "timeout_s": a.scale_timeout}  # fmt: skip
        except subprocess.CalledProcessError as e:
            out[s] = {"error": (e.stderr.strip().splitlines() or ["failed"])[-1][:200]}
        print(f"scale {s}: {out[s]}", file=sys.stderr, flush=True)
    return out


# --- summary, targets and report ------------------------------------------------------------
def summarize(res: dict) -> dict:
    summ: dict[str, dict] = {}
    for ds, strats in res.get("curves", {}).items():
        checkpoints = [50, 200] + ([1000] if budget_of(ds) == 1000 else [])
        for s, seeds in strats.items():
            runs = list(seeds.values())
            ends = sorted({r["n"][-1] for r in runs})
            row: dict[str, Any] = {"seeds": len(runs), "labels": f"{runs[0]['n'][0]}–"
                                   + "/".join(str(e) for e in ends)}  # fmt: skip
            vals = [aulc(r["n"], r["acc"]) for r in runs]
            row["aulc"], row["aulc_sd"] = float(np.mean(vals)), float(np.std(vals))
            for k in checkpoints:
                v = [acc_at(r["n"], r["acc"], k) for r in runs]
                row[f"acc@{k}"] = None if None in v else float(np.mean(v))
            row["step_s"] = float(np.median(np.concatenate([r["step_s"] for r in runs])))
            summ.setdefault(ds, {})[s] = row
    return summ


def paired_se(ours: list, peer: list) -> float | None:
    """Standard error of the mean per-seed difference ``ours - peer`` (None below 2 seeds):
    how far a mean gap is from seed noise. A gap within one SE either way is a tie."""
    if len(ours) != len(peer) or len(ours) < 2 or None in ours or None in peer:
        return None
    d = np.asarray(ours, dtype=float) - np.asarray(peer, dtype=float)
    return float(np.std(d, ddof=1) / np.sqrt(d.size))


def parse_seeds(text: str) -> list[int]:
    """``"0,1,2"`` or ``"0-59"`` (inclusive) or a mix: ``"0-4,10"``."""
    out: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.strip().partition("-")
        out += list(range(int(lo), int(hi) + 1)) if hi else [int(lo)]
    return out


def targets(res: dict) -> list[dict]:
    """One entry per target and dataset: the figures and met / missed / not measured."""
    out = []
    for ds, strats in res.get("curves", {}).items():
        ours = strats.get(OURS, {})
        for metric in ["aulc", "acc@50", "acc@200", "acc@1000"]:
            # truelabel vs each peer on the seeds both have (paired); the best peer is the one
            # truelabel trails most (or leads least)
            cmp = {}
            for s, runs in strats.items():
                if s == OURS:
                    continue
                common = sorted(set(runs) & set(ours)) or sorted(runs)
                # AULC over the labels both curves reach (budgets may differ between runs)
                upto = min(runs[k]["n"][-1] for k in common)
                upto = min([upto, *(ours[k]["n"][-1] for k in common if k in ours)])
                pv = [_metric(runs[k], metric, upto) for k in common]
                ov = [_metric(ours[k], metric, upto) for k in common if k in ours]
                if None in pv or not pv:
                    continue
                cmp[s] = (float(np.mean(pv)), float(np.mean(ov)) if ov and None not in ov
                          else None, len(common), upto, paired_se(ov, pv))  # fmt: skip
            if not cmp:
                continue
            if any(v[1] is None for v in cmp.values()):
                best = max(cmp, key=lambda k: cmp[k][0])
                p_, _, n_, _, _ = cmp[best]
                line = f"{ds}, {metric}: best peer {LABEL[best]} {p_:.4f} ({n_} seeds)"
                met = None
            else:
                best = min(cmp, key=lambda k: cmp[k][1] - cmp[k][0])
                p_, o_, n_, up_, se_ = cmp[best]
                met = o_ >= p_
                rng_ = f", labels up to {up_}" if metric == "aulc" else ""
                se_txt = "" if se_ is None else f" ± {se_:.4f} SE"
                line = (f"{ds}, {metric}: truelabel {o_:.4f} vs best peer {LABEL[best]} "
                        f"{p_:.4f} ({o_ - p_:+.4f}{se_txt}; mean over the {n_} seeds both "
                        f"ran{rng_})")  # fmt: skip
            out.append({"target": "curve", "dataset": ds, "metric": metric, "met": met,
                        "line": line, "verdict": VERDICT[met]})  # fmt: skip
    # the premise: no single peer strategy is at the top on every dataset and metric
    summ, tops = summarize(res), {}
    for ds, rows in summ.items():
        for metric in ["aulc", "acc@50", "acc@200", "acc@1000"]:
            pv = {s: r[metric] for s, r in rows.items() if s != OURS and r.get(metric) is not None}
            if pv:
                tops[f"{ds} {metric}"] = max(pv, key=pv.__getitem__)
    if tops:
        always = [s for s in PEERS if all(t == s for t in tops.values())]
        out.append({"target": "premise", "dataset": "all", "met": not always, "verdict": (
            "true" if not always else f"false ({LABEL[always[0]]} is)"), "line": (
            "no peer strategy at the top everywhere (mean over its seeds): "
            + ", ".join(f"{k} {LABEL[v]}" for k, v in tops.items()))})  # fmt: skip
    for ds, modes in res.get("noisy", {}).items():
        acc = {m: float(np.mean([r["acc"] for r in v.values()])) for m, v in modes.items()}
        if set(NOISY_MODES) <= set(acc):
            met = acc["default"] > max(acc["label_new"], acc["three_times"])
            ans = {m: int(np.mean([r["answers"] for r in modes[m].values()])) for m in modes}
            out.append({"target": "noisy", "dataset": ds, "met": met, "verdict": VERDICT[met],
                        "line": (
                f"{ds}, noisy oracle (20% flipped), final accuracy: default "
                f"{acc['default']:.4f} vs always label new {acc['label_new']:.4f} vs always "
                f"three times {acc['three_times']:.4f} (answers {ans['default']} / "
                f"{ans['label_new']} / {ans['three_times']})")})  # fmt: skip
    for ds, st in stopping(res).items():
        fired = [r for r in st["rows"] if "fire_n" in r]
        if not st["measured"]:
            line, verdict = f"{ds}, stopping rule: no stop estimate on the learner", VERDICT[None]
        elif not fired:
            line = f"{ds}, stopping rule: never fired in {len(st['rows'])} seeds"
            verdict = "measured (no threshold in the issue)"
        else:
            line = (
                f"{ds}, stopping rule: fired in {len(fired)} of {len(st['rows'])} seeds; labels "
                f"used {np.mean([r['fire_n'] for r in fired]):.0f} of {st['rows'][0]['end_n']}, "
                f"accuracy lost {np.mean([r['lost'] for r in fired]):.4f} (mean over those seeds)"
            )
            verdict = "measured (no threshold in the issue)"
        out.append({"target": "stopping", "dataset": ds, "met": None, "line": line,
                    "verdict": verdict})  # fmt: skip
    sc = res.get("scale")
    if sc and "step_s" in sc.get(OURS, {}):
        ref = sc[OURS]

        def ratio(s: str) -> str:
            v = sc[s]
            if "error" in v:
                cap = v.get("timeout_s", sc["timeout_s"])
                return f"{LABEL[s]} > {cap / ref['step_s']:.0f}x ({v['error']})"
            return (f"{LABEL[s]} {v['step_s'] / ref['step_s']:.2f}x wall, "
                    f"{v['step_cpu_s'] / ref['step_cpu_s']:.2f}x CPU")  # fmt: skip

        ratios = "; ".join(ratio(s) for s in PEERS if s in sc)
        out.append({"target": "scale", "dataset": "tiled", "met": None, "verdict":
                     "measured (no threshold in the issue)", "line": (
                         f"time per query step at {sc['n_items']:,} items: truelabel "
                         f"{ref['step_s']:.2f} s wall, {ref['step_cpu_s']:.2f} s CPU; "
                         f"peer / truelabel: {ratios}")})  # fmt: skip
    return out


def _metric(run: dict, metric: str, upto: int | None = None) -> float | None:
    if metric == "aulc":
        keep = [i for i, n in enumerate(run["n"]) if upto is None or n <= upto]
        return aulc([run["n"][i] for i in keep], [run["acc"][i] for i in keep])
    return acc_at(run["n"], run["acc"], int(metric.split("@")[1]))


def stopping(res: dict) -> dict:
    """Per dataset: when truelabel's stop estimate first fires, labels used and accuracy lost."""
    out: dict[str, Any] = {}
    for ds, strats in res.get("curves", {}).items():
        runs = strats.get(OURS, {})
        rows = []
        for seed, r in runs.items():
            stops = r.get("stop") or []
            fired = [i for i, st in enumerate(stops) if _fired(st)]
            row = {"seed": seed, "end_n": r["n"][-1], "end_acc": r["acc"][-1]}
            if fired:
                i = fired[0]
                row.update(fire_n=r["n"][i], fire_acc=r["acc"][i],
                           lost=r["acc"][-1] - r["acc"][i], state=stops[i])  # fmt: skip
            rows.append(row)
        if rows:
            out[ds] = {"rows": rows, "measured": any(r["stop"] for r in runs.values()
                                                     if r.get("stop"))}  # fmt: skip
    return out


def _fired(st: Any) -> bool:
    if isinstance(st, dict):
        for k in ("should_stop", "stop", "fired"):
            if k in st:
                return bool(st[k])
    return False


def _f(x: float | None, nd: int = 4) -> str:
    return "–" if x is None else f"{x:.{nd}f}"


def render(res: dict) -> str:
    from _common import fmt_ratio, md_table

    title = res.get("title", "Active learning: truelabel ActiveLearner vs small-text and "
                    "scikit-activeml")  # fmt: skip
    L = [f"# {title}", ""]
    if res.get("preface"):
        L += [res["preface"], ""]
    L.append("Commands (in order; `--merge` keeps the rows a run does not redo):")
    L += ["", "```", *res.get("commands", []), "```", ""]
    L += [
        "Re-measure only truelabel's rows against the cached peer curves (seconds per seed on "
        "TREC / SMS; `--datasets text_banking77` for Banking77), on the embeddings the rows "
        "were measured on (`--embed` writes what the current encoder gives on this CPU: the "
        "vectors differ between CPUs, so on another machine every strategy is re-run: the "
        "5-seed curves of all three datasets take about 15 min with one thread, plus about 2 "
        "hours for Badge and TypiClust on Banking77; a `--merge` "
        "onto other embeddings is refused):",
        "",
        "```",
        "PYTHONPATH=src .venv/bin/python benchmarks/bench_active.py --embed --emb-dir EMB "
        "--datasets text_trec,text_sms_spam,text_banking77   # the main venv: onnxruntime",
        "benchmarks/.venv-active/bin/python benchmarks/bench_active.py --emb-dir EMB "
        "--parts curves,noisy --only truelabel --merge",
        "```",
        "",
    ]
    if res.get("embeddings"):
        L.append(
            "Embeddings (sha256 of each dataset's train + test files, first 16 hex digits): "
            + ", ".join(f"{k} {x}" for k, x in res["embeddings"].items())
            + (f" ({res['embeddings_note']})" if res.get("embeddings_note") else "")
            + "."
        )
    v = res.get("versions", {})
    L.append("Versions: " + ", ".join(f"{k} {x}" for k, x in v.items()) + ".")
    if res.get("truelabel_code"):
        L.append(
            "truelabel code measured (last commit touching src/truelabel, per part): "
            + ", ".join(f"{k} {x}" for k, x in res["truelabel_code"].items())
            + "."
        )
    m = res.get("machine", {})
    L.append(
        f"Machine: {m.get('nproc')} cores shared with other jobs (load average "
        f"{m.get('loadavg')} at the start), so seconds are inflated and noisy: compare "
        "strategies within a run, as ratios."
    )
    L.append("")
    L.append(
        f"Protocol: pool = train split, evaluation = test split, MiniLM int8 embeddings; "
        f"start {START_PER_CLASS} labels per class (same per seed for all), batches of "
        f"{BATCH} (the first one tops up to a multiple of 10), budget 200 (Banking77 1,000); "
        f"after each batch LogisticRegression(C={LR_C:g}, max_iter=2000) on the labels so far, "
        "test accuracy. AULC = trapezoid area over [start, budget] / width (mean accuracy). "
        "Time per query step: the model-based peers' include the shared model's fit, "
        "truelabel's its teach + suggest; wall seconds of runs made at different moments "
        "under different loads, so no ratios are drawn from them (the 100k-pool table below "
        "is one run, with CPU seconds too). Details in the docstring of bench_active.py."
    )
    L += ["", "## Targets", ""]
    if res.get("embeddings_note"):
        L += [f"Embeddings: {res['embeddings_note']}.", ""]
    L += [f"- {x['line']}: {x['verdict']}" for x in targets(res)]
    st = stopping(res)
    sc = res.get("scale")
    summ = summarize(res)
    for ds, rows in summ.items():
        cps = [k for k in (50, 200, 1000) if any(r.get(f"acc@{k}") is not None
                                                  for r in rows.values())]  # fmt: skip
        body = []
        for s in STRATEGIES:
            if s not in rows:
                continue
            r = rows[s]
            body.append([
                LABEL[s], r["seeds"], r["labels"], f"{r['aulc']:.4f} ± {r['aulc_sd']:.4f}",
                *(_f(r.get(f"acc@{k}")) for k in cps), f"{1000 * r['step_s']:.0f}",
            ])  # fmt: skip
        head = ["strategy", "seeds", "labels", "AULC (mean ± sd)", *(f"acc@{k}" for k in cps)]
        head += ["wall ms / step (median)"]
        L += ["", f"## {ds}", "", md_table(head, body)]
    if res.get("noisy"):
        L += ["", "## Noisy oracle (20% of answers flipped, seeded)", ""]
        body = []
        for ds, modes in res["noisy"].items():
            for mode in NOISY_MODES:
                if mode not in modes:
                    continue
                rr = list(modes[mode].values())
                body.append([ds, mode, len(rr), f"{np.mean([r['answers'] for r in rr]):.0f}",
                             f"{np.mean([r['items'] for r in rr]):.0f}",
                             f"{np.mean([r['relabels'] for r in rr]):.1f}",
                             f"{np.mean([r['acc'] for r in rr]):.4f}"])  # fmt: skip
        L.append(md_table(["dataset", "policy", "seeds", "answers", "items", "re-labels",
                           "final accuracy"], body))  # fmt: skip
        L += ["", "default = `ActiveLearner()` (may re-label); label_new = "
              "`ActiveLearner(allow_relabel=False)`; three_times = the same picks answered "
              "three times each, majority vote (start set included)."]  # fmt: skip
    if st:
        L += ["", "## Stopping rule", ""]
        body = []
        for ds, s in st.items():
            for r in s["rows"]:
                gain = (r.get("state") or {}).get("expected_gain")
                kappa = (r.get("state") or {}).get("agreement")
                body.append([ds, r["seed"], r.get("fire_n", "never"), _f(r.get("fire_acc")),
                             _f(gain), _f(kappa, 3), r["end_n"], _f(r["end_acc"]),
                             _f(r.get("lost"))])  # fmt: skip
        L.append(md_table(["dataset", "seed", "labels at fire", "acc at fire",
                           "estimate shown: gain of the next 100 answers", "kappa at fire",
                           "labels at end", "acc at end", "acc lost"], body))  # fmt: skip
        L += ["", "The rule (`StopEstimate`): kappa between successive models' predictions on "
              "1,000 held-back unlabeled items >= 0.98 for 3 refits in a row, and the gain of "
              "the last 100 answers as the current model measures it on those items (mean of "
              "p(its prediction) - p(the prediction of the model 100 answers back), calibrated "
              "p), taken as the gain of the next 100, < 0.01. acc lost = accuracy at the end "
              "of the budget - accuracy when it first fired (test split; negative = it was "
              "higher when the rule fired)."]  # fmt: skip
    if sc:
        L += ["", "## Time per query step at a large pool", "", sc["setup"] + ".", ""]
        body = []
        for s in STRATEGIES:
            v = sc.get(s)
            if v is None:
                continue
            if "error" in v:
                body.append([LABEL[s], v["error"], "–", "–", "–", "–", "–"])
                continue
            r = sc.get(OURS, {})
            first = (f"{v['first_step_s']:.2f} / {v['first_step_cpu_s']:.2f}"
                     if "first_step_s" in v else "–")  # fmt: skip
            body.append([LABEL[s], first, f"{v['step_s']:.3f}", f"{v['step_cpu_s']:.3f}",
                         fmt_ratio(v["step_s"] / r["step_s"]) if "step_s" in r else "–",
                         fmt_ratio(v["step_cpu_s"] / r["step_cpu_s"]) if "step_s" in r else "–",
                         f"{v['setup_s']:.2f}"])  # fmt: skip
        L.append(md_table(["strategy", "first step, wall / CPU s", "wall s / step",
                           "CPU s / step", "wall vs truelabel",
                           "CPU vs truelabel", "teach of the 200 labels, s"], body))  # fmt: skip
    if res.get("notes"):
        L += ["", "## Notes", "", *(f"- {n}" for n in res["notes"])]
    return "\n".join(L) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datasets", default="text_trec,text_sms_spam")
    ap.add_argument("--seeds", default="0,1,2,3,4", help="e.g. 0,1,2 or 0-59")
    ap.add_argument("--only", default=",".join(STRATEGIES), help="strategies to (re-)run")
    ap.add_argument("--parts", default="curves,noisy,scale", help="curves, noisy, scale")
    ap.add_argument("--budget", type=int, default=None, help="override (default 200 / 1,000)")
    ap.add_argument("--scale-items", type=int, default=100_000)
    ap.add_argument("--scale-reps", type=int, default=3)
    ap.add_argument("--scale-timeout", type=float, default=900.0)
    ap.add_argument("--scale-child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--scale-dataset", default="text_trec", help="whose embeddings are tiled")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--emb-dir", default=str(WORK / "active_emb"))
    ap.add_argument("--embed", action="store_true", help="write the embeddings to --emb-dir")
    ap.add_argument("--merge", action="store_true", help="keep --out's rows not redone")
    ap.add_argument("--skip-done", action="store_true", help="skip runs already in --out")
    ap.add_argument("--render-only", action="store_true")
    ap.add_argument("--note", action="append", help="with --render-only: add a note line")
    ap.add_argument("--out", default=str(RESULTS / "active.json"))
    a = ap.parse_args()
    out = Path(a.out)
    data_dir = Path(a.data_dir) if a.data_dir else default_datasets_dir()
    datasets = a.datasets.split(",")
    if a.scale_child:
        d = load(a.scale_dataset, data_dir, Path(a.emb_dir))
        r = scale_child(d, a.scale_child, a.scale_items, 200, a.scale_reps)
        print(json.dumps(r))
        return
    if a.embed:
        embed(data_dir, Path(a.emb_dir), datasets)
        return
    if a.render_only:
        import fcntl

        WORK.mkdir(parents=True, exist_ok=True)
        with open(WORK / f"{out.stem}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            res = json.loads(out.read_text())
            if a.note:
                res["notes"] = [*res.get("notes", []), *a.note]
            res["targets"] = targets(res)
            write_json(out.with_suffix(".json.tmp"), res)
            out.with_suffix(".json.tmp").replace(out)
            out.with_suffix(".md").write_text(render(res))
        return
    seeds = parse_seeds(a.seeds)
    only = a.only.split(",")
    parts = a.parts.split(",")
    cmd = "PY=benchmarks/.venv-active/bin/python; $PY benchmarks/bench_active.py " + " ".join(
        sys.argv[1:]
    )
    data = {ds: load(ds, data_dir, Path(a.emb_dir)) for ds in datasets}
    saver = Saver(out, a.merge, cmd, {ds: d["emb_sha"] for ds, d in data.items()})
    saver.check_out()
    if "curves" in parts:  # seed-major, saved after every run: a stopped run keeps whole seeds
        for seed in seeds:
            for ds in datasets:
                for s in only:
                    budget = a.budget or budget_of(ds)
                    if a.skip_done and str(seed) in saver.done("curves", ds, s):
                        continue
                    saver.save("curves", ds, run_curves(data[ds], [s], [seed], budget))
    if "noisy" in parts and OURS in only:
        for seed in seeds:
            for ds in datasets:
                skip = set()
                if a.skip_done:
                    skip = {(m, str(seed)) for m in NOISY_MODES
                            if str(seed) in saver.done("noisy", ds, m)}  # fmt: skip
                rows = run_noisy(data[ds], [seed], a.budget or budget_of(ds), skip)
                if rows:
                    saver.save("noisy", ds, rows)
    if "scale" in parts:
        saver.save("scale", "", run_scale(a, only))


class Saver:
    """Read-merge-write of --out after each finished piece (re-read every time, so runs in
    parallel with --merge keep each other's rows)."""

    def __init__(self, out: Path, merge: bool, cmd: str,
                 fingerprints: dict[str, str] | None = None) -> None:  # fmt: skip
        self.out, self.merge, self.cmd, self.first = out, merge, cmd, True
        self.fingerprints = dict(fingerprints or {})

    def check(self, res: dict) -> None:
        """Refuse to merge into rows measured on other embeddings (``res["embeddings"]``)."""
        for ds, have in res.get("embeddings", {}).items():
            new = self.fingerprints.get(ds)
            if new is not None and new != have:
                sys.exit(
                    f"{self.out}: its {ds} rows were measured on embeddings {have}, this run's "
                    f"--emb-dir holds {new}; merging would compare strategies on different "
                    "features. Point --emb-dir at the embeddings of those rows, or re-run every "
                    "strategy into another --out."
                )

    def check_out(self) -> None:
        """:meth:`check` against --out before any work (only when merging into it)."""
        if self.merge and self.out.exists():
            self.check(json.loads(self.out.read_text()))

    def done(self, part: str, ds: str, strategy: str) -> set[str]:
        """Seeds of ``strategy`` already in --out (for --skip-done)."""
        if not (self.merge and self.out.exists()):
            return set()
        return set(json.loads(self.out.read_text()).get(part, {}).get(ds, {}).get(strategy, {}))

    def save(self, part: str, ds: str, rows: dict) -> None:
        import fcntl

        # one writer at a time (runs in parallel share --out), written to a temp file + rename
        WORK.mkdir(parents=True, exist_ok=True)
        with open(WORK / f"{self.out.stem}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self._save(part, ds, rows)

    def _save(self, part: str, ds: str, rows: dict) -> None:
        keep = self.merge or not self.first
        res = json.loads(self.out.read_text()) if keep and self.out.exists() else {}
        self.check(res)
        if ds and ds in self.fingerprints:
            res.setdefault("embeddings", {})[ds] = self.fingerprints[ds]
        res["versions"] = versions(PACKAGES)
        res["machine"] = res.get("machine") or machine()
        res["settings"] = {"lr_C": LR_C, "start_per_class": START_PER_CLASS, "batch": BATCH,
                           "noise": NOISE}  # fmt: skip
        if self.first:
            res["commands"] = [*res.get("commands", []), self.cmd]
            self.first = False
        if part == "scale":
            res["scale"] = {**res.get("scale", {}), **rows}
        else:
            for s, seeds_ in rows.items():
                res.setdefault(part, {}).setdefault(ds, {}).setdefault(s, {}).update(seeds_)
        if OURS in rows:
            res.setdefault("truelabel_code", {})[f"{part}/{ds}"] = git_head()
        res["targets"] = targets(res)
        tmp = self.out.with_suffix(".json.tmp")
        write_json(tmp, res)
        tmp.replace(self.out)
        self.out.with_suffix(".md").write_text(render(res))


def git_head() -> str | None:
    """Last commit that touched the measured truelabel package (+ '-dirty' if it has changes)."""
    import subprocess

    import truelabel

    src = Path(truelabel.__file__).resolve().parent
    try:
        head = subprocess.run(["git", "-C", str(src), "log", "-1", "--format=%h", "--", "."],
                              capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
        dirty = subprocess.run(["git", "-C", str(src), "status", "--porcelain", "--", "."],
                               capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("-dirty" if dirty else "")


if __name__ == "__main__":
    main()
