"""Changing what the ledger enforces, explicitly: ``apply`` (the settings file's agents and
category budgets) and ``budgets set-total``. Opening a coordinator never does it."""

from __future__ import annotations

from typing import Annotated

import typer

from escrowkit.cli.options import open_coordinator, parse_amount
from escrowkit.cli.render import console


def apply() -> None:
    """Make the ledger enforce the settings file's agents and category budgets (audited;
    in pool mode agents' limits are written on-chain too)."""
    from escrowkit.config import bootstrap

    settings, _, _, coordinator = open_coordinator(check=False)
    with coordinator:
        changed = bootstrap.apply_settings(settings, coordinator)
    if not changed:
        console.print("the ledger already follows the settings file")
    for line in changed:
        console.print(f"applied: {line}", highlight=False)


def set_total(
    amount: Annotated[str, typer.Argument(help="The new total budget, token units.")],
) -> None:
    """Change the total budget every process on the ledger enforces (audited)."""
    _, _, stack, coordinator = open_coordinator(check=False)
    value = parse_amount(stack.token, amount)
    with coordinator:
        before = coordinator.total_budget
        coordinator.set_total_budget(value)
    fmt = stack.token.format
    console.print(f"total budget {fmt(before)} -> {fmt(value)}")
