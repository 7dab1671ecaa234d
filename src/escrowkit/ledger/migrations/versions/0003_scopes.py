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

from escrowkit.ledger.migrations.scopes import upgrade_to_scopes

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    upgrade_to_scopes()


def downgrade() -> None:
    raise NotImplementedError("ledgers are upgraded, never downgraded: keep a backup")
