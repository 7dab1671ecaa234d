"""The ``escrowkit`` command: a thin shell over the library.

Settings come from ``escrowkit.toml`` and ``ESCROWKIT_*`` variables (see
:mod:`escrowkit.config.settings`). Amounts on the command line are token units (``25`` is 25
USDC). Errors print as one line and exit 1; ``--debug`` shows the traceback. Keys never
appear on the command line: a keystore file's password comes from
``ESCROWKIT_KEYSTORE_PASSWORD`` or a prompt.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import asdict, is_dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from escrowkit.core.errors import EscrowKitError

if TYPE_CHECKING:
    from escrowkit.config.settings import Settings
    from escrowkit.contracts.stack import Stack
    from escrowkit.contracts.token import TokenClient
    from escrowkit.coordinator import BudgetCoordinator, BudgetReport, SpendRequest, SpendResult
    from escrowkit.evm.chain import Chain

app = typer.Typer(
    name="escrowkit",
    help="Escrow and budget contracts for teams of AI agents sharing one treasury.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
agents_app = typer.Typer(help="Register and list agents.", no_args_is_help=True)
escrow_app = typer.Typer(help="Show, settle or cancel an escrow.", no_args_is_help=True)
pool_app = typer.Typer(help="The BudgetPool treasury.", no_args_is_help=True)
app.add_typer(agents_app, name="agents")
app.add_typer(escrow_app, name="escrow")
app.add_typer(pool_app, name="pool")

console = Console()
err_console = Console(stderr=True)


class _State:
    debug = False
    config: Path | None = None
    rpc: str | None = None
    rpc_url: str | None = None  # the URL in use, so that errors never show its secrets


@app.callback()
def _main(
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="Settings file (default: ./escrowkit.toml)."),
    ] = None,
    rpc: Annotated[
        str | None, typer.Option("--rpc", help="JSON-RPC URL (overrides the settings).")
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks and debug logs.")] = False,
) -> None:
    _State.debug, _State.config, _State.rpc = debug, config, rpc
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


# --------------------------------------------------------------------------------------
# Plumbing
# --------------------------------------------------------------------------------------


def _settings() -> Settings:
    from escrowkit.config.settings import load_settings, with_overrides

    settings = with_overrides(load_settings(_State.config), rpc_url=_State.rpc)
    _State.rpc_url = settings.rpc_url
    return settings


def _chain(settings: Settings) -> Chain:
    from escrowkit.core.errors import ConfigurationError

    password = None
    keystore = settings.keystore
    if keystore is not None and not os.environ.get("ESCROWKIT_KEYSTORE_PASSWORD"):
        if not keystore.is_file():
            raise ConfigurationError(f"keystore file {keystore} does not exist")
        # On stderr, like the errors: stdout is for what a pipe reads (--json).
        password = typer.prompt(f"Password for {keystore.name}", hide_input=True, err=True)
    return settings.open_chain(password=password)


def _coordinator() -> tuple[Settings, Chain, Stack, BudgetCoordinator]:
    settings = _settings()
    chain = _chain(settings)
    stack = settings.open_stack(chain)
    return settings, chain, stack, settings.open_coordinator(chain, stack)


def _plain(value: Any) -> Any:
    """JSON-safe. Every int (amounts above all) becomes a decimal string, so no JSON
    consumer rounds it through a double; enums become their names."""
    if isinstance(value, Enum):
        return value.name if isinstance(value.value, int) else value.value
    if isinstance(value, bool) or value is None or isinstance(value, (str, float)):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    if is_dataclass(value) and not isinstance(value, type):
        return {k: _plain(v) for k, v in asdict(value).items()}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_plain(v) for v in value]
    return str(value)


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(_plain(data), indent=2, sort_keys=True) + "\n")


def _amount(token: TokenClient, text: str) -> int:
    return token.units(text)


def _status_style(status: str) -> str:
    return {
        "APPROVED": "green",
        "PENDING_APPROVAL": "yellow",
        "DENIED": "red",
        "FAILED": "red",
    }.get(status, "")


def _show_result(result: SpendResult, token: TokenClient) -> None:
    status = result.status.name
    console.print(f"[{_status_style(status)}]{status}[/]: {result.reason}", highlight=False)
    if result.escrow_id:
        console.print(f"  escrow   {result.escrow_id}")
    if result.approval_id:
        console.print(f"  approval {result.approval_id}")
    if result.remaining_daily is not None:
        console.print(f"  remaining today {token.format(result.remaining_daily)}")
    if result.remaining_total is not None:
        console.print(f"  remaining total {token.format(result.remaining_total)}")


#: Exit codes of ``spend`` and ``batch``: 0 approved or waiting for approval. Denied is 3,
#: not 2, which is click's usage error: a mistyped option must not read as a denial.
EXIT_FAILED = 1
EXIT_DENIED = 3


def _exit_for(result: SpendResult) -> None:
    """0 when approved or waiting for approval; 3 when denied; 1 when it failed."""
    status = result.status.name
    if status == "DENIED":
        raise typer.Exit(EXIT_DENIED)
    if status == "FAILED":
        raise typer.Exit(EXIT_FAILED)


# --------------------------------------------------------------------------------------
# Toolchain and chain
# --------------------------------------------------------------------------------------


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


@app.command()
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

    settings = _settings()
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
    args = [str(binary), "--host", "127.0.0.1", "--port", str(port), "--state", str(state_file)]
    os.execv(binary, args)


@app.command()
def deploy(
    token: Annotated[
        str | None, typer.Option(help="An existing ERC-20 (default: deploy a MockUSDC).")
    ] = None,
    mint: Annotated[
        str | None,
        typer.Option(help="MockUSDC only: mint this many tokens to the treasury."),
    ] = None,
    force: Annotated[bool, typer.Option(help="Deploy again even if the manifest has it.")] = False,
    rpc: Annotated[
        str | None, typer.Option("--rpc", help="JSON-RPC URL (overrides the settings).")
    ] = None,
) -> None:
    """Deploy MockUSDC (unless --token), Escrow and BudgetPool; write the manifest."""
    _State.rpc = rpc or _State.rpc
    from rich.progress import Progress

    from escrowkit.contracts.stack import deploy_stack

    settings = _settings()
    chain_ = _chain(settings)
    owner = settings.signer(chain_)
    manifest = settings.manifest(chain_)
    with Progress(console=console, transient=True) as progress:
        progress.add_task("deploying MockUSDC, Escrow, BudgetPool", total=None)
        stack = deploy_stack(
            chain_, token or settings.token, owner, deployments=manifest, force=force
        )
    usdc, escrow, pool = stack.token, stack.escrow, stack.pool
    if mint is not None:
        usdc.mint(owner, usdc.units(mint), sender=owner)
    table = Table(title=f"deployed on chain {chain_.chain_id}")
    table.add_column("contract")
    table.add_column("address")
    table.add_row(f"token ({usdc.symbol})", usdc.address)
    table.add_row("Escrow", escrow.address)
    table.add_row("BudgetPool", pool.address)
    console.print(table)
    console.print(
        f"manifest: {manifest.path}; treasury {owner} holds {usdc.format(usdc.balance_of(owner))}"
    )


# --------------------------------------------------------------------------------------
# Agents
# --------------------------------------------------------------------------------------


@agents_app.command("add")
def agents_add(
    agent_id: Annotated[str, typer.Argument(help="Stable id, e.g. research-agent.")],
    address: Annotated[str, typer.Option(help="The agent's address (checksummed).")],
    limit: Annotated[str, typer.Option(help="Per-transaction limit, token units.")],
    daily: Annotated[str, typer.Option(help="Daily limit (calendar day), token units.")],
    approval_over: Annotated[
        str, typer.Option(help="Spends strictly above this need a person's approval.")
    ],
    hourly: Annotated[str | None, typer.Option(help="Rolling one-hour limit, token units.")] = None,
    name: Annotated[str | None, typer.Option(help="Display name.")] = None,
    category: Annotated[
        list[str] | None, typer.Option(help="Allowed category (repeat for several).")
    ] = None,
    provider: Annotated[
        list[str] | None, typer.Option(help="Allowed provider address (repeat).")
    ] = None,
) -> None:
    """Register an agent or update its limits (pool mode: also on-chain)."""
    from escrowkit.coordinator import AgentConfig

    _, _, stack, coordinator = _coordinator()
    token = stack.token
    with coordinator:
        config = coordinator.register_agent(
            AgentConfig(
                id=agent_id,
                name=name or agent_id,
                address=address,
                spending_limit=_amount(token, limit),
                daily_limit=_amount(token, daily),
                requires_approval=_amount(token, approval_over),
                hourly_limit=None if hourly is None else _amount(token, hourly),
                categories=tuple(category) if category else None,
                allowed_providers=tuple(provider) if provider else None,
            )
        )
    console.print(f"registered {config.id} ({config.address})")


@agents_app.command("list")
def agents_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the registered agents and their limits."""
    _, _, stack, coordinator = _coordinator()
    with coordinator:
        agents = coordinator.agents
    if as_json:
        _print_json(agents)
        return
    token = stack.token
    table = Table(title="agents")
    for column in ("id", "address", "per tx", "daily", "hourly", "approval over", "categories"):
        table.add_column(column)
    for agent in agents.values():
        table.add_row(
            agent.id,
            agent.address,
            token.format(agent.spending_limit),
            token.format(agent.daily_limit),
            "-" if agent.hourly_limit is None else token.format(agent.hourly_limit),
            token.format(agent.requires_approval),
            ", ".join(agent.categories or ()) or "-",
        )
    console.print(table)


