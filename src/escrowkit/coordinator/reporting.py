"""Reading the ledger: the budget report, scope balances, spends, the audit log."""

from __future__ import annotations

from collections import defaultdict

from escrowkit.budget import ROOT, AgentConfig, charged_scopes, check_scope
from escrowkit.budget.scopes import in_scope, scope_order
from escrowkit.coordinator.context import Context
from escrowkit.coordinator.results import (
    AgentReport,
    Alert,
    BudgetReport,
    CategoryReport,
    PendingApproval,
    ScopeBalance,
)
from escrowkit.core.errors import NotFound
from escrowkit.ledger import Approval, AuditEntry, Ledger, Reservation, ReservationStatus

__all__ = ["Reporting"]

#: (agent_id, day, category, amount) of a PENDING reservation.
Pending = list[tuple[str, str, str | None, int]]


class Reporting:
    """Figures as the ledger has them now (one consistent snapshot each)."""

    def __init__(self, context: Context) -> None:
        self.context = context

    def report(self) -> BudgetReport:
        context = self.context
        now = context.clock()
        today = context.days.key(now)
        with context.store.read() as ledger:
            context.refresh(ledger)
            state = ledger.state()
            pending = ledger.pending_amounts()
            days = ledger.days_used()
            categories = ledger.categories()
            approvals = ledger.pending_approvals(now)
            alert_rows = ledger.alerts()
            scopes = self.balances_in(ledger, ROOT)
        reserved = sum(amount for *_, amount in pending)
        return BudgetReport(
            total_budget=state.total_budget,
            total_spent=state.used - reserved,
            reserved=reserved,
            remaining=max(state.total_budget - state.used, 0),
            by_agent=self._by_agent(days, pending, today),
            by_category=_by_category(categories, pending),
            pending_approvals={a.id: _pending(a) for a in approvals},
            alerts=[
                Alert(
                    r["kind"],
                    r["scope"],
                    r["threshold"],
                    r["spent"],
                    r["limit"],
                    r["period"],
                    r["at"],
                )
                for r in alert_rows
            ],
            frozen=state.freeze_reason,
            scopes=scopes,
        )

    def balances(self, prefix: str = ROOT) -> list[ScopeBalance]:
        """Every scope with a budget that is ``prefix`` or under it, in path order."""
        check_scope(prefix)
        with self.context.store.read() as ledger:
            return self.balances_in(ledger, prefix)

    @staticmethod
    def balances_in(ledger: Ledger, prefix: str) -> list[ScopeBalance]:
        """:meth:`balances` in an open transaction."""
        budgeted = [c for c in ledger.scope_budgets() if in_scope(c.scope, prefix)]
        if not budgeted:
            return []
        held: dict[str, int] = defaultdict(int)
        for charge in ledger.pending_charges():
            held[ROOT] += charge.amount
            for scope in charged_scopes(charge.scope, charge.workflow):
                held[scope] += charge.amount
        return [
            ScopeBalance(
                scope=c.scope,
                allocated=c.budget or 0,
                spent=c.used - held[c.scope],
                reserved=held[c.scope],
                remaining=max((c.budget or 0) - c.used, 0),
            )
            for c in sorted(budgeted, key=lambda c: scope_order(c.scope))
        ]

    def _by_agent(
        self, days: dict[tuple[str, str], int], pending: Pending, today: str
    ) -> dict[str, AgentReport]:
        by_agent: dict[str, AgentReport] = {}
        removed = self.context.removed
        for agent in sorted([*self.context.agents.values(), *removed.values()], key=_by_id):
            used = sum(v for (agent_id, _), v in days.items() if agent_id == agent.id)
            used_today = days.get((agent.id, today), 0)
            held = sum(a for agent_id, _, _, a in pending if agent_id == agent.id)
            held_today = sum(
                a for agent_id, day, _, a in pending if agent_id == agent.id and day == today
            )
            by_agent[agent.id] = AgentReport(
                agent_id=agent.id,
                name=agent.name,
                spent=used - held,
                reserved=held,
                spent_today=used_today - held_today,
                daily_limit=agent.daily_limit,
                remaining_today=max(agent.daily_limit - used_today, 0),
                scope=agent.scope,
                removed=agent.id in removed,
            )
        return by_agent

    def reservation(self, reservation_id: str) -> Reservation:
        with self.context.store.read() as ledger:
            row = ledger.reservation(reservation_id)
        if row is None:
            raise NotFound(f"no reservation {reservation_id!r}")
        return row

    def reservations(self, *statuses: ReservationStatus) -> list[Reservation]:
        with self.context.store.read() as ledger:
            return ledger.reservations(statuses or None)

    def audit_log(
        self, *, reservation_id: str | None = None, limit: int | None = None
    ) -> list[AuditEntry]:
        with self.context.store.read() as ledger:
            return ledger.audit_log(reservation_id=reservation_id, limit=limit)


def _by_id(agent: AgentConfig) -> str:
    return agent.id


def _by_category(
    categories: dict[str, tuple[int | None, int]], pending: Pending
) -> dict[str, CategoryReport]:
    by_category: dict[str, CategoryReport] = {}
    for name, (budget, used) in categories.items():
        held = sum(a for _, _, category, a in pending if category == name)
        by_category[name] = CategoryReport(
            category=name,
            spent=used - held,
            reserved=held,
            budget=budget,
            remaining=None if budget is None else max(budget - used, 0),
        )
    return by_category


def _pending(approval: Approval) -> PendingApproval:
    request = approval.request
    return PendingApproval(
        approval_id=approval.id,
        agent_id=request.agent_id,
        amount=request.amount,
        provider=request.provider,
        purpose=request.purpose,
        category=request.category,
        requested_at=approval.requested_at,
        expires_at=approval.expires_at,
    )
