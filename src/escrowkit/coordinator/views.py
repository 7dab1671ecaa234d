"""Reads for the doors (HTTP, MCP, dashboard): lists a page at a time, one approval, and
one agent's budget now. Nothing here writes; every figure comes from one snapshot."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Generic, TypeVar

from escrowkit.budget import AgentConfig
from escrowkit.budget.windows import HOUR
from escrowkit.coordinator.context import Context
from escrowkit.core.errors import InvalidRequest, NotFound
from escrowkit.core.inputs import int_in_range
from escrowkit.ledger import (
    Approval,
    ApprovalStatus,
    AuditEntry,
    Reservation,
    ReservationStatus,
)

__all__ = ["MAX_PAGE", "AgentBudget", "Page", "Views"]

T = TypeVar("T")

#: The most items one page holds.
MAX_PAGE = 100


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list: ``next`` is the cursor of the page after it (None: the last)."""

    data: list[T]
    next: str | None


@dataclass(frozen=True)
class AgentBudget:
    """One agent's limits and what is used of them now (int base units).

    ``spent_today`` is committed spend net of refunds, ``reserved_today`` spends in flight;
    both count against the daily limit, so ``remaining_today = daily_limit -
    spent_today - reserved_today`` (never below 0). ``used_this_hour`` counts the last
    3,600 s the same way; ``remaining_this_hour`` is None without an hourly limit."""

    agent: AgentConfig
    day: str
    spent_today: int
    reserved_today: int
    remaining_today: int
    used_this_hour: int
    remaining_this_hour: int | None


def _cursor(value: object, name: str = "after") -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not 0 < len(value) <= 64 or not value.isprintable():
        raise InvalidRequest(f"{name} must be a cursor from a list's 'next', got {value!r}")
    return value


class Views:
    """Read-only queries over the ledger."""

    def __init__(self, context: Context) -> None:
        self.context = context

    def spends(
        self,
        *,
        statuses: tuple[ReservationStatus, ...] = (),
        agent_id: str | None = None,
        after: str | None = None,
        limit: int = 20,
    ) -> Page[Reservation]:
        limit = int_in_range(limit, "limit", 1, MAX_PAGE)
        with self.context.store.read() as ledger:
            rows = ledger.reservations_page(
                statuses=statuses, agent_id=agent_id, before=_cursor(after), limit=limit + 1
            )
        return Page(rows[:limit], rows[limit - 1].id if len(rows) > limit else None)

    def approvals(
        self,
        *,
        status: ApprovalStatus | None = None,
        agent_id: str | None = None,
        after: str | None = None,
        limit: int = 20,
    ) -> Page[Approval]:
        limit = int_in_range(limit, "limit", 1, MAX_PAGE)
        now = self.context.clock()
        with self.context.store.read() as ledger:
            rows = ledger.approvals_page(
                status=status, agent_id=agent_id, before=_cursor(after), limit=limit + 1
            )
        # A pending approval past its expiry is expired, whether or not anyone has tried
        # to decide it since (that is when the ledger records it).
        shown = [_as_of(approval, now) for approval in rows[:limit]]
        if status is ApprovalStatus.PENDING:
            shown = [a for a in shown if a.status is ApprovalStatus.PENDING]
        return Page(shown, rows[limit - 1].id if len(rows) > limit else None)

    def approval(self, approval_id: str) -> Approval:
        if not isinstance(approval_id, str):
            raise InvalidRequest(f"approval id must be a string, got {approval_id!r}")
        with self.context.store.read() as ledger:
            approval = ledger.approval(approval_id)
        if approval is None:
            raise NotFound(f"no approval {approval_id!r}")
        return _as_of(approval, self.context.clock())

    def audit(
        self, *, after: int = 0, agent_id: str | None = None, limit: int = 20
    ) -> Page[AuditEntry]:
        after = int_in_range(after, "after", 0, 2**63 - 1)
        limit = int_in_range(limit, "limit", 1, MAX_PAGE)
        with self.context.store.read() as ledger:
            rows = ledger.audit_page(after=after, agent_id=agent_id, limit=limit + 1)
        return Page(rows[:limit], str(rows[limit - 1].id) if len(rows) > limit else None)

    def agent_budget(self, agent_id: str) -> AgentBudget:
        context = self.context
        now = context.clock()
        day = context.days.key(now)
        with context.store.read() as ledger:
            context.refresh(ledger)
            agent = context.agents.get(agent_id)
            if agent is None:
                raise NotFound(f"unknown agent {agent_id!r}")
            used_today = ledger.day_used(agent_id, day)
            hour = ledger.hour_used(agent_id, now - HOUR)
            pending = ledger.pending_amounts()
        reserved = sum(a for who, when, _, a in pending if who == agent_id and when == day)
        hourly = agent.hourly_limit
        return AgentBudget(
            agent=agent,
            day=day,
            spent_today=used_today - reserved,
            reserved_today=reserved,
            remaining_today=max(agent.daily_limit - used_today, 0),
            used_this_hour=hour,
            remaining_this_hour=None if hourly is None else max(hourly - hour, 0),
        )


def _as_of(approval: Approval, now: float) -> Approval:
    if approval.status is ApprovalStatus.PENDING and now >= approval.expires_at:
        return replace(approval, status=ApprovalStatus.EXPIRED)
    return approval
