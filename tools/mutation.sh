#!/usr/bin/env bash
# Mutation testing with mutmut (operator-level mutants) over the modules named on the command line.
# Not part of CI: it takes tens of minutes. Environment: MUTMUT_VENV=<venv with mutmut 3.8.1>,
# MAX_CHILDREN (default 2), SAMPLE=<n> to test a seeded random sample of n mutants per path,
# ONLY_MUTANTS=<file> to test only the mutants named there (e.g. an earlier run's survivors).
# SAMPLE_MODULES=_rank,_filter,... samples only from those modules of the path.
# MUTMUT_WORK=<dir> (default tools/_work/mutmut) holds one scratch copy per path.
# TESTS="tests/test_a.py tests/test_b.py" restricts mutmut's test selection (default: tests/) so
# each mutant runs in seconds; a path may be one module (src/truelabel/encode/_cache.py).
#   bash tools/mutation.sh src/truelabel/autolabel/ src/truelabel/conformal/ src/truelabel/detect/
# Each path is run in its own scratch copy of the repository (the working tree's src/, tests/ and
# pyproject.toml), so the checkout itself is never mutated.
# The named semantic mutants (a setting ignored, a mode swapped, a guard removed) are in
# tools/semantic_mutants.py.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
VENV="${MUTMUT_VENV:-$HERE/.venv-mutmut}"
WORK="${MUTMUT_WORK:-$HERE/_work/mutmut}"
PY="${PYTHON:-python3}"
[ "$#" -gt 0 ] || set -- src/truelabel/autolabel/ src/truelabel/conformal/ src/truelabel/detect/

if [ ! -x "$VENV/bin/mutmut" ]; then
    "$PY" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check mutmut==3.8.1
    # the project's runtime and test dependencies; truelabel itself is imported from mutmut's
    # mutants/src (mutmut puts it first on sys.path), so any installed copy is shadowed.
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e "$REPO[dev,text]"
fi
mkdir -p "$WORK"
WORK="$(cd "$WORK" && pwd)"  # absolute: each path is run from inside its copy
for target in "$@"; do
    name="$(echo "$target" | sed 's|^src/truelabel/||; s|/$||; s|/|_|g; s|\.py$||')"
    dest="$WORK/$name"
    rm -rf "$dest"
    mkdir -p "$dest"
    (cd "$REPO" && tar cf - pyproject.toml README.md src tests) | tar xf - -C "$dest"
    # a static check that reads detect/'s source: it sees mutmut's copies of every function
    LAYERING="tests/test_layering.py::test_detect_never_imports_report"
    selection="$(printf '"%s", ' ${TESTS:-tests/})"
    # mutmut reads [tool.mutmut] from pyproject.toml (setup.cfg would pass the pytest flags as one
    # argument); lists, not strings.
    cat >>"$dest/pyproject.toml" <<CFG

[tool.mutmut]
source_paths = ["$target"]
also_copy = ["src/truelabel/"]
pytest_add_cli_args = ["-q", "-p", "no:cacheprovider", "-x", "--deselect", "$LAYERING"]
pytest_add_cli_args_test_selection = [${selection%, }]
CFG
    echo "== mutmut on $target (in $dest)"
    if [ -n "${SAMPLE:-}" ] || [ -n "${ONLY_MUTANTS:-}" ]; then
        # generate every mutant and map tests to functions (the name filter then matches
        # nothing, so mutmut stops there), then test a seeded uniform sample of SAMPLE mutants
        (cd "$dest" && "$VENV/bin/mutmut" run --max-children "${MAX_CHILDREN:-2}" "no-such-mutant" >"$dest/generate.log" 2>&1 || true)
        mapfile -t names < <("$VENV/bin/python" - "$dest" "${SAMPLE:-0}" "${ONLY_MUTANTS:-}" "${SAMPLE_MODULES:-}" <<'PYEOF'
import json
import pathlib
import random
import sys

root, n, only, modules = pathlib.Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
keys = sorted(k for f in root.glob("mutants/**/*.meta") for k in json.loads(f.read_text())["exit_code_by_key"])
if modules:  # e.g. "_rank,_filter": sample only from these modules
    wanted_modules = set(modules.split(","))
    keys = [k for k in keys if k.split(".")[2] in wanted_modules]
print(f"{len(keys)} mutants generated", file=sys.stderr)
if only:  # a list of mutant names (e.g. the survivors of an earlier run), one a line
    wanted = {line.strip() for line in open(only) if line.strip()}
    keys = [k for k in keys if k in wanted]
else:
    keys = random.Random(0).sample(keys, min(n, len(keys)))
print("\n".join(keys))
PYEOF
        )
        (cd "$dest" && "$VENV/bin/mutmut" run --max-children "${MAX_CHILDREN:-2}" "${names[@]}" >"$dest/run.log" 2>&1 || true)
    else
        (cd "$dest" && "$VENV/bin/mutmut" run --max-children "${MAX_CHILDREN:-2}" >"$dest/run.log" 2>&1 || true)
    fi
    (cd "$dest" && "$VENV/bin/mutmut" results --all true >"$dest/results.txt" 2>&1 || true)
    "$VENV/bin/python" - "$dest/results.txt" <<'PYEOF'
import collections
import sys

counts = collections.Counter()
for line in open(sys.argv[1]):
    if ": " in line and "__mutmut_" in line:
        counts[line.rsplit(": ", 1)[1].strip()] += 1
counts.pop("not checked", None)  # outside the sample
total = sum(counts.values())
killed = counts["killed"] + counts["timeout"] + counts["segfault"]
considered = total - counts["no tests"] - counts["skipped"]
rate = killed / considered if considered else float("nan")
print(f"   {dict(counts)}; kill rate {rate:.1%} of {considered} mutants with tests")
PYEOF
done
