"""The data flow runs one way: detect -> ... -> report. detect never imports report."""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
import textwrap
from pathlib import Path

import truelabel

PACKAGE = Path(truelabel.__file__).parent


def imported_modules(path: Path) -> list[tuple[str, str | None]]:
    """(absolute module, enclosing function or None) for every import in ``path``."""
    package = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[tuple[str, str | None]] = []

    def visit(node: ast.AST, function: str | None) -> None:
        for child in ast.iter_child_nodes(node):
            inner = function
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                inner = child.name
            if isinstance(child, ast.Import):
                found.extend((alias.name, function) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")[: len(package.split(".")) - child.level + 1]
                    module = ".".join([*base, *([child.module] if child.module else [])])
                else:
                    module = child.module or ""
                found.append((module, function))
                found.extend((f"{module}.{alias.name}", function) for alias in child.names)
            visit(child, inner)

    visit(tree, None)
    return found


def test_relative_imports_resolve():
    found = imported_modules(PACKAGE / "detect" / "_audit.py")
    assert ("truelabel._validation", None) in found
    assert ("truelabel.detect._base", None) in found


def test_detect_never_imports_report():
    crossings = []
    for path in sorted((PACKAGE / "detect").rglob("*.py")):
        for module, function in imported_modules(path):
            if module == "truelabel.report" or module.startswith("truelabel.report."):
                crossings.append((path.name, function))
    # The one exception: AuditResult.write_report, a shortcut that forwards to
    # truelabel.report.write_report when called (never at import time).
    assert sorted(set(crossings)) == [("_audit.py", "write_report")]
    from truelabel.detect import AuditResult

    body = ast.parse(textwrap.dedent(inspect.getsource(AuditResult.write_report))).body[0]
    assert isinstance(body, ast.FunctionDef)
    statements = [s for s in body.body if not isinstance(s, ast.Expr)]  # drop the docstring
    assert [type(s).__name__ for s in statements] == ["ImportFrom", "Return"]


def test_importing_detect_does_not_load_report():
    code = "import sys, truelabel.detect; print('truelabel.report' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
