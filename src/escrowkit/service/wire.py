"""From the library's values to the wire shapes of :mod:`escrowkit.service.models`, and
amounts from the wire to ``int`` base units. Conversion only: no rule lives here."""

from __future__ import annotations

from typing import TYPE_CHECKING

from escrowkit.coordinator import ApprovalStatus, ReservationStatus, describe
from escrowkit.errors import InvalidRequest
from escrowkit.service import models as m

if TYPE_CHECKING:
    from escrowkit.coordinator import (
        AgentBudget,
        AgentConfig,
        AgentReport,
        Alert,
        Approval,
        AuditEntry,
        BudgetReport,
        CategoryReport,
        Event,
        PendingApproval,
        Reservation,
        ScopeBalance,
        SpendResult,
        TokenUnits,
    )

__all__ = [
    "agent",
    "approval",
    "audit_entry",
    "balance",
    "base_units",
    "event",
    "me",
    "optional_base_units",
    "report",
    "spend",
    "spend_result",
]


def base_units(value: int | str, name: str = "amount") -> int:
    """A request's amount (a JSON integer or a string of digits) as an int; the
    library checks the rest (positive, below 2**96, ...)."""
    if isinstance(value, int):
        return value
    if not value.isascii() or not value.isdigit() or len(value) > 78:
        raise InvalidRequest(f"{name} must be base units: a JSON integer or a string of digits")
    return int(value)


def optional_base_units(value: int | str | None, name: str = "amount") -> int | None:
    return None if value is None else base_units(value, name)


def _s(value: int | None) -> str | None:
    return None if value is None else str(value)


def spend_result(result: SpendResult) -> m.SpendResultOut:
    data = result.to_json()
    return m.SpendResultOut(
        status=data["status"],
        code=data["code"],
        reason=data["reason"],
        reservation_id=data["reservation_id"],
        escrow_id=data["escrow_id"],
        approval_id=data["approval_id"],
        remaining_daily=data["remaining_daily"],
        remaining_total=data["remaining_total"],
        tx_hashes=data["tx_hashes"],
        error=data["error"],
    )


def spend(row: Reservation) -> m.SpendOut:
    # A voided row's escrow id was never funded (or was fenced): not an escrow to look at.
    shown = row.status is not ReservationStatus.VOIDED
    return m.SpendOut(
        reservation_id=row.id,
        agent_id=row.agent_id,
        amount=str(row.amount),
        provider=row.provider,
        purpose=row.purpose,
        category=row.category,
        workflow=row.workflow,
        status=row.status.value,
        escrow_id="0x" + row.escrow_id.hex() if shown else None,
        approval_id=row.approval_id,
        tx_hashes=list(row.tx_hashes),
        created_at=row.created_at,
    )


def approval(item: Approval) -> m.ApprovalOut:
    request = item.request
    return m.ApprovalOut(
        approval_id=item.id,
        agent_id=request.agent_id,
        amount=str(request.amount),
        provider=request.provider,
        purpose=request.purpose,
        category=request.category,
        status=item.status.value,
        requested_at=item.requested_at,
        expires_at=item.expires_at,
        decided_at=item.decided_at,
        decided_by=item.decided_by,
        reason=item.reason if item.status is not ApprovalStatus.PENDING else None,
        reservation_id=item.reservation_id,
    )


def balance(item: ScopeBalance) -> m.BalanceOut:
    return m.BalanceOut(
        scope=item.scope,
        allocated=str(item.allocated),
        spent=str(item.spent),
        reserved=str(item.reserved),
        remaining=str(item.remaining),
    )


def agent(config: AgentConfig) -> m.AgentOut:
    return m.AgentOut(
        id=config.id,
        name=config.name,
        address=config.address,
        spending_limit=str(config.spending_limit),
        daily_limit=str(config.daily_limit),
        requires_approval=str(config.requires_approval),
        hourly_limit=_s(config.hourly_limit),
        categories=None if config.categories is None else list(config.categories),
        allowed_providers=(
            None if config.allowed_providers is None else list(config.allowed_providers)
        ),
        scope=config.scope,
        path=config.path,
    )


