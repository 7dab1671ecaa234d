"""The schema of escrowkit 0.1.0 (``meta.schema_version = 1``), before migrations.

Ledgers of that version have no ``alembic_version`` table: the Store stamps them with
this revision and upgrades them from here. New ledgers are created at the head.
"""

from __future__ import annotations

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing: a ledger at this revision was made by escrowkit 0.1.0."""


def downgrade() -> None:
    raise NotImplementedError("the baseline has nothing below it")
