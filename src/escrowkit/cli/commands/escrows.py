"""``escrow show``, ``escrow settle`` and ``escrow cancel``: one escrow, by id.

``show`` says what each party may do now and from when (Escrow's state table, read from
:mod:`escrowkit.contracts.escrow_rules`), times as UTC dates; a settle or cancel that
comes too early or too late says the window in words instead of ``TooEarly(...)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

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

if TYPE_CHECKING:
    from escrowkit.contracts.escrow import EscrowRecord
    from escrowkit.contracts.stack import Stack

#: The id argument of every ``escrow`` command.
EscrowIdArgument = Annotated[str, typer.Argument(help="0x-prefixed 32-byte escrow id.")]


def escrow_show(
    escrow_id: EscrowIdArgument,
    as_json: JsonOption = False,
) -> None:
    """An escrow's record, what each party may do now and from when, and its events."""
    from escrowkit.contracts.escrow_rules import escrow_actions
    from escrowkit.core.errors import NotFound

    settings = open_settings()
    chain_ = open_chain(settings)
    stack = open_stack(settings, chain_)
    record = stack.escrow.get(escrow_id)
    if not record.exists:
        # The contract answers zeros for an id it never saw; a typo is not an empty escrow.
        raise NotFound(f"no escrow {escrow_id} on Escrow {stack.escrow.address}")
    history = stack.escrow.history(escrow_id)
    now = chain_.now()
    actions = escrow_actions(record)
    if as_json:
        # The event's name is a ClassVar, which asdict leaves out.
        events = [{"event": event.event, **plain(event)} for event in history]
        allowed = [{**plain(a), "allowed_now": a.open_at(now)} for a in actions]
        print_json({"escrow": record, "chain_time": now, "actions": allowed, "history": events})
        return
    _show_record(record, stack, now)
    from escrowkit.cli.listing import paragraph
    from escrowkit.cli.times import action_words

    console.print("who may do what:" if actions else "nothing more can happen to it")
    for action in actions:
        paragraph(action_words(action, now), indent=2)
    paragraph("events: " + ", ".join(type(event).__name__ for event in history), indent=0)


def _show_record(record: EscrowRecord, stack: Stack, now: int) -> None:
    from escrowkit.cli.times import duration, when

    # The id on a line of its own: in a table's title or cell it would be cut at 80 columns.
    console.print(f"escrow {record.id.to_0x_hex()}", highlight=False)
    table = Table(show_header=False)
    table.add_column(no_wrap=True)
    table.add_column(overflow="fold")
    table.add_row("state", record.state.name)
    table.add_row("requester", record.requester)
    table.add_row("provider", record.provider)
    table.add_row("amount", stack.token.format(record.amount))
    table.add_row("deadline", when(record.deadline, now))
    release = record.release_at
    window = "never ends" if release is None else duration(record.dispute_window)
    table.add_row("dispute window", f"{window} after the deadline")
    if release is not None:
        table.add_row("auto-release", when(release, now))
    table.add_row("chain time", when(now, now).removesuffix(" (now)"))
    console.print(table)


def escrow_settle(
    escrow_id: EscrowIdArgument,
) -> None:
    """Release a funded escrow to its provider (as the requester)."""
    row = _as_requester("settle", lambda coordinator: coordinator.settle(escrow_id))
    console.print(f"settled {escrow_id}: ledger {row.status.name}")


def escrow_cancel(
    escrow_id: EscrowIdArgument,
) -> None:
    """Cancel an escrow as the requester (a refund is credited back). A funded escrow can
    be cancelled from its deadline until its dispute window ends (`escrow show` says when)."""
    row = _as_requester("cancel", lambda coordinator: coordinator.cancel(escrow_id))
    console.print(f"cancelled {escrow_id}: ledger {row.status.name}")


def _as_requester(action: str, act: Callable[[Any], Any]) -> Any:
    """Run ``act(coordinator)``; a revert about the time window is said in words."""
    from escrowkit.cli.times import window_error
    from escrowkit.core.errors import ContractRevert, EscrowKitError

    _, chain_, _, coordinator = open_coordinator()
    with coordinator:
        try:
            return act(coordinator)
        except ContractRevert as exc:
            words = window_error(exc, action, chain_.now())
            if words is None:
                raise
            raise EscrowKitError(words) from exc
