"""Alembic's environment: always run on the connection the Store hands over (inside the
transaction that holds the database's write lock), never from an alembic.ini URL."""

from __future__ import annotations

from alembic import context

from escrowkit.ledger.schema import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=True,  # SQLite changes tables by copying them
    transaction_per_migration=False,
)
with context.begin_transaction():
    context.run_migrations()
