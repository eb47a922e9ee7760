"""Password hashing for team accounts (argon2id through argon2-cffi, its default parameters)."""

from __future__ import annotations

from typing import Any

from ..exceptions import MissingDependencyError, ValidationError

__all__ = ["MIN_PASSWORD", "hash_password", "verify_password"]

MIN_PASSWORD = 10


def _hasher() -> Any:
    try:
        from argon2 import PasswordHasher
    except ImportError as err:  # pragma: no cover - exercised without the extra only
        raise MissingDependencyError("argon2-cffi", "web", "team accounts") from err
    return PasswordHasher()


def hash_password(password: str) -> str:
    """An argon2id PHC string for ``password`` (at least :data:`MIN_PASSWORD` characters)."""
    if len(password) < MIN_PASSWORD:
        raise ValidationError(
            "password", f"has {len(password)} characters", f"use at least {MIN_PASSWORD}"
        )
    return str(_hasher().hash(password))


def verify_password(password_hash: str, password: str) -> bool:
    """True when ``password`` matches (constant time; False for any malformed hash)."""
    from argon2.exceptions import Argon2Error, InvalidHashError

    try:
        return bool(_hasher().verify(password_hash, password))
    except (Argon2Error, InvalidHashError):
        return False
