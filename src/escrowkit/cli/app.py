"""The ``escrowkit`` command: a thin shell over the library.

Settings come from ``escrowkit.toml`` and ``ESCROWKIT_*`` variables (see
:mod:`escrowkit.config.settings`). Amounts on the command line are token units (``25`` is 25
USDC). Errors print as one line and exit 1; ``--debug`` shows the traceback. Keys never
appear on the command line: a keystore file's password comes from
``ESCROWKIT_KEYSTORE_PASSWORD`` or a prompt.

This module is the table of contents: the root options, which command lives where, and
how errors end. The commands are in :mod:`escrowkit.cli.commands`.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from escrowkit.cli.commands import (
    agents,
    budgets,
    demo,
    escrows,
    keys,
    ledger,
    listings,
    pool,
    recovery,
    reports,
    service,
    spending,
    toolchain,
)
from escrowkit.cli.exits import EXIT_DENIED, EXIT_FAILED
from escrowkit.cli.options import RpcOption, State
from escrowkit.cli.parsing import RootGroup
from escrowkit.cli.render import err_console
from escrowkit.core.errors import EscrowKitError

__all__ = ["EXIT_DENIED", "EXIT_FAILED", "app", "main"]

app = typer.Typer(
    name="escrowkit",
    cls=RootGroup,
    help="Escrow and budget contracts for teams of AI agents sharing one treasury.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
agents_app = typer.Typer(help="Register, spawn, remove and list agents.", no_args_is_help=True)
escrow_app = typer.Typer(help="Show, settle or cancel an escrow.", no_args_is_help=True)
pool_app = typer.Typer(help="The BudgetPool treasury.", no_args_is_help=True)
budgets_app = typer.Typer(help="Budgets the ledger enforces.", no_args_is_help=True)
keys_app = typer.Typer(
    help="API keys of the service (agents, approvers, admins).", no_args_is_help=True
)
app.add_typer(agents_app, name="agents")
app.add_typer(escrow_app, name="escrow")
app.add_typer(pool_app, name="pool")
app.add_typer(budgets_app, name="budgets")
app.add_typer(keys_app, name="keys")


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"escrowkit {version('escrowkit')}")
        raise typer.Exit()


@app.callback()
def _main(
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="Settings file (default: ./escrowkit.toml)."),
    ] = None,
    rpc: RpcOption = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks and debug logs.")] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print the version and exit.", is_eager=True, callback=_version
        ),
    ] = False,
) -> None:
    """Global options go before or after the command (``escrowkit report --debug``)."""
    State.debug, State.config, State.rpc = debug, config, rpc
    handler = logging.StreamHandler()  # stderr, like the errors
    handler.setFormatter(
        logging.Formatter("%(levelname)s %(name)s: %(message)s") if debug else _Brief()
    )
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING, handlers=[handler])


class _Brief(logging.Formatter):
    """``warning: ...``: the library's warnings read like the CLI's own lines."""

    def format(self, record: logging.LogRecord) -> str:
        return f"{record.levelname.lower()}: {record.getMessage()}"


# In the order `escrowkit --help` lists them.
app.command("compile")(toolchain.compile_cmd)
app.command("chain")(toolchain.chain)
app.command("deploy")(toolchain.deploy)
agents_app.command("add")(agents.agents_add)
agents_app.command("spawn")(agents.agents_spawn)
agents_app.command("remove")(agents.agents_remove)
agents_app.command("list")(agents.agents_list)
app.command("spend")(spending.spend)
app.command("batch")(spending.batch)
app.command("approve")(spending.approve)
app.command("reject")(spending.reject)
app.command("approvals")(listings.approvals)
app.command("spends")(listings.spends)
app.command("report")(reports.report)
escrow_app.command("show")(escrows.escrow_show)
escrow_app.command("settle")(escrows.escrow_settle)
escrow_app.command("cancel")(escrows.escrow_cancel)
budgets_app.command("set-total")(ledger.set_total)
budgets_app.command("set")(budgets.budgets_set)
budgets_app.command("show")(budgets.budgets_show)
app.command("apply")(ledger.apply)
app.command("recover")(recovery.recover)
app.command("sync")(recovery.sync)
app.command("freeze")(recovery.freeze)
app.command("unfreeze")(recovery.unfreeze)
pool_app.command("contribute")(pool.pool_contribute)
app.command("demo")(demo.demo)
app.command("serve")(service.serve)
app.command("mcp")(service.mcp)
keys_app.command("create")(keys.keys_create)
keys_app.command("list")(keys.keys_list)
keys_app.command("revoke")(keys.keys_revoke)


def _fail(message: str) -> None:
    """On stderr, never wrapped to the terminal's width, never showing the RPC URL's key.

    One line, except solc's diagnostics, which keep their own lines.
    """
    from escrowkit.core.urls import redact_url

    for url in (State.rpc_url, State.rpc):
        if url:
            message = redact_url(message, url)
    err_console.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)


def main() -> None:
    """Entry point: escrowkit errors become one line on stderr and exit code 1."""
    try:
        app()
    except EscrowKitError as exc:
        if State.debug:
            raise
        _fail(str(exc))
        sys.exit(1)
    except Exception as exc:
        if State.debug:
            raise
        _fail(f"{type(exc).__name__}: {exc} (run with --debug for the traceback)")
        sys.exit(1)


if __name__ == "__main__":
    main()
