"""Budget scopes for a ledger that skipped them: one made or upgraded by main between
the service merge and the scopes merge passed revision 0003 as a placeholder (which
changed nothing) and was stamped 0004, so the real 0003 never ran on it. Such a ledger
has no ``counters`` table; this revision runs 0003's steps on it. On every other ledger
(0003 ran) it changes nothing. 0004 added tables only, so the order does not matter.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from escrowkit.ledger.migrations.scopes import upgrade_to_scopes

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if "counters" not in sa.inspect(op.get_bind()).get_table_names():
        upgrade_to_scopes()


def downgrade() -> None:
    raise NotImplementedError("ledgers are upgraded, never downgraded: keep a backup")
