"""What the ``escrowkit`` command prints: JSON for pipes, rich text and tables for people.

Everything meant for a pipe goes to stdout; progress, prompts and errors go to stderr
(:data:`err_console`), so ``escrowkit report --json | jq`` reads JSON and nothing else.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, is_dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

from rich.console import Console

if TYPE_CHECKING:
    from escrowkit.contracts.token import TokenClient
    from escrowkit.coordinator import SpendResult

#: What a command shows (stdout).
console = Console()
#: Progress, prompts and errors (stderr).
err_console = Console(stderr=True)


#: The fields that hold token amounts (int base units). One rule for each kind of field:
#: an amount is a decimal string in JSON, always, so that no consumer rounds it through a
#: double (an 18-decimal token passes 2**53 at 0.009 tokens); every other integer (counts,
#: decimals, percentages, seconds, timestamps, blocks) is a JSON number.
AMOUNT_FIELDS = frozenset(
    {
        "amount",
        "balance",
        "budget",
        "daily_limit",
        "fee",
        "hourly_limit",
        "limit",
        "paid",
        "refunded",
        "remaining",
        "remaining_daily",
        "remaining_today",
        "remaining_total",
        "requires_approval",
        "reserved",
        "spendable",
        "spending_limit",
        "spent",
        "spent_today",
        "total_budget",
        "total_spent",
    }
)


def plain(value: Any, field: str | None = None) -> Any:
    """JSON-safe: amounts (by field name, see :data:`AMOUNT_FIELDS`) as decimal strings,
    other integers as numbers, bytes as 0x hex, enums by name."""
    if isinstance(value, Enum):
        return value.name if isinstance(value.value, int) else value.value
    if isinstance(value, bool) or value is None or isinstance(value, (str, float)):
        return value
    if isinstance(value, int):
        return str(value) if field in AMOUNT_FIELDS else value
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    if is_dataclass(value) and not isinstance(value, type):
        return {k: plain(v, k) for k, v in asdict(value).items()}
    if isinstance(value, dict):
        return {str(k): plain(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [plain(v, field) for v in value]
    return str(value)


def print_json(data: Any) -> None:
    """Print ``data`` to stdout as indented JSON, through :func:`plain`."""
    sys.stdout.write(json.dumps(plain(data), indent=2, sort_keys=True) + "\n")


def status_style(status: str) -> str:
    """The rich style of a spend status's name: green approved, red denied or failed."""
    return {
        "APPROVED": "green",
        "COMMITTED": "green",
        "SETTLED": "green",
        "PENDING_APPROVAL": "yellow",
        "PENDING": "yellow",
        "DENIED": "red",
        "FAILED": "red",
        "VOIDED": "red",
    }.get(status, "")


#: What a replay is, said once under a replayed result.
REPLAY = "replay: the result recorded the first time; nothing was paid again"


def show_result(result: SpendResult, token: TokenClient, *, replay: bool = False) -> None:
    """One spend's outcome: status and reason, then its ids and what remains."""
    status = result.status.name
    mark = " (replay)" if replay else ""
    console.print(f"[{status_style(status)}]{status}[/]{mark}: {result.reason}", highlight=False)
    if replay:
        console.print(f"  {REPLAY}", highlight=False)
    if result.escrow_id:
        console.print(f"  escrow   {result.escrow_id}", highlight=False)
    if result.approval_id:
        console.print(f"  approval {result.approval_id}", highlight=False)
    if result.remaining_daily is not None:
        console.print(f"  remaining today {token.format(result.remaining_daily)}")
    if result.remaining_total is not None:
        console.print(f"  remaining total {token.format(result.remaining_total)}")


def show_warnings(warnings: Sequence[str]) -> None:
    """Warnings about what a command shows, in yellow, one paragraph each."""
    for warning in warnings:
        console.print(f"[yellow]warning[/]: {warning}", highlight=False)
