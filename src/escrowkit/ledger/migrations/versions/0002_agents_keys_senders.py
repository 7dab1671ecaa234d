"""Idempotency keys per agent, approval results, per-row senders, shared nonces.

- ``idempotency_keys`` gets ``agent_id`` in its primary key (two agents may use one key
  string). Existing keys take the agent of the spend or approval they led to; a key that
  led to neither (a denial) gets ``''`` and is still replayed for the agent that made it,
  because its fingerprint includes the agent.
- ``approvals.result``: an approved approval's result, replayed when it is approved again.
- ``reservations.sender`` and ``agent_address``: the key that sends for a row, and the
  agent address its escrow id comes from. In treasury mode the sender is the requester;
  otherwise (pool mode) it is unknown for existing rows, and recovery uses its own key.
- ``nonces``: the next nonce per (chain, sender), shared by every process on the ledger.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A new primary key: copy the table (the same on SQLite and PostgreSQL).
    op.create_table(
        "idempotency_keys_0002",
        sa.Column("agent_id", sa.String(128), primary_key=True),
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("result", sa.Text()),
        sa.Column("reservation_id", sa.String(40)),
        sa.Column("created_at", sa.Float(), nullable=False),
    )
    # The agent of the spend a key led to, else of the approval it opened (a pending
    # approval's request keeps its key), else '' (a denial: see the module).
    op.execute(
        "INSERT INTO idempotency_keys_0002 "
        "(agent_id, key, fingerprint, result, reservation_id, created_at) "
        "SELECT COALESCE("
        "(SELECT r.agent_id FROM reservations r WHERE r.id = k.reservation_id), "
        "(SELECT MIN(a.agent_id) FROM approvals a WHERE a.idempotency_key = k.key), ''), "
        "k.key, k.fingerprint, k.result, k.reservation_id, k.created_at "
        "FROM idempotency_keys k"
    )
    op.drop_table("idempotency_keys")
    op.rename_table("idempotency_keys_0002", "idempotency_keys")
    with op.batch_alter_table("approvals") as batch:
        batch.add_column(sa.Column("result", sa.Text()))
    with op.batch_alter_table("reservations") as batch:
        batch.add_column(sa.Column("sender", sa.String(42)))
        batch.add_column(sa.Column("agent_address", sa.String(42)))
    op.execute(
        sa.text(
            "UPDATE reservations SET sender = requester WHERE EXISTS (SELECT 1 FROM meta "
            "WHERE meta.key = 'binding' AND meta.value LIKE :treasury_mode)"
        ).bindparams(treasury_mode="%:treasury")
    )
    op.create_table(
        "nonces",
        sa.Column("chain_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("sender", sa.String(42), primary_key=True),
        sa.Column("next_nonce", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
    )
    op.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")


def downgrade() -> None:
    raise NotImplementedError("ledgers are upgraded, never downgraded: keep a backup")
