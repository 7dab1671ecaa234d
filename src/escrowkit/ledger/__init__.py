"""The ledger in SQL (SQLAlchemy Core): SQLite by default, PostgreSQL by URL.

Reservations, approvals, idempotency keys, the append-only audit log, alerts and the usage
counters, written under the database's own lock so that processes sharing one database
serialize. See :class:`Store` (the database) and :class:`Ledger` (one transaction).
"""

from escrowkit.ledger.engine import Store
from escrowkit.ledger.keys import ApiKey
from escrowkit.ledger.ledger import Ledger
from escrowkit.ledger.outbox import Event, WebhookCursor
from escrowkit.ledger.records import (
    COUNTED,
    Approval,
    ApprovalStatus,
    AuditEntry,
    IdempotencyRecord,
    Reservation,
    ReservationStatus,
    TreasuryState,
)
from escrowkit.ledger.schema import SCHEMA_VERSION, Amount, metadata

__all__ = [
    "COUNTED",
    "SCHEMA_VERSION",
    "Amount",
    "ApiKey",
    "Approval",
    "ApprovalStatus",
    "AuditEntry",
    "Event",
    "IdempotencyRecord",
    "Ledger",
    "Reservation",
    "ReservationStatus",
    "Store",
    "TreasuryState",
    "WebhookCursor",
    "metadata",
]
