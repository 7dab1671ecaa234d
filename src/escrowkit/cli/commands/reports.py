"""``report``: the budget, as tables or JSON."""

from __future__ import annotations

from typing import Annotated

import typer

from escrowkit.cli.options import open_coordinator
from escrowkit.cli.render import plain, print_json, render_report


def report(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON (amounts as strings).")
    ] = False,
    sync: Annotated[
        bool, typer.Option(help="Read the chain first so refunds are credited.")
    ] = False,
) -> None:
    """The budget: spent, reserved, remaining, per agent and category, approvals."""
    _, _, stack, coordinator = open_coordinator()
    with coordinator:
        if sync:
            coordinator.sync()
        budget = coordinator.report()
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
            }
        )
        return
    render_report(budget, stack.token)
