"""Load a script of benchmarks/ as a module, so tests can pin its pure helpers (the benchmarks
themselves need peer tools in their own venvs and never run in tests)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load_script(path: Path, name: str) -> ModuleType:
    """The Python file ``path`` as the module ``name`` (its folder on sys.path while it
    imports, for its sibling helpers)."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(mod)
    finally:
        sys.path.remove(str(path.parent))
    return mod


def load_benchmark(stem: str) -> ModuleType:
    """``benchmarks/<stem>.py`` as the module ``<stem>_under_test``."""
    return load_script(BENCHMARKS / f"{stem}.py", f"{stem}_under_test")