# --------------------------------------------------------------------------------------
# Spending
# --------------------------------------------------------------------------------------


@app.command()
def spend(
    agent_id: Annotated[str, typer.Argument(help="Registered agent id.")],
    amount: Annotated[str, typer.Argument(help="Token units, e.g. 25 or 0.5.")],
    provider: Annotated[str, typer.Argument(help="Who gets paid (checksummed address).")],
    purpose: Annotated[str, typer.Option(help="What it is for (goes to the audit log).")],
    category: Annotated[str | None, typer.Option(help="Budget category.")] = None,
    key: Annotated[
        str | None, typer.Option(help="Idempotency key: a retry with it never pays twice.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Ask to spend: exit 0 approved or pending approval, 3 denied, 1 failed."""
    from escrowkit.coordinator import SpendRequest

    _, _, stack, coordinator = _coordinator()
    with coordinator:
        result = coordinator.request_spending(
            SpendRequest(
                agent_id=agent_id,
                amount=_amount(stack.token, amount),
                provider=provider,
                purpose=purpose,
                category=category,
                idempotency_key=key,
            )
        )
    if as_json:
        _print_json(result.to_json())
    else:
        _show_result(result, stack.token)
    _exit_for(result)


@app.command()
def batch(
    file: Annotated[Path, typer.Argument(help="A .json list or .csv of spends.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
) -> None:
    """Fund a list of spends from a file (agent_id, amount, provider, purpose, ...).

    Exits like spend: 1 if any spend failed, else 3 if any was denied, else 0.
    """
    from rich.progress import Progress

    from escrowkit.cli.spendfile import read_spend_requests

    _, _, stack, coordinator = _coordinator()
    requests = read_spend_requests(file, stack.token.decimals)
    results = []
    with coordinator, Progress(console=err_console, transient=True) as progress:
        task = progress.add_task("spending", total=len(requests))
        for request in requests:
            results.append((request, coordinator.request_spending(request)))
            progress.advance(task)
    if as_json:
        _print_json([result.to_json() for _, result in results])
    else:
        _show_batch(file, results, stack.token)
    statuses = {result.status.name for _, result in results}
    if "FAILED" in statuses:
        raise typer.Exit(EXIT_FAILED)
    if "DENIED" in statuses:
        raise typer.Exit(EXIT_DENIED)


def _show_batch(
    file: Path, results: list[tuple[SpendRequest, SpendResult]], token: TokenClient
) -> None:
    table = Table(title=f"{len(results)} spends from {file.name}")
    for column in ("agent", "amount", "status", "reason"):
        table.add_column(column)
    for request, result in results:
        status = result.status.name
        table.add_row(
            request.agent_id,
            token.format(request.amount),
            f"[{_status_style(status)}]{status}[/]",
            result.reason,
        )
    console.print(table)


@app.command()
def approve(
    approval_id: Annotated[str, typer.Argument(help="The id a PENDING_APPROVAL result gave.")],
    approver: Annotated[str, typer.Option(help="Who approves (goes to the audit log).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Approve a pending spend (every check runs again first)."""
    _, _, stack, coordinator = _coordinator()
    with coordinator:
        result = coordinator.approve_spending(approval_id, approver)
    if as_json:
        _print_json(result.to_json())
    else:
        _show_result(result, stack.token)
    _exit_for(result)


@app.command()
def reject(
    approval_id: Annotated[str, typer.Argument(help="The pending approval's id.")],
    reason: Annotated[str, typer.Option(help="Why (goes to the audit log).")],
) -> None:
    """Reject a pending spend."""
    _, _, stack, coordinator = _coordinator()
    with coordinator:
        result = coordinator.reject_spending(approval_id, reason)
    _show_result(result, stack.token)


@app.command()
def report(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON (amounts as strings).")
    ] = False,
    sync: Annotated[
        bool, typer.Option(help="Read the chain first so refunds are credited.")
    ] = False,
) -> None:
    """The budget: spent, reserved, remaining, per agent and category, approvals."""
    _, _, stack, coordinator = _coordinator()
    with coordinator:
        if sync:
            coordinator.sync()
        budget = coordinator.report()
    if as_json:
        token = stack.token
        _print_json(
            {
                "token": {
                    "symbol": token.symbol,
                    "decimals": token.decimals,
                    "address": token.address,
                },
                **_plain(budget),
            }
        )
        return
    render_report(budget, stack.token)


def render_report(budget: BudgetReport, token: TokenClient) -> None:
    """The report as rich tables."""
    fmt = token.format
    summary = Table(title="budget", show_header=False)
    summary.add_column(justify="left")
    summary.add_column(justify="right")
    summary.add_row("total budget", fmt(budget.total_budget))
    summary.add_row("spent (net of refunds)", fmt(budget.total_spent))
    summary.add_row("reserved (in flight)", fmt(budget.reserved))
    summary.add_row("remaining", fmt(budget.remaining))
    if budget.frozen:
        summary.add_row("[red]FROZEN[/]", budget.frozen)
    console.print(summary)
    agents = Table(title="by agent")
    for column in ("agent", "spent", "today", "daily limit", "left today"):
        agents.add_column(column, justify="left" if column == "agent" else "right")
    for agent in budget.by_agent.values():
        agents.add_row(
            agent.agent_id,
            fmt(agent.spent),
            fmt(agent.spent_today),
            fmt(agent.daily_limit),
            fmt(agent.remaining_today),
        )
    console.print(agents)
    if budget.by_category:
        categories = Table(title="by category")
        for column in ("category", "spent", "budget", "remaining"):
            categories.add_column(column)
        for cat in budget.by_category.values():
            categories.add_row(
                cat.category,
                fmt(cat.spent),
                "-" if cat.budget is None else fmt(cat.budget),
                "-" if cat.remaining is None else fmt(cat.remaining),
            )
        console.print(categories)
    if budget.pending_approvals:
        pending = Table(title="pending approvals")
        for column in ("approval", "agent", "amount", "purpose"):
            pending.add_column(column)
        for approval_id, item in budget.pending_approvals.items():
            pending.add_row(approval_id, item.agent_id, fmt(item.amount), item.purpose)
        console.print(pending)
    for alert in budget.alerts:
        console.print(
            f"[yellow]alert[/] {alert.kind} {alert.scope}: {alert.threshold}% "
            f"({fmt(alert.spent)} of {fmt(alert.limit)})"
        )


# --------------------------------------------------------------------------------------
# Escrows, recovery, freeze
# --------------------------------------------------------------------------------------


@escrow_app.command("show")
def escrow_show(
    escrow_id: Annotated[str, typer.Argument(help="0x-prefixed 32-byte escrow id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """An escrow's record and its events."""
    from escrowkit.core.errors import NotFound

    settings = _settings()
    chain_ = _chain(settings)
    stack = settings.open_stack(chain_)
    record = stack.escrow.get(escrow_id)
    if not record.exists:
        # The contract answers zeros for an id it never saw; a typo is not an empty escrow.
        raise NotFound(f"no escrow {escrow_id} on Escrow {stack.escrow.address}")
    history = stack.escrow.history(escrow_id)
    if as_json:
        # The event's name is a ClassVar, which asdict leaves out.
        events = [{"event": event.event, **_plain(event)} for event in history]
        _print_json({"escrow": record, "history": events})
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


@escrow_app.command("settle")
def escrow_settle(
    escrow_id: Annotated[str, typer.Argument(help="0x-prefixed 32-byte escrow id.")],
) -> None:
    """Release a funded escrow to its provider (as the requester)."""
    _, _, _, coordinator = _coordinator()
    with coordinator:
        row = coordinator.settle(escrow_id)
    console.print(f"settled {escrow_id}: ledger {row.status.name}")


@escrow_app.command("cancel")
def escrow_cancel(
    escrow_id: Annotated[str, typer.Argument(help="0x-prefixed 32-byte escrow id.")],
) -> None:
    """Cancel an escrow as the requester (a refund is credited back)."""
    _, _, _, coordinator = _coordinator()
    with coordinator:
        row = coordinator.cancel(escrow_id)
    console.print(f"cancelled {escrow_id}: ledger {row.status.name}")


@app.command()
def recover(
    older_than: Annotated[
        float, typer.Option(help="Only reservations whose lease began this many seconds ago.")
    ] = 300,
) -> None:
    """Resolve spends left PENDING by a crash: commit or void each from the chain."""
    _, _, _, coordinator = _coordinator()
    with coordinator:
        result = coordinator.recover(older_than=older_than)
    console.print(
        f"committed {len(result.committed)}, voided {len(result.voided)}, "
        f"left pending {len(result.left_pending)}"
    )


@app.command()
def sync() -> None:
    """Read the chain: settled escrows and provider refunds update the ledger."""
    _, _, _, coordinator = _coordinator()
    with coordinator:
        result = coordinator.sync()
    console.print(f"settled {len(result.settled)}, refunded {len(result.refunded)}")


@app.command()
def freeze(reason: Annotated[str, typer.Argument(help="Why (shown in every denial).")]) -> None:
    """Deny every spend until unfreeze."""
    _, _, _, coordinator = _coordinator()
    with coordinator:
        coordinator.freeze(reason)
    console.print(f"frozen: {reason}")


@app.command()
def unfreeze() -> None:
    """Allow spending again."""
    _, _, _, coordinator = _coordinator()
    with coordinator:
        coordinator.unfreeze()
    console.print("unfrozen")


@pool_app.command("contribute")
def pool_contribute(
    amount: Annotated[str, typer.Argument(help="Token units to move into the pool.")],
) -> None:
    """Move tokens from the treasury key into the BudgetPool (pool mode's funds)."""
    settings = _settings()
    chain_ = _chain(settings)
    stack = settings.open_stack(chain_)
    sender = settings.signer(chain_)
    value = _amount(stack.token, amount)
    if stack.token.allowance(sender, stack.pool.address) < value:
        stack.token.force_approve(stack.pool.address, value, sender=sender)
    stack.pool.contribute(value, sender=sender)
    console.print(f"contributed {stack.token.format(value)}")


# --------------------------------------------------------------------------------------
# Demo
# --------------------------------------------------------------------------------------


@app.command()
def demo() -> None:
    """The main job on an embedded chain: real contracts, the coordinator, a report."""
    from escrowkit.cli.demo import DemoStep, run_demo

    def show(step: DemoStep, token: TokenClient) -> None:
        console.print(f"\n[bold]{step.title}[/]")
        if step.result is not None:
            _show_result(step.result, token)
        if step.note:
            console.print(f"  {step.note}", highlight=False)

    console.print("embedded chain (py-evm), real contracts, a 1,000 USDC budget, three agents")
    outcome = run_demo(on_step=show)
    assert outcome.report is not None
    console.print()
    render_report(outcome.report, outcome.stack.token)
    console.print(f"alerts fired: {len(outcome.alerts)}")


def _fail(message: str) -> None:
    """On stderr, never wrapped to the terminal's width, never showing the RPC URL's key.

    One line, except solc's diagnostics, which keep their own lines.
    """
    from escrowkit.core.urls import redact_url

    for url in (_State.rpc_url, _State.rpc):
        if url:
            message = redact_url(message, url)
    err_console.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)


def main() -> None:
    """Entry point: escrowkit errors become one line on stderr and exit code 1."""
    try:
        app()
    except EscrowKitError as exc:
        if _State.debug:
            raise
        _fail(str(exc))
        sys.exit(1)
    except Exception as exc:
        if _State.debug:
            raise
        _fail(f"{type(exc).__name__}: {exc} (run with --debug for the traceback)")
        sys.exit(1)


if __name__ == "__main__":
    main()
