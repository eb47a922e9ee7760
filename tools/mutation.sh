#!/usr/bin/env bash
# Mutation testing with mutmut (operator-level mutants) over the modules named on the command line.
# Not part of CI: it takes tens of minutes. Results land in tools/_work/mutmut/<name>/.
#   bash tools/mutation.sh src/truelabel/detect/ src/truelabel/conformal/ src/truelabel/autolabel/
# Each path is run in its own scratch copy of the repository (git archive of HEAD plus the working
# tree's changes to src/ and tests/), so the checkout itself is never mutated.
# The named semantic mutants (a setting ignored, a mode swapped, a guard removed) are in
# tools/semantic_mutants.py.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
VENV="${MUTMUT_VENV:-$HERE/.venv-mutmut}"
WORK="$HERE/_work/mutmut"
PY="${PYTHON:-python3}"
[ "$#" -gt 0 ] || set -- src/truelabel/detect/ src/truelabel/conformal/ src/truelabel/autolabel/

if [ ! -x "$VENV/bin/mutmut" ]; then
    "$PY" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check mutmut==3.8.1
fi
mkdir -p "$WORK"
for target in "$@"; do
    name="$(echo "$target" | sed 's|^src/truelabel/||; s|/$||; s|/|_|g; s|\.py$||')"
    dest="$WORK/$name"
    rm -rf "$dest"
    mkdir -p "$dest"
    (cd "$REPO" && tar cf - pyproject.toml README.md src tests) | tar xf - -C "$dest"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e "$dest[dev]"
    cat >"$dest/setup.cfg" <<CFG
[mutmut]
paths_to_mutate = $target
tests_dir = tests/
also_copy = src/truelabel/
pytest_add_cli_args = -q -p no:cacheprovider -x -W ignore::pytest.PytestUnraisableExceptionWarning
CFG
    sed -i '/^\[tool.mutmut\]/,$d' "$dest/pyproject.toml"
    echo "== mutmut on $target (in $dest)"
    (cd "$dest" && "$VENV/bin/mutmut" run >"$dest/run.log" 2>&1 || true)
    (cd "$dest" && "$VENV/bin/mutmut" results --all true >"$dest/results.txt" 2>&1 || true)
    "$VENV/bin/python" - "$dest/results.txt" <<'PYEOF'
import collections
import sys

counts = collections.Counter()
for line in open(sys.argv[1]):
    if ": " in line and "__mutmut_" in line:
        counts[line.rsplit(": ", 1)[1].strip()] += 1
total = sum(counts.values())
killed = counts["killed"] + counts["timeout"] + counts["segfault"]
considered = total - counts["no tests"] - counts["skipped"]
rate = killed / considered if considered else float("nan")
print(f"   {dict(counts)}; kill rate {rate:.1%} of {considered} mutants with tests")
PYEOF
done
