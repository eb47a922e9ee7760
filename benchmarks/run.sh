#!/usr/bin/env bash
# Run every benchmark (one at a time: timings are wall-clock on a small shared machine) and
# render benchmarks/RESULTS.md.
#   bash benchmarks/run.sh            # full run (~40 min on 2 cores)
#   bash benchmarks/run.sh --quick    # smoke run (~1 min), results in benchmarks/_work/quick/
# Extra environment: PEERS_VENV (default benchmarks/.venv-peers), TRUELABEL_DATASETS.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
cd "$REPO"

QUICK=()
OUTDIR="$HERE/results"
MD="$HERE/RESULTS.md"
if [ "${1:-}" = "--quick" ]; then
    QUICK=(--quick)
    OUTDIR="$HERE/_work/quick"
    MD="$OUTDIR/RESULTS.md"
fi
mkdir -p "$OUTDIR"
# results/notes.md holds hand-written remarks about the previous run: do not carry it over.
if [ -f "$OUTDIR/notes.md" ]; then
    mkdir -p "$HERE/_work"
    mv "$OUTDIR/notes.md" "$HERE/_work/notes.previous.md"
    echo "moved the previous run's results/notes.md to benchmarks/_work/notes.previous.md" >&2
fi

if ! bash "$HERE/setup.sh" >"$OUTDIR/setup.log" 2>&1; then
    cat "$OUTDIR/setup.log" >&2
    exit 1
fi
tail -n 1 "$OUTDIR/setup.log"
PY="${PEERS_VENV:-$HERE/.venv-peers}/bin/python"
test -x "$PY" || { echo "setup.sh did not create $PY" >&2; exit 1; }

"$PY" benchmarks/bench_quality.py "${QUICK[@]}" --out "$OUTDIR/quality.json"
"$PY" benchmarks/bench_speed.py "${QUICK[@]}" --out "$OUTDIR/speed.json"
"$PY" benchmarks/bench_audit.py "${QUICK[@]}" --out "$OUTDIR/audit.json"
if [ ${#QUICK[@]} -eq 0 ]; then
    "$PY" benchmarks/bench_conformal.py --out "$OUTDIR/conformal.json"
else
    "$PY" benchmarks/bench_conformal.py --splits 3 --bank-splits 2 --bank-cv-splits 1 \
        --bank-mondrian-splits 0 --al-splits 5 --out "$OUTDIR/conformal.json"
fi
"$PY" benchmarks/make_results.py --results "$OUTDIR" --out "$MD" \
    --command "bash benchmarks/run.sh ${QUICK[*]}"