def me(budget: AgentBudget, scopes: list[m.BalanceOut]) -> m.MeOut:
    config = agent(budget.agent)
    return m.MeOut(
        agent_id=config.id,
        name=config.name,
        address=config.address,
        spending_limit=config.spending_limit,
        daily_limit=config.daily_limit,
        requires_approval=config.requires_approval,
        hourly_limit=config.hourly_limit,
        categories=config.categories,
        allowed_providers=config.allowed_providers,
        day=budget.day,
        spent_today=str(budget.spent_today),
        reserved_today=str(budget.reserved_today),
        remaining_today=str(budget.remaining_today),
        used_this_hour=str(budget.used_this_hour),
        remaining_this_hour=_s(budget.remaining_this_hour),
        scopes=scopes,
    )


def report(
    item: BudgetReport, scopes: list[m.BalanceOut], agent_id: str | None = None
) -> m.ReportOut:
    """The report's fields by name; ``agent_id``: only that agent's agents, approvals and
    alerts (the treasury's and the categories' figures stay: it spends from them)."""

    def mine(owner: str | None) -> bool:
        return agent_id is None or owner == agent_id

    return m.ReportOut(
        total_budget=str(item.total_budget),
        total_spent=str(item.total_spent),
        reserved=str(item.reserved),
        remaining=str(item.remaining),
        by_agent={k: _agent_report(a) for k, a in item.by_agent.items() if mine(a.agent_id)},
        by_category={k: _category(c) for k, c in item.by_category.items()},
        pending_approvals={
            k: _pending(p) for k, p in item.pending_approvals.items() if mine(p.agent_id)
        },
        alerts=[
            _alert(a)
            for a in item.alerts
            if agent_id is None or (a.kind == "daily_limit" and a.scope == agent_id)
        ],
        scopes=scopes,
        frozen=item.frozen,
    )


def _agent_report(a: AgentReport) -> m.AgentReportOut:
    return m.AgentReportOut(
        agent_id=a.agent_id,
        name=a.name,
        spent=str(a.spent),
        reserved=str(a.reserved),
        spent_today=str(a.spent_today),
        daily_limit=str(a.daily_limit),
        remaining_today=str(a.remaining_today),
    )


def _category(c: CategoryReport) -> m.CategoryReportOut:
    return m.CategoryReportOut(
        category=c.category,
        spent=str(c.spent),
        reserved=str(c.reserved),
        budget=_s(c.budget),
        remaining=_s(c.remaining),
    )


def _pending(p: PendingApproval) -> m.PendingApprovalOut:
    return m.PendingApprovalOut(
        approval_id=p.approval_id,
        agent_id=p.agent_id,
        amount=str(p.amount),
        provider=p.provider,
        purpose=p.purpose,
        category=p.category,
        requested_at=p.requested_at,
        expires_at=p.expires_at,
    )


def _alert(a: Alert) -> m.AlertOut:
    return m.AlertOut(
        kind=a.kind,
        scope=a.scope,
        threshold=a.threshold,
        spent=str(a.spent),
        limit=str(a.limit),
        period=a.period,
        at=a.at,
    )


def audit_entry(entry: AuditEntry) -> m.AuditEntryOut:
    return m.AuditEntryOut(
        id=entry.id,
        at=entry.at,
        event=entry.event,
        agent_id=entry.agent_id,
        reservation_id=entry.reservation_id,
        approval_id=entry.approval_id,
        amount=_s(entry.amount),
        detail=entry.detail,
    )


def event(item: Event, units: TokenUnits) -> m.EventOut:
    return m.EventOut(
        id=item.id,
        type=item.type,  # type: ignore[arg-type]
        created_at=item.at,
        agent_id=item.agent_id,
        data=item.data,
        text=describe(item, units),
    )
