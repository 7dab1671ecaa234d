"""``escrow show``, ``escrow settle`` and ``escrow cancel``: one escrow, by id."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from escrowkit.cli.options import (
    JsonOption,
    open_chain,
    open_coordinator,
    open_settings,
    open_stack,
)
from escrowkit.cli.render import console, plain, print_json

#: The id argument of every ``escrow`` command.
EscrowIdArgument = Annotated[str, typer.Argument(help="0x-prefixed 32-byte escrow id.")]


def escrow_show(
    escrow_id: EscrowIdArgument,
    as_json: JsonOption = False,
) -> None:
    """An escrow's record and its events."""
    from escrowkit.core.errors import NotFound

    settings = open_settings()
    chain_ = open_chain(settings)
    stack = open_stack(settings, chain_)
    record = stack.escrow.get(escrow_id)
    if not record.exists:
        # The contract answers zeros for an id it never saw; a typo is not an empty escrow.
        raise NotFound(f"no escrow {escrow_id} on Escrow {stack.escrow.address}")
    history = stack.escrow.history(escrow_id)
    if as_json:
        # The event's name is a ClassVar, which asdict leaves out.
        events = [{"event": event.event, **plain(event)} for event in history]
        print_json({"escrow": record, "history": events})
        return
    token = stack.token
    table = Table(title=f"escrow {escrow_id}", show_header=False)
    table.add_column()
    table.add_column()
    table.add_row("state", record.state.name)
    table.add_row("requester", record.requester)
    table.add_row("provider", record.provider)
    table.add_row("amount", token.format(record.amount))
    table.add_row("deadline", str(record.deadline))
    table.add_row("dispute window", f"{record.dispute_window} s")
    console.print(table)
    for event in history:
        console.print(f"  {type(event).__name__}", highlight=False)


def escrow_settle(
    escrow_id: EscrowIdArgument,
) -> None:
    """Release a funded escrow to its provider (as the requester)."""
    _, _, _, coordinator = open_coordinator()
    with coordinator:
        row = coordinator.settle(escrow_id)
    console.print(f"settled {escrow_id}: ledger {row.status.name}")


def escrow_cancel(
    escrow_id: EscrowIdArgument,
) -> None:
    """Cancel an escrow as the requester (a refund is credited back)."""
    _, _, _, coordinator = open_coordinator()
    with coordinator:
        row = coordinator.cancel(escrow_id)
    console.print(f"cancelled {escrow_id}: ledger {row.status.name}")
