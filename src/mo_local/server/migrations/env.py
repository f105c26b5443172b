"""Alembic environment: always driven programmatically with a connection in a transaction."""

from __future__ import annotations

from alembic import context

from mo_local.server.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `mo-server migrate` (mo_local.server.migrate)")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
