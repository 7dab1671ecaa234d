"""``report``: the budget, as tables or JSON."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from escrowkit.cli.options import open_coordinator
from escrowkit.cli.render import plain, print_json
from escrowkit.cli.report_view import render_report

if TYPE_CHECKING:
    from escrowkit.coordinator import BudgetCoordinator, BudgetReport


def report(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON (amounts as strings).")
    ] = False,
    sync: Annotated[
        bool, typer.Option(help="Read the chain first so refunds are credited.")
    ] = False,
) -> None:
    """The budget: spent, reserved, remaining, per agent and category, approvals; a
    warning when it is over-spent or the paying account holds less than what remains."""
    _, _, stack, coordinator = open_coordinator()
    with coordinator:
        if sync:
            coordinator.sync()
        budget = coordinator.report()
        warnings = report_warnings(coordinator, budget)
    if as_json:
        token = stack.token
        print_json(
            {
                "token": {
                    "symbol": token.symbol,
                    "decimals": token.decimals,
                    "address": token.address,
                },
                **plain(budget),
                "warnings": warnings,
            }
        )
        return
    render_report(budget, stack.token, warnings)


def report_warnings(coordinator: BudgetCoordinator, budget: BudgetReport) -> list[str]:
    """What a reader of the report should act on: more counted than the budget allows
    (the budget was lowered below what was already spent), or less money where the
    spends come from than the budget still allows."""
    fmt = coordinator.units.format
    found = []
    counted = budget.total_spent + budget.reserved
    if counted > budget.total_budget:
        found.append(
            f"over-spent: {fmt(counted)} spent and reserved, {fmt(counted - budget.total_budget)} "
            f"above the total budget {fmt(budget.total_budget)}; every spend is denied until "
            "the budget is raised (`escrowkit budgets set-total`) or refunds come back"
        )
    if budget.remaining:
        short = coordinator.check_funds(budget.remaining)
        if short is not None:
            found.append(
                f"the budget still allows {fmt(budget.remaining)}, but {short}; spends "
                "beyond what it holds will fail"
            )
    return found
