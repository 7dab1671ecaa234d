"""Keeping the ledger true to the chain: ``recover``, ``sync``; ``freeze`` and ``unfreeze``."""

from __future__ import annotations

from typing import Annotated

import typer

from escrowkit.cli.options import open_coordinator
from escrowkit.cli.render import console


def recover(
    older_than: Annotated[
        float, typer.Option(help="Only reservations whose lease began this many seconds ago.")
    ] = 300,
) -> None:
    """Resolve spends left PENDING by a crash: commit or void each from the chain."""
    _, _, _, coordinator = open_coordinator()
    with coordinator:
        result = coordinator.recover(older_than=older_than)
    console.print(
        f"committed {len(result.committed)}, voided {len(result.voided)}, "
        f"left pending {len(result.left_pending)}"
    )


def sync() -> None:
    """Read the chain: settled escrows and provider refunds update the ledger."""
    _, _, _, coordinator = open_coordinator()
    with coordinator:
        result = coordinator.sync()
    console.print(f"settled {len(result.settled)}, refunded {len(result.refunded)}")


def freeze(reason: Annotated[str, typer.Argument(help="Why (shown in every denial).")]) -> None:
    """Deny every spend until unfreeze."""
    _, _, _, coordinator = open_coordinator()
    with coordinator:
        coordinator.freeze(reason)
    console.print(f"frozen: {reason}")


def unfreeze() -> None:
    """Allow spending again."""
    _, _, _, coordinator = open_coordinator()
    with coordinator:
        coordinator.unfreeze()
    console.print("unfrozen")
