"""The app factory: ``create_app(settings)`` opens the project once and wires routers,
the CSRF guard, the body-size limit, security headers and error pages."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.datastructures import MutableHeaders

from ..exceptions import ValidationError
from ._deps import NotAuthenticated, WebContext, csrf_guard
from ._security import BodyLimit, load_secret
from ._settings import Settings, is_loopback
from .routes import annotators, auth, export, items, pages, projects, tasks

__all__ = ["create_app"]

_HERE = Path(__file__).parent
_PAGES = frozenset({"/", "/review", "/search", "/annotators"})  # sent to /login; else 401
_PAGE_PREFIXES = ("/items/", "/annotators/")  # pages under a path (the API is /api/...)
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


class SecurityHeaders:
    """ASGI middleware adding the CSP (unless the response set one), nosniff, DENY framing
    and the referrer policy to every HTTP response (plain ASGI: no task group or body
    stream per request, as ``@app.middleware("http")`` costs)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                headers = MutableHeaders(scope=message)  # a list, changed in place
                headers.setdefault("Content-Security-Policy", _CSP)
                headers["X-Content-Type-Options"] = "nosniff"
                headers["X-Frame-Options"] = "DENY"
                headers["Referrer-Policy"] = "same-origin"
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(settings: Settings, *, handle: Any = None) -> FastAPI:
    """The review web app of ``settings.project``.

    Parameters
    ----------
    settings : Settings
        Validated when built (solo mode on loopback only, etc.).
    handle : OpenProject, optional
        An already open project (tests); default: ``open_project(settings.project)``,
        closed when the app shuts down.
    """
    from ..store import open_project

    own = handle is None
    if handle is None:
        handle = open_project(settings.project, database_url=settings.database_url)
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(_HERE / "templates")), autoescape=True
    )
    templates = Jinja2Templates(env=env)
    ctx = WebContext(
        settings=settings,
        handle=handle,
        secret=load_secret(Path(handle.path)),
        templates=templates,
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        if own:
            handle.store.close()

    app = FastAPI(
        title=f"truelabel review: {handle.name}",
        lifespan=lifespan,
        dependencies=[Depends(csrf_guard)],
        docs_url=None,
        redoc_url=None,
    )
    app.state.ctx = ctx
    for module in (projects, tasks, items, annotators, export, auth, pages):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=str(_HERE / "static")), name="static")

    @app.exception_handler(ValidationError)
    async def _invalid(_request: Request, err: ValidationError) -> Response:
        return JSONResponse({"detail": str(err)}, status_code=422)

    @app.exception_handler(NotAuthenticated)
    async def _login(request: Request, _err: NotAuthenticated) -> Response:
        path = request.url.path
        page = path in _PAGES or path.startswith(_PAGE_PREFIXES)
        if not page or request.method != "GET":
            return JSONResponse({"detail": "log in first"}, status_code=401)
        return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)

    app.add_middleware(SecurityHeaders)

    if not settings.team:
        # solo mode serves loopback only: refuse other Host names (DNS rebinding)
        from starlette.middleware.trustedhost import TrustedHostMiddleware

        hosts = ["127.0.0.1", "localhost", "[::1]", "::1"]
        if is_loopback(settings.host):
            hosts.append(settings.host)
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=hosts)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    return app
