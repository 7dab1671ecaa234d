"""Finding things again: ``spends`` (the ledger's spends) and ``approvals`` (pending)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from escrowkit.cli.options import JsonOption, open_coordinator
from escrowkit.cli.render import plain, print_json


class SpendState(StrEnum):
    """A ledger row's status, as ``--status`` takes it."""

    PENDING = "PENDING"
    COMMITTED = "COMMITTED"
    SETTLED = "SETTLED"
    VOIDED = "VOIDED"
    REFUNDED = "REFUNDED"


def spends(
    agent: Annotated[str | None, typer.Option(help="Only this agent's spends.")] = None,
    status: Annotated[
        list[SpendState] | None,
        typer.Option(case_sensitive=False, help="Only spends in this status (repeat)."),
    ] = None,
    last: Annotated[int | None, typer.Option(min=1, help="Only the newest N.")] = None,
    as_json: JsonOption = False,
) -> None:
    """The ledger's spends, oldest first, with their escrow ids."""
    from escrowkit.cli.listing import show_spends
    from escrowkit.coordinator import ReservationStatus

    _, _, stack, coordinator = open_coordinator()
    wanted = [ReservationStatus(s.value) for s in status or ()]
    with coordinator:
        rows = coordinator.reservations(*wanted)
    if agent is not None:
        rows = [row for row in rows if row.agent_id == agent]
    if last is not None:
        rows = rows[-last:]
    if as_json:
        # The salt only makes the escrow id; the id is what a reader looks up.
        print_json([{k: v for k, v in plain(row).items() if k != "salt"} for row in rows])
        return
    show_spends(rows, stack.token)


def approvals(as_json: JsonOption = False) -> None:
    """The spends waiting for a person (`escrowkit approve ID` or `escrowkit reject ID`)."""
    from escrowkit.cli.listing import show_approvals

    _, _, stack, coordinator = open_coordinator()
    with coordinator:
        pending = coordinator.report().pending_approvals
    if as_json:
        print_json(pending)
        return
    show_approvals(pending, stack.token)
