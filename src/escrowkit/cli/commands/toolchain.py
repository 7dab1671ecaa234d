"""Build and run: ``compile``, ``chain`` (a local anvil) and ``deploy``."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from escrowkit.cli.options import RpcOption, State, open_chain, open_settings
from escrowkit.cli.render import console, err_console

if TYPE_CHECKING:
    from escrowkit.contracts.stack import Stack


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
    """Compile the contracts and refresh the committed artifacts.

    Contracts under contracts/test/ (hostile tokens, lenses) go to tests/artifacts/ beside
    the sources, not into the package; MockUSDC is shipped.
    """
    from escrowkit.build.compiler import (
        ARTIFACTS_DIR,
        compile_contracts,
        default_contracts_dir,
        find_solc,
        split_artifacts,
        stale_artifacts,
        write_artifacts,
    )

    solc = find_solc()
    console.print(f"using {solc}", highlight=False)
    source_dir = contracts or default_contracts_dir()
    with console.status("compiling..."):
        artifacts = compile_contracts(source_dir, solc=solc)
    product, test_only = split_artifacts(artifacts)
    targets = [(product, out or ARTIFACTS_DIR)]
    if test_only:
        targets.append((test_only, source_dir.resolve().parent / "tests" / "artifacts"))
    if check:
        stale = [name for chosen, folder in targets for name in stale_artifacts(chosen, folder)]
        if stale:
            err_console.print(f"stale artifacts: {', '.join(stale)}; run `escrowkit compile`")
            raise typer.Exit(1)
        console.print(f"{len(artifacts)} artifacts up to date")
        return
    for chosen, folder in targets:
        written = write_artifacts(chosen, folder)
        console.print(f"wrote {len(written)} artifacts to {folder}")


def chain(
    port: Annotated[
        int | None,
        typer.Option(help="Port on 127.0.0.1 (default: rpc_url's port when local, else 8545)."),
    ] = None,
    state: Annotated[
        Path | None,
        typer.Option(help="State file loaded at start and saved at exit (default from settings)."),
    ] = None,
) -> None:
    """Run a local anvil in the foreground; its state survives restarts."""
    from urllib.parse import urlparse

    from escrowkit.core.urls import is_loopback
    from escrowkit.evm import find_anvil
    from escrowkit.evm.anvil import HARDFORK

    settings = open_settings()
    if port is None:
        # Where every other command will look for it.
        url = urlparse(settings.rpc_url)
        port = url.port if is_loopback(settings.rpc_url) and url.port else 8545
    state_file = state or settings.anvil_state
    state_file.parent.mkdir(parents=True, exist_ok=True)
    binary = find_anvil()
    console.print(
        f"anvil on http://127.0.0.1:{port}, state in {state_file} (Ctrl-C saves and stops)"
    )
    sys.stdout.flush()
    # The contracts' hardfork: on anvil's latest, mining slows down block after block
    # (escrowkit.evm.anvil.TUNED_ARGS says why).
    args = [str(binary), "--host", "127.0.0.1", "--port", str(port), "--state", str(state_file)]
    args += ["--hardfork", HARDFORK]
    os.execv(binary, args)


def deploy(
    token: Annotated[
        str | None, typer.Option(help="An existing ERC-20 (default: deploy a MockUSDC).")
    ] = None,
    mint: Annotated[
        str | None,
        typer.Option(help="MockUSDC only: mint this many tokens to the treasury (again: more)."),
    ] = None,
    force: Annotated[bool, typer.Option(help="Deploy again even if the manifest has it.")] = False,
    rpc: RpcOption = None,
) -> None:
    """Deploy MockUSDC (unless --token), Escrow and BudgetPool; write the manifest.

    Contracts the manifest already records (same code, same arguments, still on chain)
    are reused, and the output says so."""
    State.rpc = rpc or State.rpc
    from rich.progress import Progress

    from escrowkit.contracts.stack import deploy_stack

    settings = open_settings()
    chain_ = open_chain(settings)
    from escrowkit.config import bootstrap

    owner = bootstrap.signer(settings, chain_)
    manifest = bootstrap.manifest(settings, chain_)
    before = {entry.name: entry.tx_hash for entry in manifest}
    with Progress(console=console, transient=True) as progress:
        progress.add_task("deploying MockUSDC, Escrow, BudgetPool", total=None)
        stack = deploy_stack(
            chain_, token or settings.token, owner, deployments=manifest, force=force
        )
    usdc = stack.token
    console.print(f"on chain {chain_.chain_id}:")
    rows = [
        ("Escrow", "Escrow", stack.escrow.address),
        ("BudgetPool", "BudgetPool", stack.pool.address),
    ]
    if not (token or settings.token):
        rows.insert(0, ("MockUSDC", f"token ({usdc.symbol})", usdc.address))
    else:
        console.print(f"  token ({usdc.symbol})  {usdc.address}  (given)", highlight=False)
    for name, label, address in rows:
        entry = manifest.get(name)
        reused = entry is not None and before.get(name) == entry.tx_hash
        done = f"reused (block {entry.block})" if reused and entry else "deployed"
        console.print(f"  {label:<12}  {address}  {done}", highlight=False)
    console.print(f"manifest: {manifest.path}", highlight=False)
    if mint is not None:
        _mint(stack, owner, mint)
    console.print(f"treasury {owner} holds {usdc.format(usdc.balance_of(owner))}", highlight=False)


def _mint(stack: Stack, owner: str, amount: str) -> None:
    """Mint MockUSDC to the treasury, saying so when it already held some (a second
    ``deploy --mint`` adds; it does not top up to the amount)."""
    usdc = stack.token
    value = usdc.units(amount)
    held = usdc.balance_of(owner)
    usdc.mint(owner, value, sender=owner)
    console.print(f"minted {usdc.format(value)} to {owner}", highlight=False)
    if held:
        console.print(f"  it already held {usdc.format(held)}: minting again adds to that")
