"""What the ``escrowkit`` command prints: JSON for pipes, rich text and tables for people.

Everything meant for a pipe goes to stdout; progress, prompts and errors go to stderr
(:data:`err_console`), so ``escrowkit report --json | jq`` reads JSON and nothing else.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, is_dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from escrowkit.contracts.token import TokenClient
    from escrowkit.coordinator import BudgetReport, SpendRequest, SpendResult

#: What a command shows (stdout).
console = Console()
#: Progress, prompts and errors (stderr).
err_console = Console(stderr=True)


def plain(value: Any) -> Any:
    """JSON-safe. Every int (amounts above all) becomes a decimal string, so no JSON
    consumer rounds it through a double; enums become their names."""
    if isinstance(value, Enum):
        return value.name if isinstance(value.value, int) else value.value
    if isinstance(value, bool) or value is None or isinstance(value, (str, float)):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    if is_dataclass(value) and not isinstance(value, type):
        return {k: plain(v) for k, v in asdict(value).items()}
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [plain(v) for v in value]
    return str(value)


def print_json(data: Any) -> None:
    """Print ``data`` to stdout as indented JSON, through :func:`plain`."""
    sys.stdout.write(json.dumps(plain(data), indent=2, sort_keys=True) + "\n")


def status_style(status: str) -> str:
    """The rich style of a spend status's name: green approved, red denied or failed."""
    return {
        "APPROVED": "green",
        "PENDING_APPROVAL": "yellow",
        "DENIED": "red",
        "FAILED": "red",
    }.get(status, "")


def show_result(result: SpendResult, token: TokenClient) -> None:
    """One spend's outcome: status and reason, then its ids and what remains."""
    status = result.status.name
    console.print(f"[{status_style(status)}]{status}[/]: {result.reason}", highlight=False)
    if result.escrow_id:
        console.print(f"  escrow   {result.escrow_id}")
    if result.approval_id:
        console.print(f"  approval {result.approval_id}")
    if result.remaining_daily is not None:
        console.print(f"  remaining today {token.format(result.remaining_daily)}")
    if result.remaining_total is not None:
        console.print(f"  remaining total {token.format(result.remaining_total)}")


def show_batch(
    file: Path, results: list[tuple[SpendRequest, SpendResult]], token: TokenClient
) -> None:
    """A batch's outcomes as one table, a row per spend."""
    table = Table(title=f"{len(results)} spends from {file.name}")
    for column in ("agent", "amount", "status", "reason"):
        table.add_column(column)
    for request, result in results:
        status = result.status.name
        table.add_row(
            request.agent_id,
            token.format(request.amount),
            f"[{status_style(status)}]{status}[/]",
            result.reason,
        )
    console.print(table)


def render_report(budget: BudgetReport, token: TokenClient) -> None:
    """The report as rich tables."""
    fmt = token.format
    summary = Table(title="budget", show_header=False)
    summary.add_column(justify="left")
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
        agents.add_column(column, justify="left" if column == "agent" else "right")
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
        for column in ("category", "spent", "budget", "remaining"):
            categories.add_column(column)
        for cat in budget.by_category.values():
            categories.add_row(
                cat.category,
                fmt(cat.spent),
                "-" if cat.budget is None else fmt(cat.budget),
                "-" if cat.remaining is None else fmt(cat.remaining),
            )
        console.print(categories)
    if budget.pending_approvals:
        pending = Table(title="pending approvals")
        for column in ("approval", "agent", "amount", "purpose"):
            pending.add_column(column)
        for approval_id, item in budget.pending_approvals.items():
            pending.add_row(approval_id, item.agent_id, fmt(item.amount), item.purpose)
        console.print(pending)
    for alert in budget.alerts:
        console.print(
            f"[yellow]alert[/] {alert.kind} {alert.scope}: {alert.threshold}% "
            f"({fmt(alert.spent)} of {fmt(alert.limit)})"
        )
