"""Spending: ``spend``, ``batch`` from a file, ``approve`` and ``reject`` a pending spend."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from escrowkit.cli.exits import EXIT_DENIED, EXIT_FAILED, exit_for
from escrowkit.cli.options import JsonResultOption, open_coordinator, parse_amount
from escrowkit.cli.render import err_console, print_json, show_batch, show_result


def spend(
    agent_id: Annotated[str, typer.Argument(help="Registered agent id.")],
    amount: Annotated[str, typer.Argument(help="Token units, e.g. 25 or 0.5.")],
    provider: Annotated[str, typer.Argument(help="Who gets paid (checksummed address).")],
    purpose: Annotated[str, typer.Option(help="What it is for (goes to the audit log).")],
    category: Annotated[str | None, typer.Option(help="Budget category.")] = None,
    key: Annotated[
        str | None, typer.Option(help="Idempotency key: a retry with it never pays twice.")
    ] = None,
    as_json: JsonResultOption = False,
) -> None:
    """Ask to spend: exit 0 approved or pending approval, 3 denied, 1 failed."""
    from escrowkit.coordinator import SpendRequest

    _, _, stack, coordinator = open_coordinator()
    with coordinator:
        result = coordinator.request_spending(
            SpendRequest(
                agent_id=agent_id,
                amount=parse_amount(stack.token, amount),
                provider=provider,
                purpose=purpose,
                category=category,
                idempotency_key=key,
            )
        )
    if as_json:
        print_json(result.to_json())
    else:
        show_result(result, stack.token)
    exit_for(result)


def batch(
    file: Annotated[Path, typer.Argument(help="A .json list or .csv of spends.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
) -> None:
    """Fund a list of spends from a file (agent_id, amount, provider, purpose, ...).

    Exits like spend: 1 if any spend failed, else 3 if any was denied, else 0.
    """
    from rich.progress import Progress

    from escrowkit.cli.spendfile import read_spend_requests

    _, _, stack, coordinator = open_coordinator()
    requests = read_spend_requests(file, stack.token.decimals)
    results = []
    with coordinator, Progress(console=err_console, transient=True) as progress:
        task = progress.add_task("spending", total=len(requests))
        for request in requests:
            results.append((request, coordinator.request_spending(request)))
            progress.advance(task)
    if as_json:
        print_json([result.to_json() for _, result in results])
    else:
        show_batch(file, results, stack.token)
    statuses = {result.status.name for _, result in results}
    if "FAILED" in statuses:
        raise typer.Exit(EXIT_FAILED)
    if "DENIED" in statuses:
        raise typer.Exit(EXIT_DENIED)


def approve(
    approval_id: Annotated[str, typer.Argument(help="The id a PENDING_APPROVAL result gave.")],
    approver: Annotated[str, typer.Option(help="Who approves (goes to the audit log).")],
    note: Annotated[str, typer.Option(help="Why, or a ticket (goes to the audit log).")] = "",
    as_json: JsonResultOption = False,
) -> None:
    """Approve a pending spend (every check runs again first). Approving it again shows
    the same spend: nothing is paid twice."""
    _, _, stack, coordinator = open_coordinator()
    with coordinator:
        result = coordinator.approve_spending(approval_id, approver, note=note)
    if as_json:
        print_json(result.to_json())
    else:
        show_result(result, stack.token)
    exit_for(result)


def reject(
    approval_id: Annotated[str, typer.Argument(help="The pending approval's id.")],
    reason: Annotated[str, typer.Option(help="Why (goes to the audit log).")],
    approver: Annotated[str, typer.Option(help="Who rejects (goes to the audit log).")] = "",
) -> None:
    """Reject a pending spend."""
    _, _, stack, coordinator = open_coordinator()
    with coordinator:
        result = coordinator.reject_spending(approval_id, reason, approver=approver)
    show_result(result, stack.token)
