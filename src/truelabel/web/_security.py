"""Sessions, CSRF tokens, the data-root guard for files and the request-body limit.

A session cookie is ``<user id>.<expiry>.<nonce>.<HMAC-SHA256>`` signed with the server's
secret (nothing to look up, nothing to forge without the secret); the account is re-read
on every request, so a deleted account loses access at once. The CSRF token of a request is
an HMAC of its session cookie (``anon`` before login, ``solo`` in solo mode): a page of
another site can neither read it nor compute it, and every state-changing request must send
it (``X-CSRF-Token`` header, or a ``csrf_token`` form field).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from pathlib import Path
from typing import Any

__all__ = [
    "CSRF_HEADER",
    "SESSION_COOKIE",
    "BodyLimit",
    "csrf_token",
    "load_secret",
    "make_session",
    "read_session",
    "resolve_inside",
]

SESSION_COOKIE = "truelabel_session"
CSRF_HEADER = "x-csrf-token"
SECRET_FILE = "web_secret"


def load_secret(project: Path) -> bytes:
    """The server's signing key: ``$TRUELABEL_SECRET_KEY``, else ``<project>/web_secret``
    (created with mode 0600 on first use, so logins survive a restart)."""
    env = os.environ.get("TRUELABEL_SECRET_KEY")
    if env:
        return env.encode()
    path = project / SECRET_FILE
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
    return path.read_text().strip().encode()


def _sign(secret: bytes, message: str) -> str:
    return hmac.new(secret, message.encode(), hashlib.sha256).hexdigest()


def make_session(secret: bytes, user_id: int, hours: float) -> str:
    """A signed session cookie value for ``user_id``, valid ``hours``."""
    body = f"{int(user_id)}.{int(time.time() + hours * 3600)}.{secrets.token_hex(8)}"
    return f"{body}.{_sign(secret, 'session:' + body)}"


def read_session(secret: bytes, value: str | None) -> int | None:
    """The user id of a valid, unexpired session cookie, else None."""
    if not value or value.count(".") != 3:
        return None
    body, sig = value.rsplit(".", 1)
    if not hmac.compare_digest(sig, _sign(secret, "session:" + body)):
        return None
    user_id, expires, _ = body.split(".")
    if not (user_id.isdigit() and expires.isdigit()) or int(expires) < time.time():
        return None
    return int(user_id)


def csrf_token(secret: bytes, bound_to: str) -> str:
    """The CSRF token bound to a session cookie value (or ``anon`` / ``solo``)."""
    return _sign(secret, "csrf:" + bound_to)


def resolve_inside(root: Path, relative: str) -> Path | None:
    """``root / relative`` when that file is really inside ``root``, else None.

    Absolute paths, ``..`` segments, NUL bytes and symlinks leading out are refused: the
    comparison is made on fully resolved paths."""
    if not relative or "\x00" in relative or relative.startswith(("/", "\\")):
        return None
    if Path(relative).is_absolute() or ".." in Path(relative).parts:
        return None
    base = root.resolve()
    try:
        target = (base / relative).resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if not target.is_relative_to(base) or not target.is_file():
        return None
    return target


class BodyLimit:
    """ASGI middleware: refuse request bodies above ``max_bytes`` with 413, by the declared
    ``Content-Length`` and by counting what a chunked body actually sends."""

    def __init__(self, app: Any, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await _too_large(send, self.max_bytes)
            return
        seen = 0
        started = refused = False

        async def limited() -> Any:
            nonlocal seen, refused
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    if not started and not refused:
                        refused = True
                        await _too_large(send, self.max_bytes)
                    raise _TooLarge
            return message

        async def guarded_send(message: Any) -> None:
            nonlocal started
            if refused:  # the app's own answer to the cut body is dropped: 413 was sent
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, guarded_send)
        except _TooLarge:
            pass


class _TooLarge(Exception):
    pass


async def _too_large(send: Any, limit: int) -> None:
    body = f'{{"detail":"request body larger than {limit} bytes"}}'.encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", b"%d" % len(body)),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
