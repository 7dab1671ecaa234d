"""What every command shares: the global options, settings, the chain, the coordinator.

The library is imported inside each function, never at the top: ``escrowkit --help``
must not pay for web3 (about a second).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from escrowkit.config.settings import Settings
    from escrowkit.contracts.stack import Stack
    from escrowkit.contracts.token import TokenClient
    from escrowkit.coordinator import BudgetCoordinator
    from escrowkit.evm.chain import Chain


class State:
    """The root options of this invocation (``--config``, ``--rpc``, ``--debug``)."""

    debug = False
    config: Path | None = None
    rpc: str | None = None
    rpc_url: str | None = None  # the URL in use, so that errors never show its secrets


#: ``--rpc``: on the root command and on ``deploy``.
RpcOption = Annotated[
    str | None, typer.Option("--rpc", help="JSON-RPC URL (overrides the settings).")
]
#: ``--json`` of the commands that print one spend's result.
JsonResultOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
#: ``--json`` of the commands that print a record.
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def open_settings() -> Settings:
    """The settings from ``--config`` (or the defaults), with ``--rpc`` over them."""
    from escrowkit.config.settings import load_settings, with_overrides

    settings = with_overrides(load_settings(State.config), rpc_url=State.rpc)
    State.rpc_url = settings.rpc_url
    return settings


def open_chain(settings: Settings) -> Chain:
    """The chain of the settings; asks for the keystore's password when it must."""
    from escrowkit.config import bootstrap
    from escrowkit.core.errors import ConfigurationError

    password = None
    keystore = settings.keystore
    if keystore is not None and not os.environ.get("ESCROWKIT_KEYSTORE_PASSWORD"):
        if not keystore.is_file():
            raise ConfigurationError(f"keystore file {keystore} does not exist")
        password = _ask_password(keystore)
    return bootstrap.open_chain(settings, password=password)


def _ask_password(keystore: Path) -> str:
    """The keystore's password from the terminal (or a pipe); with neither, say how else."""
    from escrowkit.core.errors import ConfigurationError

    try:
        # On stderr, like the errors: stdout is for what a pipe reads (--json).
        return str(typer.prompt(f"Password for {keystore.name}", hide_input=True, err=True))
    except typer.Abort:
        if sys.stdin is not None and sys.stdin.isatty():
            raise  # the user pressed Ctrl-C or Ctrl-D at the prompt
        raise ConfigurationError(
            f"keystore {keystore.name} needs its password and there is no terminal to ask "
            "on: set ESCROWKIT_KEYSTORE_PASSWORD"
        ) from None


def open_stack(settings: Settings, chain: Chain) -> Stack:
    """The stack the settings' manifest records for ``chain``."""
    from escrowkit.config import bootstrap

    return bootstrap.open_stack(settings, chain)


def open_coordinator(*, check: bool = True) -> tuple[Settings, Chain, Stack, BudgetCoordinator]:
    """Settings, chain, the deployed stack and a coordinator on the settings' ledger
    (``check=False``: without comparing the settings with the ledger)."""
    from escrowkit.config import bootstrap

    settings = open_settings()
    chain = open_chain(settings)
    stack = bootstrap.open_stack(settings, chain)
    return settings, chain, stack, bootstrap.open_coordinator(settings, chain, stack, check=check)


def parse_amount(token: TokenClient, text: str) -> int:
    """Token units on the command line (``25``, ``0.5``) to base units."""
    return token.units(text)
