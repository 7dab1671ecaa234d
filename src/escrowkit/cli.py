"""The ``escrowkit`` command: a thin shell over the library.

Errors print as one line and exit non-zero; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from escrowkit.errors import EscrowKitError

app = typer.Typer(
    name="escrowkit",
    help="Escrow and budget contracts for teams of AI agents sharing one treasury.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()
err_console = Console(stderr=True)


class _State:
    debug = False


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks and debug logs.")] = False,
) -> None:
    _State.debug = debug
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


@app.command("compile")
def compile_cmd(
    contracts: Annotated[
        Path | None, typer.Option(help="Folder of .sol sources (default: the project's).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Where to write artifacts (default: the package's).")
    ] = None,
    check: Annotated[
        bool, typer.Option("--check", help="Only report stale artifacts; exit 1 if any.")
    ] = False,
) -> None:
    """Compile the contracts and refresh the committed artifacts."""
    from escrowkit.compiler import (
        ARTIFACTS_DIR,
        compile_contracts,
        find_solc,
        stale_artifacts,
        write_artifacts,
    )

    solc = find_solc()
    console.print(f"using {solc}")
    with console.status("compiling..."):
        artifacts = compile_contracts(contracts, solc=solc)
    folder = out or ARTIFACTS_DIR
    if check:
        stale = stale_artifacts(artifacts, folder)
        if stale:
            err_console.print(f"stale artifacts: {', '.join(stale)}; run `escrowkit compile`")
            raise typer.Exit(1)
        console.print(f"{len(artifacts)} artifacts up to date")
        return
    written = write_artifacts(artifacts, folder)
    console.print(f"wrote {len(written)} artifacts to {folder}")


@app.command()
def demo() -> None:
    """Run the main job on an embedded chain: deploy, mint, and show balances."""
    from escrowkit.chain import Chain
    from escrowkit.deploy import deploy
    from escrowkit.token import TokenClient

    with console.status("starting an embedded chain..."):
        chain = Chain.embedded()
    owner, alice, bob = chain.accounts[:3]
    contract = deploy(chain, "MockUSDC", sender=owner)
    usdc = TokenClient(chain, contract.address)
    console.print(f"deployed MockUSDC at {usdc.address} on chain {chain.chain_id}")
    usdc.mint(alice, usdc.units("1000"), sender=owner)
    usdc.mint(bob, usdc.units("250.5"), sender=owner)
    usdc.transfer(bob, usdc.units("40"), sender=alice)
    table = Table(title="MockUSDC balances")
    table.add_column("account")
    table.add_column("balance", justify="right")
    for name, address in (("alice", alice), ("bob", bob)):
        table.add_row(f"{name} {address}", usdc.format(usdc.balance_of(address)))
    table.add_row("total supply", usdc.format(usdc.total_supply()))
    console.print(table)


def main() -> None:
    """Entry point: escrowkit errors become one line on stderr and exit code 1."""
    try:
        app()
    except EscrowKitError as exc:
        if _State.debug:
            raise
        err_console.print(f"error: {exc}", markup=False, highlight=False)
        sys.exit(1)
    except Exception as exc:
        if _State.debug:
            raise
        err_console.print(
            f"error: {type(exc).__name__}: {exc} (run with --debug for the traceback)",
            markup=False,
            highlight=False,
        )
        sys.exit(1)


if __name__ == "__main__":
    main()
