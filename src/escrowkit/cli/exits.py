"""Exit codes of ``spend``, ``batch`` and ``approve``.

0 approved or waiting for approval. Denied is 3, not 2, which is click's usage error: a
mistyped option must not read as a denial. Their own module because the commands raise
them and :mod:`escrowkit.cli.app`, which imports the commands, re-exports them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from escrowkit.coordinator import SpendResult

EXIT_FAILED = 1
EXIT_DENIED = 3


def exit_for(result: SpendResult) -> None:
    """0 when approved or waiting for approval; 3 when denied; 1 when it failed."""
    status = result.status.name
    if status == "DENIED":
        raise typer.Exit(EXIT_DENIED)
    if status == "FAILED":
        raise typer.Exit(EXIT_FAILED)
