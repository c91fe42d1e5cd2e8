"""Alembic environment: always run with a connection handed over by :func:`storage.db.upgrade`."""

from __future__ import annotations

from alembic import context

from imagegate.storage.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reachable by calling alembic's CLI directly
    raise RuntimeError("run migrations with `imagegate db upgrade`")

context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
