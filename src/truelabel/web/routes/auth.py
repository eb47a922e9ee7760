"""Accounts and sessions (team mode): login / logout (API and form), the session's CSRF
token, and accounts (admins only)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request, Response
from fastapi.responses import RedirectResponse

from .._deps import AdminDep, ContextDep, UserDep, WebContext, expected_csrf
from .._passwords import verify_password
from .._schemas import LoginCreate, SessionPublic, UserCreate, UserPublic
from .._security import SESSION_COOKIE, csrf_token, make_session

router = APIRouter(tags=["auth"])

# verified when the name is unknown, so a wrong name costs as long as a wrong password
_DUMMY_HASH = "$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHRzb21lc2FsdA$0ZmBdRmz4cQZx5y3Lq0oCA"


def _authenticate(ctx: WebContext, username: str, password: str) -> Any:
    from ...store import get_user

    with ctx.store.read() as session:
        user = get_user(session, username=username.strip())
    if user is None:
        verify_password(_DUMMY_HASH, password)
        return None
    return user if verify_password(user.password_hash, password) else None


def _set_cookie(response: Response, ctx: WebContext, value: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        value,
        max_age=int(ctx.settings.session_hours * 3600),
        httponly=True,
        samesite="lax",
        secure=ctx.settings.cookie_secure,
        path="/",
    )


@router.get("/api/session", response_model=SessionPublic)
def get_session(request: Request, ctx: ContextDep, user: UserDep) -> Any:
    """Who is logged in, and the CSRF token to send with every POST (``X-CSRF-Token``)."""
    return {
        "user": user.name,
        "role": user.role,
        "team": ctx.settings.team,
        "csrf_token": expected_csrf(request, ctx),
    }


@router.get("/api/csrf")
def get_login_csrf(request: Request, ctx: ContextDep) -> dict[str, str]:
    """The CSRF token of a request without a session (for ``POST /api/login``)."""
    return {"csrf_token": expected_csrf(request, ctx)}


@router.post("/api/login", response_model=SessionPublic)
def post_login(body: LoginCreate, response: Response, ctx: ContextDep) -> Any:
    """Log in (team mode): sets the HttpOnly session cookie; returns the new CSRF token."""
    if not ctx.settings.team:
        raise HTTPException(404, "solo mode has no accounts")
    user = _authenticate(ctx, body.username, body.password)
    if user is None:
        raise HTTPException(401, "wrong user name or password")
    value = make_session(ctx.secret, user.id, ctx.settings.session_hours)
    _set_cookie(response, ctx, value)
    token = csrf_token(ctx.secret, value)
    return {"user": user.username, "role": user.role, "team": True, "csrf_token": token}


@router.post("/login", include_in_schema=False)
def post_login_form(
    ctx: ContextDep,
    username: Annotated[str, Form(max_length=200)],
    password: Annotated[str, Form(max_length=1000)],
    next: Annotated[str, Form(max_length=500)] = "/",
) -> Any:
    if not ctx.settings.team:
        return RedirectResponse("/", status_code=303)
    user = _authenticate(ctx, username, password)
    if user is None:
        return RedirectResponse("/login?failed=1", status_code=303)
    target = next if next.startswith("/") and not next.startswith(("//", "/\\")) else "/"
    response = RedirectResponse(target, status_code=303)
    _set_cookie(response, ctx, make_session(ctx.secret, user.id, ctx.settings.session_hours))
    return response


@router.post("/logout", include_in_schema=False)
@router.post("/api/logout")
def post_logout(ctx: ContextDep) -> Any:
    """Forget the session cookie."""
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/api/users", response_model=list[UserPublic])
def get_users(ctx: ContextDep, user: AdminDep) -> Any:
    """Every account (admins only)."""
    from ...store import list_users

    with ctx.store.read() as session:
        return list_users(session)


@router.post("/api/users", response_model=UserPublic, status_code=201)
def post_user(body: UserCreate, ctx: ContextDep, user: AdminDep) -> Any:
    """Create an account (admins only); the password is stored as an argon2id hash."""
    from ...store import add_user
    from .._passwords import hash_password

    with ctx.store.write() as session:
        return add_user(
            session,
            username=body.username,
            password_hash=hash_password(body.password),
            role=body.role,
        )
