"""Named semantic mutants: each is a plausible bug that some test must catch.

mutmut's operator-level mutants (``tools/mutation.sh``) flip one token at a time; the bugs that
matter more are a setting ignored, a mode swapped, a guard removed. Each entry below patches one
exact snippet in a scratch copy of ``src/`` and runs the named tests there: the mutant is *killed*
when a test fails (pytest exit code 1). A snippet that no longer occurs exactly once is reported as
``stale`` (the code moved: update the entry), never silently skipped.

    python tools/semantic_mutants.py            # all mutants, table + exit 1 if any survives
    python tools/semantic_mutants.py -k pool    # only those whose name contains "pool"

Not part of CI (a few minutes); results are quoted in benchmarks/RESULTS.md.
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
    tests: tuple[str, ...]


MUTANTS: list[Mutant] = []


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
    args = parser.parse_args()
    chosen = [m for m in MUTANTS if args.k in m.name]
    bad = 0
    for m in chosen:
        verdict, detail = run_one(m, args.python)
        bad += verdict != "killed"
        print(f"{verdict:9s} {m.name}  [{detail}]", flush=True)
    print(f"{len(chosen) - bad} of {len(chosen)} semantic mutants killed")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
