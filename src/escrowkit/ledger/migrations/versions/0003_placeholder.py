"""PLACEHOLDER for revision 0003 (budget scopes), which the scopes branch adds.

Only on the service branch, so that its migration chain (0002 -> 0003 -> 0004) resolves
before the merge: it changes nothing. Delete this file when the scopes branch's real 0003
is merged (two files with revision "0003" make alembic refuse the chain, so
tests/unit/test_migrations.py fails loudly until then).
"""

from __future__ import annotations

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    raise NotImplementedError("ledgers are upgraded, never downgraded: keep a backup")
