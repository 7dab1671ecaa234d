"""Lists a page at a time, for the service's paginated endpoints: spends and approvals
newest first (their ids are in time order, so the primary key orders them), the audit
log oldest first. A page is read by id: ``before`` / ``after`` the last id seen."""

from __future__ import annotations

import json

from sqlalchemy import select

from escrowkit.ledger import statements as st
from escrowkit.ledger.records import (
    Approval,
    ApprovalStatus,
    AuditEntry,
    Reservation,
    ReservationStatus,
)
from escrowkit.ledger.schema import approvals_table, audit_table, reservations_table
from escrowkit.ledger.unit import UnitOfWork

__all__ = ["PageRows"]

A, L = approvals_table.c, audit_table.c


class PageRows(UnitOfWork):
    """Paginated reads (mixed into :class:`~escrowkit.ledger.Ledger`)."""

    def reservations_page(
        self,
        *,
        statuses: tuple[ReservationStatus, ...] = (),
        agent_id: str | None = None,
        before: str | None = None,
        limit: int,
    ) -> list[Reservation]:
        """Up to ``limit`` reservations, newest first, older than the id ``before``."""
        self.flush()
        query = select(reservations_table)
        if statuses:
            query = query.where(st.status_is(*statuses))
        if agent_id is not None:
            query = query.where(st.R.agent_id == agent_id)
        if before is not None:
            query = query.where(st.R.id < before)
        rows = self.conn.execute(query.order_by(st.R.id.desc()).limit(limit))
        return [Reservation.from_row(row) for row in rows]

    def approvals_page(
        self,
        *,
        status: ApprovalStatus | None = None,
        agent_id: str | None = None,
        before: str | None = None,
        limit: int,
    ) -> list[Approval]:
        """Up to ``limit`` approvals, newest first, older than the id ``before``."""
        query = select(approvals_table)
        if status is not None:
            query = query.where(A.status == status.value)
        if agent_id is not None:
            query = query.where(A.agent_id == agent_id)
        if before is not None:
            query = query.where(A.id < before)
        rows = self.conn.execute(query.order_by(A.id.desc()).limit(limit))
        return [Approval.from_row(row) for row in rows]

    def audit_page(
        self, *, after: int = 0, agent_id: str | None = None, limit: int
    ) -> list[AuditEntry]:
        """Up to ``limit`` audit entries with ids above ``after``, oldest first."""
        self.flush()
        query = select(audit_table).where(L.id > after)
        if agent_id is not None:
            query = query.where(L.agent_id == agent_id)
        rows = self.conn.execute(query.order_by(L.id).limit(limit))
        return [
            AuditEntry(
                id=row.id,
                at=row.at,
                event=row.event,
                agent_id=row.agent_id,
                reservation_id=row.reservation_id,
                approval_id=row.approval_id,
                amount=row.amount,
                detail=json.loads(row.detail),
            )
            for row in rows
        ]
