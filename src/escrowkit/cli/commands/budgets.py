"""``budgets set`` and ``budgets show``: scope budgets (DESIGN.md section 8) and their
balances. The total budget is ``budgets set-total``; category budgets come from ``apply``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from escrowkit.cli.options import JsonOption, open_coordinator, parse_amount
from escrowkit.cli.render import console, print_json

if TYPE_CHECKING:
    from escrowkit.contracts.token import TokenClient
    from escrowkit.coordinator import ScopeBalance

ScopeArgument = Annotated[
    str,
    typer.Argument(
        help="A scope path, outermost first: tenant:acme/workspace:alpha/workflow:t1/agent:x."
    ),
]


def budgets_set(
    scope: ScopeArgument,
    amount: Annotated[str | None, typer.Argument(help="Its lifetime budget, token units.")] = None,
    remove: Annotated[bool, typer.Option("--remove", help="Remove the scope's budget.")] = False,
) -> None:
    """Allocate a lifetime budget to a scope (audited; every process on the ledger enforces
    it). Children may be allocated more than their parent in sum: the parent is the cap."""
    if (amount is None) == (not remove):
        raise typer.BadParameter("give an AMOUNT, or --remove (not both)")
    _, _, stack, coordinator = open_coordinator(check=False)
    value = None if amount is None else parse_amount(stack.token, amount)
    with coordinator:
        coordinator.set_budget(scope, value)
        shown = coordinator.balances(scope)
    if value is None:
        console.print(f"{scope}: budget removed", highlight=False)
        return
    render_balances(shown, stack.token, title=f"scopes under {scope}")


def budgets_show(
    prefix: Annotated[
        str, typer.Argument(help="Only this scope and those under it (default: all).")
    ] = "",
    as_json: JsonOption = False,
) -> None:
    """Every scope with a budget (the total budget first), in path order: allocated,
    spent, reserved and remaining of each scope alone (its ancestors may leave less)."""
    _, _, stack, coordinator = open_coordinator()
    with coordinator:
        balances = coordinator.balances(prefix)
    if as_json:
        print_json(balances)
        return
    render_balances(balances, stack.token, title=f"scopes under {prefix}" if prefix else "scopes")


def render_balances(balances: list[ScopeBalance], token: TokenClient, *, title: str) -> None:
    """Scope balances as one table, a row per scope, indented by depth."""
    if not balances:
        console.print("no scope has a budget here", highlight=False)
        return
    table = Table(title=title)
    table.add_column("scope")
    for column in ("allocated", "spent", "reserved", "remaining"):
        table.add_column(column, justify="right")
    fmt = token.format
    for row in balances:
        depth = row.scope.count("/") + 1 if row.scope else 0
        name = "  " * depth + (row.scope.rsplit("/", 1)[-1] if row.scope else "(total budget)")
        table.add_row(
            name, fmt(row.allocated), fmt(row.spent), fmt(row.reserved), fmt(row.remaining)
        )
    console.print(table)
