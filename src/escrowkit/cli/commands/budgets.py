"""``budgets set`` and ``budgets show``: scope budgets (DESIGN.md section 8) and their
balances. The total budget is ``budgets set-total``; category budgets come from ``apply``."""

from __future__ import annotations

from typing import Annotated

import typer

from escrowkit.cli.options import JsonOption, open_coordinator, parse_amount
from escrowkit.cli.render import console, print_json
from escrowkit.cli.report_view import render_balances

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
