"""Spending: ``spend``, ``batch`` from a file, ``approve`` and ``reject`` a pending spend.

Before anything is asked, the paying account's funds are checked
(:meth:`~escrowkit.coordinator.BudgetCoordinator.check_funds`): a spend that cannot be
funded is not tried on-chain, and the error says what to do. A replay (a result recorded
for an idempotency key seen before) is marked as one.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from escrowkit.cli.exits import EXIT_DENIED, EXIT_FAILED, exit_for
from escrowkit.cli.options import JsonResultOption, open_coordinator, parse_amount
from escrowkit.cli.render import err_console, print_json, show_result

if TYPE_CHECKING:
    from escrowkit.coordinator import BudgetCoordinator, SpendResult


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
    workflow: Annotated[
        str | None, typer.Option(help="Also charge this workflow's scope (a task's budget).")
    ] = None,
) -> None:
    """Ask to spend: exit 0 approved or pending approval, 3 denied, 1 failed."""
    from escrowkit.coordinator import SpendRequest

    _, _, stack, coordinator = open_coordinator()
    with coordinator:
        request = SpendRequest(
            agent_id=agent_id,
            amount=parse_amount(stack.token, amount),
            provider=provider,
            purpose=purpose,
            category=category,
            idempotency_key=key,
            workflow=workflow,
        )
        prior = coordinator.recorded(request)
        if prior is None:
            _check_funds(coordinator, request.amount)
        result = coordinator.request_spending(request)
    replay = prior is not None and prior == result
    if as_json:
        print_json({**result.to_json(), "replay": replay})
    else:
        show_result(result, stack.token, replay=replay)
    exit_for(result)


def _check_funds(coordinator: BudgetCoordinator, amount: int, what: str = "") -> None:
    """Refuse, before anything is reserved or sent, what the paying account cannot fund."""
    from escrowkit.core.errors import EscrowKitError

    short = coordinator.check_funds(amount)
    if short is not None:
        raise EscrowKitError(f"not asked{what}: {short}")


def batch(
    file: Annotated[Path, typer.Argument(help="A .json list or .csv of spends.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
) -> None:
    """Fund a list of spends from a file (agent_id, amount, provider, purpose, ...).

    Exits like spend: 1 if any spend failed, else 3 if any was denied, else 0. Nothing is
    asked when the paying account cannot fund every new spend of the file.
    """
    from rich.progress import Progress

    from escrowkit.cli.listing import BatchRow, show_batch
    from escrowkit.cli.spendfile import read_spend_requests

    _, _, stack, coordinator = open_coordinator()
    requests = read_spend_requests(file, stack.token.decimals)
    rows: list[BatchRow] = []
    with coordinator:
        priors = [coordinator.recorded(request) for request in requests]
        new = [r.amount for r, prior in zip(requests, priors, strict=True) if prior is None]
        _check_funds(coordinator, sum(new), f" ({len(new)} new spends in {file.name})")
        with Progress(console=err_console, transient=True) as progress:
            task = progress.add_task("spending", total=len(requests))
            for request, prior in zip(requests, priors, strict=True):
                result = coordinator.request_spending(request)
                rows.append((request, result, prior is not None and prior == result))
                progress.advance(task)
    if as_json:
        print_json([{**result.to_json(), "replay": replay} for _, result, replay in rows])
    else:
        show_batch(file, rows, stack.token)
    statuses = {result.status.name for _, result, _ in rows}
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
        pending = coordinator.report().pending_approvals.get(approval_id)
        if pending is not None:
            _check_funds(coordinator, pending.amount)
        started = coordinator.clock()
        result = coordinator.approve_spending(approval_id, approver, note=note)
        replay = _approved_before(coordinator, result, started)
    if as_json:
        print_json({**result.to_json(), "replay": replay})
    else:
        show_result(result, stack.token, replay=replay)
    exit_for(result)


def _approved_before(coordinator: BudgetCoordinator, result: SpendResult, started: float) -> bool:
    """Whether the approval's spend was reserved before this call: a replay."""
    if result.reservation_id is None:
        return False
    return coordinator.reservation(result.reservation_id).created_at < started


def reject(
    approval_id: Annotated[str, typer.Argument(help="The pending approval's id.")],
    reason: Annotated[str, typer.Option(help="Why (goes to the audit log).")],
    approver: Annotated[str, typer.Option(help="Who rejects (goes to the audit log).")] = "",
    as_json: JsonResultOption = False,
) -> None:
    """Reject a pending spend (an approval that is no longer pending is an error)."""
    _, _, stack, coordinator = open_coordinator()
    with coordinator:
        result = coordinator.reject_spending(approval_id, reason, approver=approver)
    if as_json:
        print_json(result.to_json())
    else:
        show_result(result, stack.token)
