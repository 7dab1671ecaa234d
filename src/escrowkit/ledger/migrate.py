"""Bring a ledger to the schema this code writes, inside the transaction that opens it.

- A new database gets every table at the head revision (and is stamped with it).
- A ledger of an older escrowkit is upgraded in place with the alembic migrations in
  :mod:`escrowkit.ledger.migrations` (one made before migrations existed, at
  ``meta.schema_version = 1``, is stamped ``0001`` first).
- A ledger of a newer escrowkit (a revision this code does not know) is refused: writing
  to it with an older schema in mind could lose what the newer one records.

Alembic is imported only when a migration runs; opening a current ledger costs two small
queries.
"""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from escrowkit.core.errors import ConfigurationError
from escrowkit.ledger.schema import HEAD_REVISION, REVISIONS, metadata

__all__ = ["current_revision", "prepare"]

logger = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")


def prepare(conn: Connection, where: str) -> None:
    """Create, upgrade or refuse the ledger on ``conn`` (``where`` names it in errors)."""
    tables = set(inspect(conn).get_table_names())
    if "treasury_state" not in tables:
        metadata.create_all(conn)
        _stamp(conn, HEAD_REVISION)
        return
    current = current_revision(conn, tables)
    if current not in REVISIONS:
        raise ConfigurationError(
            f"{where} is at schema revision {current}, which this escrowkit does not know "
            f"(it knows up to {HEAD_REVISION}): it was made by a newer escrowkit; upgrade "
            "escrowkit to use it"
        )
    if current != HEAD_REVISION:
        logger.warning("upgrading %s from schema revision %s to %s", where, current, HEAD_REVISION)
        _upgrade(conn, current, stamped="alembic_version" in tables)


def current_revision(conn: Connection, tables: set[str] | None = None) -> str:
    """The ledger's revision: alembic's, or ``0001`` for a ledger from before migrations."""
    tables = set(inspect(conn).get_table_names()) if tables is None else tables
    if "alembic_version" in tables:
        found = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        return str(found)
    version = conn.execute(text("SELECT value FROM meta WHERE key = 'schema_version'")).scalar()
    if version != "1":
        raise ConfigurationError(f"an unknown ledger (schema version {version!r})")
    return REVISIONS[0]


def _stamp(conn: Connection, revision: str) -> None:
    conn.execute(
        text(
            "CREATE TABLE IF NOT EXISTS alembic_version "
            "(version_num VARCHAR(32) NOT NULL PRIMARY KEY)"
        )
    )
    conn.execute(text("DELETE FROM alembic_version"))
    conn.execute(text("INSERT INTO alembic_version (version_num) VALUES (:r)"), {"r": revision})


def _upgrade(conn: Connection, current: str, *, stamped: bool) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = conn
    if not stamped:
        _stamp(conn, current)
    command.upgrade(config, HEAD_REVISION)
