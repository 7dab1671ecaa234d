"""Lists that hold ids: a batch's results, spends, pending approvals, agents.

An escrow id is 66 characters and an address 42, so a table row with either and three
more columns cannot fit 80 columns without cutting the id, which is the one thing a
reader copies. Each record is one aligned line of short fields, with its ids and longer
text on indented lines below it, wrapped to the terminal and never broken inside a word.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from escrowkit.cli.render import console, status_style

if TYPE_CHECKING:
    from escrowkit.contracts.token import TokenClient
    from escrowkit.coordinator import (
        AgentConfig,
        PendingApproval,
        Reservation,
        SpendRequest,
        SpendResult,
    )

__all__ = [
    "BatchRow",
    "paragraph",
    "show_agents",
    "show_approvals",
    "show_batch",
    "show_spends",
]

#: One spend of a batch: what was asked, what came back, and whether it was a replay.
BatchRow = tuple["SpendRequest", "SpendResult", bool]


def _columns(rows: Sequence[Sequence[str]]) -> list[int]:
    return [max((len(row[i]) for row in rows), default=0) for i in range(len(rows[0]))]


def _line(cells: Sequence[str], widths: Sequence[int], style: str = "") -> None:
    """Cells padded to their column's width; the last cell's style is ``style``."""
    *first, last = cells
    padded = "  ".join(cell.ljust(width) for cell, width in zip(first, widths, strict=False))
    text = f"{padded}  [{style}]{last}[/]" if style else f"{padded}  {last}"
    console.print(text.rstrip(), highlight=False, soft_wrap=True)


def paragraph(text: str, indent: int = 4) -> None:
    """An indented paragraph (under a record), wrapped between words only: an id or an
    address is never broken."""
    width = max(console.width, 40)
    console.print(
        textwrap.fill(
            text,
            width=width,
            initial_indent=" " * indent,
            subsequent_indent=" " * indent,
            break_long_words=False,
            break_on_hyphens=False,
        ),
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


def show_batch(file: Path, rows: Sequence[BatchRow], token: TokenClient) -> None:
    """A batch's outcomes, one record per spend: status, then its ids and its reason."""
    console.print(f"{len(rows)} spends from {file.name}", highlight=False)
    if not rows:
        return
    cells = [
        [str(n), request.agent_id, token.format(request.amount), result.status.name]
        for n, (request, result, _) in enumerate(rows, start=1)
    ]
    widths = _columns([["#", "agent", "amount", "status"], *cells])
    _line(["#", "agent", "amount", "status"], widths)
    for line, (_, result, replay) in zip(cells, rows, strict=True):
        mark = " (replay)" if replay else ""
        _line([*line[:3], line[3] + mark], widths, status_style(result.status.name))
        _ids(result.escrow_id, result.approval_id)
        if result.reason and not result.approved:
            paragraph(result.reason)
    if any(replay for *_, replay in rows):
        paragraph("(replay): the result recorded for its idempotency key; not paid again", 0)


def _ids(escrow_id: str | None, approval_id: str | None) -> None:
    if escrow_id:
        paragraph(f"escrow {escrow_id}")
    if approval_id:
        paragraph(f"approval {approval_id}")


def show_spends(rows: Iterable[Reservation], token: TokenClient) -> None:
    """Ledger rows: id, agent, amount, status; then escrow, time, purpose and reason."""
    from escrowkit.cli.times import utc

    listed = list(rows)
    if not listed:
        console.print("no spends")
        return
    cells = [[r.id, r.agent_id, token.format(r.amount), r.status.value] for r in listed]
    widths = _columns(cells)
    for line, row in zip(cells, listed, strict=True):
        _line(line, widths, status_style(row.status.value))
        paragraph(f"escrow 0x{row.escrow_id.hex()}")
        extra = f" (approval {row.approval_id})" if row.approval_id else ""
        category = f" [{row.category}]" if row.category else ""
        paragraph(f"{utc(row.created_at)}: {row.purpose}{category}{extra}")
        if row.reason and row.status.value == "VOIDED":
            paragraph(row.reason)


def show_approvals(pending: Mapping[str, PendingApproval], token: TokenClient) -> None:
    """Pending approvals: id, agent, amount; then what for, to whom, until when."""
    from escrowkit.cli.times import utc

    if not pending:
        console.print("no pending approvals")
        return
    cells = [[a.approval_id, a.agent_id, token.format(a.amount)] for a in pending.values()]
    widths = _columns(cells)
    for line, approval in zip(cells, pending.values(), strict=True):
        _line(line, widths)
        category = f" [{approval.category}]" if approval.category else ""
        paragraph(f"{approval.purpose}{category}, to {approval.provider}")
        paragraph(f"asked {utc(approval.requested_at)}, expires {utc(approval.expires_at)}")


def show_agents(agents: Iterable[AgentConfig], token: TokenClient) -> None:
    """Agents: id and address, then their limits."""
    fmt = token.format
    listed = list(agents)
    if not listed:
        console.print("no agents")
        return
    widths = _columns([[a.id, a.address] for a in listed])
    for agent in listed:
        name = f"({agent.name})" if agent.name and agent.name != agent.id else ""
        _line([agent.id, agent.address, name], widths)
        hourly = "-" if agent.hourly_limit is None else fmt(agent.hourly_limit)
        paragraph(
            f"per tx {fmt(agent.spending_limit)}, daily {fmt(agent.daily_limit)}, "
            f"hourly {hourly}, approval over {fmt(agent.requires_approval)}"
        )
        if agent.scope:
            paragraph(f"scope: {agent.scope}")
        if agent.categories is not None:
            paragraph(f"categories: {', '.join(agent.categories) or 'none'}")
        if agent.allowed_providers is not None:
            paragraph(f"providers: {', '.join(agent.allowed_providers) or 'none'}")
