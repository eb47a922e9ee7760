"""``truelabel serve`` / ``user-add`` from the command line, and where FastAPI may be imported."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from typer.testing import CliRunner

import truelabel.store as ts
from truelabel.cli import app
from truelabel.web import verify_password

from ..test_layering import PACKAGE, imported_modules
from .conftest import build_project

runner = CliRunner()


def test_serve_refuses_an_open_host_without_team_mode(tmp_path, monkeypatch):
    import uvicorn

    ran = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: ran.append(k))
    folder = build_project(tmp_path / "proj")
    result = runner.invoke(app, ["serve", str(folder), "--host", "0.0.0.0"])
    assert result.exit_code == 2 and ran == []
    assert "solo mode has no login" in result.output and "--team" in result.output
    result = runner.invoke(
        app, ["serve", str(folder), "--host", "0.0.0.0", "--team", "--port", "8123"]
    )
    assert result.exit_code == 0, result.output
    assert ran == [{"host": "0.0.0.0", "port": 8123, "log_level": "warning"}]
    assert "team mode" in result.output
    missing = runner.invoke(app, ["serve", str(tmp_path / "nothing")])
    assert missing.exit_code == 2 and "is not a truelabel project" in missing.output


def test_user_add_stores_an_argon2_hash(tmp_path, monkeypatch):
    folder = build_project(tmp_path / "proj")
    monkeypatch.setenv("TRUELABEL_PASSWORD", "a long enough password")
    ok = runner.invoke(app, ["user-add", str(folder), "dana", "--role", "admin"])
    assert ok.exit_code == 0, ok.output
    again = runner.invoke(app, ["user-add", str(folder), "dana"])
    assert again.exit_code == 2 and "'dana' already exists" in again.output
    bad_role = runner.invoke(app, ["user-add", str(folder), "erin", "--role", "owner"])
    assert bad_role.exit_code == 2 and "role" in bad_role.output
    monkeypatch.setenv("TRUELABEL_PASSWORD", "short")
    short = runner.invoke(app, ["user-add", str(folder), "erin"])
    assert short.exit_code == 2 and "at least 10" in short.output
    with ts.opened(folder) as handle, handle.store.read() as s:
        users = [(u.username, u.role) for u in ts.list_users(s)]
        digest = ts.get_user(s, username="dana").password_hash
    assert users == [("dana", "admin")]
    assert verify_password(digest, "a long enough password")


def test_only_web_and_serve_import_fastapi_and_the_web_package():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel.startswith("web/") or rel == "cli/_serve.py":
            continue
        for module, _ in imported_modules(path):
            if module.split(".")[0] in ("fastapi", "starlette", "uvicorn", "jinja2") or (
                module == "truelabel.web" or module.startswith("truelabel.web.")
            ):
                offenders.append((rel, module))
    assert offenders == []


def test_cli_import_does_not_import_fastapi():
    code = textwrap.dedent(
        """
        import sys, truelabel.cli
        bad = [m for m in ('fastapi', 'starlette', 'uvicorn', 'argon2', 'truelabel.web')
               if m in sys.modules]
        print(bad)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
