"""Accounts of the review web app in team mode: a user name, a password hash (hashed by the
caller with a maintained library; the store never sees a password) and a role."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from ..exceptions import ValidationError
from ._models import Base, utcnow

__all__ = ["ROLES", "User", "add_user", "get_user", "list_users"]

#: admin: everything, including accounts and batch accept; reviewer: review items
ROLES = ("admin", "reviewer")


class User(Base):
    """One account (names are unique across the database)."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(200), unique=True)
    password_hash: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]

    __table_args__ = (CheckConstraint("role IN ('admin', 'reviewer')", name="role"),)


def add_user(session: Session, *, username: str, password_hash: str, role: str) -> User:
    """Add an account; a name already used is refused."""
    name = username.strip()
    if not name or len(name) > 200:
        raise ValidationError("username", f"got {username!r}", "pass 1 to 200 characters")
    if role not in ROLES:
        raise ValidationError("role", f"got {role!r}", f"pass one of {', '.join(ROLES)}")
    if not password_hash.startswith("$"):
        raise ValidationError("password_hash", "is not a PHC hash string", "hash the password")
    if session.scalar(select(User.id).where(User.username == name)) is not None:
        raise ValidationError("username", f"{name!r} already exists", "pick another name")
    user = User(username=name, password_hash=password_hash, role=role, created_at=utcnow())
    session.add(user)
    session.flush()
    return user


def get_user(
    session: Session, *, username: str | None = None, user_id: int | None = None
) -> User | None:
    """The account with this name or id (None when there is none)."""
    if user_id is not None:
        return session.get(User, user_id)
    return session.scalar(select(User).where(User.username == username))


def list_users(session: Session) -> list[User]:
    """Every account, by name."""
    return list(session.scalars(select(User).order_by(User.username)))
