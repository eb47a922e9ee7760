"""``truelabel serve PROJECT`` (the review web app on uvicorn) and ``truelabel user-add``
(team accounts). FastAPI, uvicorn and argon2 are imported only when these run."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from ..exceptions import TruelabelError, ValidationError
from ._app import _fail, app, console

__all__ = ["serve", "user_add"]

_DB_HELP = "database URL (default: $TRUELABEL_DATABASE_URL, else PROJECT/truelabel.db)"
PASSWORD_ENV = "TRUELABEL_PASSWORD"


@app.command()
def serve(
    project: Annotated[Path, typer.Argument(help="project folder (truelabel init)")],
    host: Annotated[
        str, typer.Option("--host", help="address to listen on (other than loopback: --team)")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="port")] = 8000,
    team: Annotated[
        bool, typer.Option("--team", help="accounts, logins and roles (truelabel user-add)")
    ] = False,
    database_url: Annotated[str | None, typer.Option("--database-url", help=_DB_HELP)] = None,
    workers: Annotated[
        int, typer.Option("--workers", help="server processes (SQLite and PostgreSQL)")
    ] = 1,
) -> None:
    """Serve the review app: dashboard, review queue with keyboard shortcuts, search, API."""
    try:
        from ..web import Settings, create_app

        settings = Settings(
            project=project, host=host, port=port, team=team, database_url=database_url
        )
        if not 1 <= workers <= 64:
            raise ValidationError("--workers", f"got {workers}", "pass 1 to 64 processes")
        web_app = create_app(settings)  # checks the project opens before forking workers
        import uvicorn
    except (TruelabelError, OSError, ValueError, ImportError) as err:
        _fail(err)
    mode = "team mode (log in)" if team else "solo mode, no login"
    procs = f", {workers} worker processes" if workers > 1 else ""
    console.print(f"serving {escape(str(project))} on http://{host}:{port}/ ({mode}{procs})")
    if workers == 1:
        uvicorn.run(web_app, host=host, port=port, log_level="warning")
        return
    from ..web._factory import SETTINGS_ENV, settings_to_env

    web_app.state.ctx.store.close()
    os.environ[SETTINGS_ENV] = settings_to_env(settings)
    uvicorn.run(
        "truelabel.web._factory:app_from_env",
        factory=True,
        workers=workers,
        host=host,
        port=port,
        log_level="warning",
    )


@app.command("user-add")
def user_add(
    project: Annotated[Path, typer.Argument(help="project folder")],
    username: Annotated[str, typer.Argument(help="account name")],
    role: Annotated[str, typer.Option("--role", help="admin or reviewer")] = "reviewer",
    database_url: Annotated[str | None, typer.Option("--database-url", help=_DB_HELP)] = None,
) -> None:
    """Add a team account. The password is read from $TRUELABEL_PASSWORD or asked for."""
    password = os.environ.get(PASSWORD_ENV) or typer.prompt(
        "password", hide_input=True, confirmation_prompt=True
    )
    try:
        import truelabel.store as store

        from ..web._passwords import hash_password

        digest = hash_password(password)
        with store.opened(project, database_url=database_url) as handle, handle.store.write() as s:
            store.add_user(s, username=username, password_hash=digest, role=role)
    except (TruelabelError, OSError, ValueError, ImportError) as err:
        _fail(err)
    console.print(f"added {escape(role)} {escape(username)}")
