"""Alembic environment: runs on the connection the store hands over (never a config file)."""

from __future__ import annotations

from alembic import context

from truelabel.store._models import Base


def run_migrations() -> None:
    """Migrate the connection :func:`truelabel.store.migrate` put in the config."""
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run migrations through truelabel.store.migrate(engine)")
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


# alembic sets up `context.config` before it runs this file; a plain import (the doctest
# collector) sees no config and does nothing
if hasattr(context, "config"):
    run_migrations()
