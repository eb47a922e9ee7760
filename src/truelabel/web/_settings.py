"""The web app's one ``Settings``, validated when built: unsafe values are refused, naming the fix."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

from ..exceptions import ValidationError

__all__ = ["LOOPBACK_NAMES", "Settings", "is_loopback"]

LOOPBACK_NAMES = ("localhost",)


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Settings:
    """How the review app runs.

    Attributes
    ----------
    project : Path
        The project folder (``truelabel init``).
    host, port : str, int
        Where uvicorn listens. Solo mode binds to loopback only.
    team : bool
        Accounts, logins, roles (``truelabel user-add``); required for any other host.
    database_url : str or None
        The project's database URL when it is not the folder's SQLite file.
    max_body_bytes : int
        Larger request bodies are refused (413).
    secure_cookies : bool or None
        Send the session cookie with ``Secure``; default: when the host is not loopback.
    session_hours : float
        How long a login lasts.
    """

    project: Path
    host: str = "127.0.0.1"
    port: int = 8000
    team: bool = False
    database_url: str | None = None
    max_body_bytes: int = 1_000_000
    secure_cookies: bool | None = None
    session_hours: float = 12.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "project", Path(self.project))
        if not self.team and not is_loopback(self.host):
            raise ValidationError(
                "--host",
                f"{self.host!r} is reachable from other machines and solo mode has no login",
                "bind to 127.0.0.1, or pass --team (accounts: `truelabel user-add PROJECT NAME`)",
            )
        if not 0 < self.port < 65536:
            raise ValidationError("--port", f"got {self.port}", "pass a port in 1..65535")
        if not 1 <= self.max_body_bytes <= 100_000_000:
            raise ValidationError(
                "max_body_bytes", f"got {self.max_body_bytes}", "pass 1 byte .. 100 MB"
            )
        if not 0 < self.session_hours <= 24 * 30:
            raise ValidationError("session_hours", f"got {self.session_hours}", "pass 0 < h <= 720")
        if self.secure_cookies is False and self.team and not is_loopback(self.host):
            raise ValidationError(
                "secure_cookies",
                f"off while serving {self.host!r} to other machines",
                "keep Secure cookies on (serve behind HTTPS, e.g. a reverse proxy)",
            )

    @property
    def cookie_secure(self) -> bool:
        """``Secure`` on the session cookie: on unless the server is on loopback."""
        if self.secure_cookies is not None:
            return self.secure_cookies
        return not is_loopback(self.host)
