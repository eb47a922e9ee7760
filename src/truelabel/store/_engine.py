"""Engine, settings and migrations: SQLite in the project folder by default, PostgreSQL by URL.

SQLite connections get ``journal_mode=WAL``, ``foreign_keys=ON`` and a busy timeout on
connect (write transactions run with ``synchronous=FULL`` unless ``write(durable=False)``); write transactions begin with ``BEGIN IMMEDIATE`` so two writers queue on the lock
instead of failing half way (a deferred transaction that reads, then writes, can be refused
with "database is locked" without waiting). The schema is brought to the newest Alembic
revision whenever a store is opened.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.engine import URL
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from ..exceptions import ValidationError

__all__ = ["DATABASE_ENV", "DB_FILE", "Store", "StoreSettings", "make_engine", "migrate"]

#: environment variable naming the database (any project) when no URL is passed
DATABASE_ENV = "TRUELABEL_DATABASE_URL"
#: the SQLite file inside a project folder
DB_FILE = "truelabel.db"
_MIGRATIONS = Path(__file__).with_name("migrations")


@dataclass(frozen=True)
class StoreSettings:
    """Where the store lives; validated once, when built (:meth:`resolve`).

    Attributes
    ----------
    url : str
        ``sqlite:///path`` / ``sqlite://`` (in memory) or ``postgresql+psycopg://...``.
    busy_timeout_ms : int
        How long a SQLite writer waits for the lock before failing.
    echo : bool
        Log every SQL statement (debugging).
    """

    url: str
    busy_timeout_ms: int = 30_000
    echo: bool = False

    def __post_init__(self) -> None:
        try:
            url = make_url(self.url)
        except ArgumentError as err:
            raise ValidationError(
                "database_url",
                f"{_redact(self.url)!r} is not a database URL",
                "pass sqlite:///path/to/file.db or postgresql://user:password@host/db",
            ) from err
        if url.get_backend_name() not in ("sqlite", "postgresql"):
            raise ValidationError(
                "database_url",
                f"database {url.get_backend_name()!r} is not supported",
                "use SQLite (the default) or PostgreSQL (postgresql://user:password@host/db)",
            )
        if url.get_backend_name() == "postgresql" and url.drivername != "postgresql+psycopg":
            # plain postgresql:// (or another driver) -> psycopg 3, the driver of [app]
            object.__setattr__(
                self,
                "url",
                url.set(drivername="postgresql+psycopg").render_as_string(hide_password=False),
            )
        if self.busy_timeout_ms < 0:
            raise ValidationError(
                "busy_timeout_ms", f"got {self.busy_timeout_ms}", "pass milliseconds >= 0"
            )

    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return make_url(self.url).get_backend_name()

    @classmethod
    def sqlite_file(cls, project_dir: str | os.PathLike[str]) -> StoreSettings:
        """The SQLite database ``<project_dir>/truelabel.db``."""
        return cls(
            url=URL.create("sqlite", database=str(Path(project_dir) / DB_FILE)).render_as_string()
        )

    @classmethod
    def resolve(
        cls, project_dir: str | os.PathLike[str] | None = None, *, url: str | None = None
    ) -> StoreSettings:
        """The store of a project: ``url``, else ``$TRUELABEL_DATABASE_URL``, else
        ``<project_dir>/truelabel.db``."""
        chosen = url or os.environ.get(DATABASE_ENV) or None
        if chosen is None:
            if project_dir is None:
                raise ValidationError(
                    "database_url", "no database given", f"pass a URL or set {DATABASE_ENV}"
                )
            return cls.sqlite_file(project_dir)
        return cls(url=chosen)


def _redact(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def make_engine(settings: StoreSettings) -> Engine:
    """A SQLAlchemy engine for ``settings`` (SQLite PRAGMAs set on every connection)."""
    url = make_url(settings.url)
    if url.get_backend_name() != "sqlite":
        return create_engine(url, echo=settings.echo, pool_pre_ping=True)
    memory = url.database in (None, "", ":memory:")
    kwargs: dict[str, Any] = {"echo": settings.echo}
    if memory:
        kwargs.update(poolclass=StaticPool, connect_args={"check_same_thread": False})
    else:
        kwargs["connect_args"] = {"check_same_thread": False}
    engine = create_engine(url, **kwargs)
    timeout = int(settings.busy_timeout_ms)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # the driver's own BEGIN off; we emit it below
        cur = dbapi_conn.cursor()
        if not memory:
            cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={timeout}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        options = conn.get_execution_options()
        mode = options.get("truelabel_write", False)
        if mode and not memory:  # WAL: NORMAL skips the fsync; the next FULL commit covers it
            sync = "FULL" if options.get("truelabel_durable", True) else "NORMAL"
            conn.exec_driver_sql(f"PRAGMA synchronous={sync}")
        conn.exec_driver_sql("BEGIN IMMEDIATE" if mode else "BEGIN")

    return engine


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (``alembic upgrade head``, in-process)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")


class Store:
    """The project database: an engine plus read and write sessions.

    Parameters
    ----------
    settings : StoreSettings
    upgrade : bool, default True
        Apply pending migrations on open.

    Examples
    --------
    >>> from truelabel.store import create_project, get_project
    >>> store = Store(StoreSettings(url="sqlite://"))  # in memory: the fast fake of a store
    >>> with store.write() as session:
    ...     project = create_project(session, name="demo", content_kind="text")
    >>> with store.read() as session:
    ...     get_project(session, name="demo").content_kind
    'text'
    >>> store.close()
    """

    def __init__(self, settings: StoreSettings, *, upgrade: bool = True) -> None:
        self.settings = settings
        self.engine = make_engine(settings)
        if upgrade:
            migrate(self.engine)
        self._reader = sessionmaker(self.engine, expire_on_commit=False)
        self._writer = sessionmaker(
            self.engine.execution_options(truelabel_write=True), expire_on_commit=False
        )
        self._light_writer = sessionmaker(
            self.engine.execution_options(truelabel_write=True, truelabel_durable=False),
            expire_on_commit=False,
        )
        # SQLite: writers of this process queue on a lock (FIFO-ish, woken at once) instead of
        # polling the file lock in SQLite's busy handler, whose sleeps grow to 100 ms
        self._write_lock = threading.Lock() if settings.dialect == "sqlite" else None

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reading; closed (its transaction rolled back) at the end. Objects
        read keep their loaded attributes after the block."""
        with self._reader() as session:
            yield session

    @contextmanager
    def write(self, *, durable: bool = True) -> Iterator[Session]:
        """One write transaction: committed when the block ends, rolled back on error.

        ``durable=False`` (SQLite): the commit is not flushed to disk (``synchronous=NORMAL``
        in WAL mode): a crash of the process loses nothing, a power cut may lose this
        transaction (the database stays consistent), and the next durable commit flushes it
        too. For state worth no fsync, such as task claims; decisions are always durable."""
        writer = self._writer if durable else self._light_writer
        with self._queue(), writer() as session, session.begin():
            yield session

    @contextmanager
    def _queue(self) -> Iterator[None]:
        """Wait for this process's other writers (SQLite), at most the busy timeout, then fail
        as SQLite would (a write nested in another write of the same store never hangs)."""
        lock = self._write_lock
        if lock is None:
            yield
            return
        if not lock.acquire(timeout=self.settings.busy_timeout_ms / 1000):
            raise TimeoutError(
                f"no write lock after {self.settings.busy_timeout_ms} ms: another write "
                "transaction of this store is still open (nested store.write()?)"
            )
        try:
            yield
        finally:
            lock.release()

    def close(self) -> None:
        """Release every connection."""
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
