"""What routes depend on, as ``Annotated`` aliases: the app context, a read session, the
logged-in user (solo mode: the OS user), admins only; and the CSRF guard every state change
passes (installed on the whole app)."""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from sqlalchemy.orm import Session

from ._security import CSRF_HEADER, SESSION_COOKIE, csrf_token, read_session
from ._settings import Settings

__all__ = [
    "AdminDep",
    "ContextDep",
    "NotAuthenticated",
    "Principal",
    "SessionDep",
    "UserDep",
    "WebContext",
    "csrf_guard",
    "expected_csrf",
]

_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass
class WebContext:
    """Everything a request needs, built once by ``create_app``."""

    settings: Settings
    handle: Any  # truelabel.store.OpenProject
    secret: bytes
    templates: Any
    cache: dict[str, Any] = field(default_factory=dict)

    @property
    def store(self) -> Any:
        return self.handle.store

    @property
    def project_id(self) -> int:
        return int(self.handle.project_id)

    @property
    def classes(self) -> list[str]:
        return [str(c) for c in self.handle.settings.get("classes") or []]

    @property
    def data_root(self) -> Path:
        return Path(self.handle.settings.get("data_root") or self.handle.path)


@dataclass(frozen=True)
class Principal:
    """Who is asking: an account (team mode) or the local user (solo mode)."""

    name: str
    role: str
    user_id: int | None = None


class NotAuthenticated(Exception):
    """No valid session in team mode: 401 for the API, a redirect to /login for pages."""


async def get_context(request: Request) -> WebContext:  # async: no thread hop
    ctx: WebContext = request.app.state.ctx
    return ctx


ContextDep = Annotated[WebContext, Depends(get_context)]


def read_session_dep(ctx: ContextDep) -> Iterator[Session]:
    with ctx.store.read() as session:
        yield session


SessionDep = Annotated[Session, Depends(read_session_dep)]


def solo_name() -> str:
    """The OS user name, or ``local`` when there is none."""
    try:
        return getpass.getuser() or "local"
    except (OSError, KeyError):
        return "local"


def current_user(request: Request, ctx: ContextDep) -> Principal:
    cached = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    if not ctx.settings.team:
        principal = Principal(name=solo_name(), role="admin")
    else:
        from ..store import get_user

        user_id = read_session(ctx.secret, request.cookies.get(SESSION_COOKIE))
        if user_id is None:
            raise NotAuthenticated
        with ctx.store.read() as session:
            user = get_user(session, user_id=user_id)
            if user is None:
                raise NotAuthenticated
            principal = Principal(name=user.username, role=user.role, user_id=user.id)
    request.state.principal = principal
    return principal


UserDep = Annotated[Principal, Depends(current_user)]


async def require_admin(user: UserDep) -> Principal:  # async: no thread hop
    if user.role != "admin":
        raise HTTPException(403, "this needs the admin role")
    return user


AdminDep = Annotated[Principal, Depends(require_admin)]


def expected_csrf(request: Request, ctx: WebContext) -> str:
    """The CSRF token this request must carry (and pages embed)."""
    if not ctx.settings.team:
        return csrf_token(ctx.secret, "solo")
    cookie = request.cookies.get(SESSION_COOKIE)
    if read_session(ctx.secret, cookie) is None:
        return csrf_token(ctx.secret, "anon")
    return csrf_token(ctx.secret, str(cookie))


async def csrf_guard(request: Request, ctx: ContextDep) -> None:
    """Refuse (403) a state-changing request without the right CSRF token."""
    if request.method in _SAFE:
        return
    sent = request.headers.get(CSRF_HEADER)
    content_type = request.headers.get("content-type", "")
    if sent is None and content_type.startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        value = (await request.form()).get("csrf_token")
        sent = value if isinstance(value, str) else None
    import hmac

    if sent is None or not hmac.compare_digest(sent, expected_csrf(request, ctx)):
        raise HTTPException(403, "missing or wrong CSRF token (send the X-CSRF-Token header)")
