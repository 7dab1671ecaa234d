"""``report`` for people: the budget's tables, its alerts and warnings.

Amount columns may wrap in an 80-column terminal; id columns never do.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich.table import Table

from escrowkit.cli.listing import show_approvals
from escrowkit.cli.render import console, show_warnings

if TYPE_CHECKING:
    from escrowkit.contracts.token import TokenClient
    from escrowkit.coordinator import BudgetReport, ScopeBalance

__all__ = ["render_balances", "render_report"]


def render_report(budget: BudgetReport, token: TokenClient, warnings: Sequence[str] = ()) -> None:
    """The report as rich tables, ids never cut (an 80-column terminal wraps amounts)."""
    fmt = token.format
    summary = Table(title="budget", show_header=False)
    summary.add_column(justify="left", no_wrap=True)
    summary.add_column(justify="right")
    summary.add_row("total budget", fmt(budget.total_budget))
    summary.add_row("spent (net of refunds)", fmt(budget.total_spent))
    summary.add_row("reserved (in flight)", fmt(budget.reserved))
    summary.add_row("remaining", fmt(budget.remaining))
    if budget.frozen:
        summary.add_row("[red]FROZEN[/]", budget.frozen)
    console.print(summary)
    agents = Table(title="by agent")
    for column in ("agent", "spent", "today", "daily limit", "left today"):
        if column == "agent":
            agents.add_column(column, no_wrap=True)
        else:
            agents.add_column(column, justify="right")
    for agent in budget.by_agent.values():
        agents.add_row(
            agent.agent_id,
            fmt(agent.spent),
            fmt(agent.spent_today),
            fmt(agent.daily_limit),
            fmt(agent.remaining_today),
        )
    console.print(agents)
    if budget.by_category:
        categories = Table(title="by category")
        categories.add_column("category", no_wrap=True)
        for column in ("spent", "budget", "remaining"):
            categories.add_column(column, justify="right")
        for cat in budget.by_category.values():
            categories.add_row(
                cat.category,
                fmt(cat.spent),
                "-" if cat.budget is None else fmt(cat.budget),
                "-" if cat.remaining is None else fmt(cat.remaining),
            )
        console.print(categories)
    if any(row.scope for row in budget.scopes):  # more than the root (the summary above)
        render_balances(budget.scopes, token, title="by scope")
    if budget.pending_approvals:
        console.print("pending approvals")
        show_approvals(budget.pending_approvals, token)
    for alert in budget.alerts:
        console.print(
            f"[yellow]alert[/] {alert.kind} {alert.scope}: {alert.threshold}% "
            f"({fmt(alert.spent)} of {fmt(alert.limit)})"
        )
    show_warnings(warnings)


def render_balances(balances: list[ScopeBalance], token: TokenClient, *, title: str) -> None:
    """Scope balances as one table, a row per scope (its full path, so that a scope whose
    parent has no budget of its own is not taken for a child of the row above)."""
    if not balances:
        console.print("no scope has a budget here", highlight=False)
        return
    table = Table(title=title)
    table.add_column("scope", no_wrap=True)
    for column in ("allocated", "spent", "reserved", "remaining"):
        table.add_column(column, justify="right")
    fmt = token.format
    for row in balances:
        name = row.scope or "(total budget)"
        table.add_row(
            name, fmt(row.allocated), fmt(row.spent), fmt(row.reserved), fmt(row.remaining)
        )
    console.print(table)
