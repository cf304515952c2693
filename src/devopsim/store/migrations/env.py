"""Alembic environment: runs on the connection :func:`devopsim.store.migrate.upgrade` hands over."""

from __future__ import annotations

from alembic import context

from devopsim.store.schema import VERSION_TABLE

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=None, version_table=VERSION_TABLE)
with context.begin_transaction():
    context.run_migrations()
