"""Revision 0003's steps (budget scopes: one counter table), shared by revision 0003
and revision 0005, which runs them on a ledger that main's service branch stamped past a
placeholder 0003 (which changed nothing). Frozen like a revision: it keeps meaning what
it meant when the schema moves on."""

from __future__ import annotations

from collections import defaultdict

import sqlalchemy as sa
from alembic import op

__all__ = ["upgrade_to_scopes"]

# The types of escrowkit.ledger.schema, spelled out so that this revision keeps meaning
# what it meant when the schema moves on.
AMOUNT = sa.String(80).with_variant(sa.Numeric(78, 0), "postgresql")
SCOPE = sa.String(1024)
COUNTED = "('PENDING', 'COMMITTED', 'SETTLED')"


def upgrade_to_scopes() -> None:
    """Revision 0003's changes (see its docstring), run by 0003 or, for a ledger that
    passed 0003 as a placeholder, by 0005."""
    op.create_table(
        "counters",
        sa.Column("kind", sa.String(8), primary_key=True),
        sa.Column("name", SCOPE, primary_key=True),
        sa.Column("period", sa.String(10), primary_key=True),
        sa.Column("budget", AMOUNT),
        sa.Column("used", AMOUNT, nullable=False),
        sqlite_with_rowid=False,
    )
    into = "INSERT INTO counters (kind, name, period, budget, used) SELECT "
    pg = op.get_bind().dialect.name == "postgresql"

    def amount(column: str) -> str:  # as the column holds it (a NUMERIC on PostgreSQL)
        return f"CAST({column} AS NUMERIC(78, 0))" if pg else column

    budget, used = amount("total_budget"), amount("used")
    op.execute(f"{into}'scope', '', '', {budget}, {used} FROM treasury_state WHERE id = 1")
    op.execute(f"{into}'category', name, '', {amount('budget')}, {used} FROM categories")
    op.execute(f"{into}'day', agent_id, day, NULL, {used} FROM agent_days")
    _count_agent_scopes()

    with op.batch_alter_table("agents") as batch:
        batch.add_column(sa.Column("scope", SCOPE, nullable=False, server_default=""))
        batch.add_column(sa.Column("removed_at", sa.Float()))
    with op.batch_alter_table("reservations") as batch:
        batch.add_column(sa.Column("scope", SCOPE, nullable=False, server_default=""))
        batch.add_column(sa.Column("workflow", sa.String(128)))
    op.execute(
        "UPDATE reservations SET scope = 'agent:' || agent_id "
        "WHERE agent_id NOT LIKE '%/%' AND agent_id NOT LIKE '%:%'"
    )
    with op.batch_alter_table("approvals") as batch:
        batch.add_column(sa.Column("workflow", sa.String(128)))

    with op.batch_alter_table("treasury_state") as batch:
        batch.drop_column("total_budget")
        batch.drop_column("used")
    op.drop_table("categories")
    op.drop_table("agent_days")
    op.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")


def _count_agent_scopes() -> None:
    """``agent:<id>`` counters: each agent's counted reservations, summed exactly."""
    bind = op.get_bind()
    used: dict[str, int] = defaultdict(int)
    rows = bind.execute(
        sa.text(f"SELECT agent_id, amount FROM reservations WHERE status IN {COUNTED}")
    )
    for agent_id, amount in rows:
        if "/" not in agent_id and ":" not in agent_id:
            used[agent_id] += int(amount)
    if not used:
        return
    as_text = bind.dialect.name != "postgresql"
    counters = sa.table(
        "counters",
        sa.column("kind"),
        sa.column("name"),
        sa.column("period"),
        sa.column("budget"),
        sa.column("used"),
    )
    op.bulk_insert(
        counters,
        [
            {
                "kind": "scope",
                "name": f"agent:{agent_id}",
                "period": "",
                "budget": None,
                "used": str(amount) if as_text else amount,
            }
            for agent_id, amount in sorted(used.items())
        ],
    )
