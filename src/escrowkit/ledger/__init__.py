"""The ledger in SQL (SQLAlchemy Core): SQLite by default, PostgreSQL by URL.

Reservations, approvals, idempotency keys, the append-only audit log, alerts and the usage
counters, written under the database's own lock so that processes sharing one database
serialize. See :class:`Store` (the database) and :class:`Ledger` (one transaction).
"""

from escrowkit.ledger.store import (
    COUNTED,
    SCHEMA_VERSION,
    Amount,
    Approval,
    ApprovalStatus,
    AuditEntry,
    IdempotencyRecord,
    Ledger,
    Reservation,
    ReservationStatus,
    Store,
    TreasuryState,
    metadata,
)

__all__ = [
    "COUNTED",
    "SCHEMA_VERSION",
    "Amount",
    "Approval",
    "ApprovalStatus",
    "AuditEntry",
    "IdempotencyRecord",
    "Ledger",
    "Reservation",
    "ReservationStatus",
    "Store",
    "TreasuryState",
    "metadata",
]
