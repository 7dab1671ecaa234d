"""Budget scopes: every budget and usage counter in one table, scopes on agents and rows.

- ``counters`` (kind, name, period, budget, used) takes the total budget and its usage
  (the root scope, from ``treasury_state.total_budget/used``), the category budgets (from
  ``categories``) and the agents' day counters (from ``agent_days``), whose tables and
  columns are dropped. Each agent's own scope (``agent:<id>``) gets its lifetime usage,
  summed from the counted reservations (in Python: amounts are exact integers).
- ``agents.scope`` (where the agent sits; existing agents at the root) and
  ``agents.removed_at`` (remove_agent; NULL: enabled).
- ``reservations.scope`` (the agent's path the row charged: ``agent:<id>`` for existing
  rows, '' for an id with '/' or ':', which cannot be a scope) and ``workflow``;
  ``approvals.workflow``.
"""

from __future__ import annotations

from collections import defaultdict

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# The types of escrowkit.ledger.schema, spelled out so that this revision keeps meaning
# what it meant when the schema moves on.
AMOUNT = sa.String(80).with_variant(sa.Numeric(78, 0), "postgresql")
SCOPE = sa.String(1024)
COUNTED = "('PENDING', 'COMMITTED', 'SETTLED')"


def upgrade() -> None:
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


def downgrade() -> None:
    raise NotImplementedError("ledgers are upgraded, never downgraded: keep a backup")
