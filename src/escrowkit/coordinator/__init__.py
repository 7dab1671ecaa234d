"""The budget coordinator: many agents, one treasury, no overspend, no half-done spend.

``BudgetCoordinator`` is a façade over the rooms that do the work: spending and commit
(a spend's three phases), resolution (recover, sync, settle, cancel), approvals, alerts,
reporting and configuration. The rules are :mod:`escrowkit.budget` (pure), the books
:mod:`escrowkit.ledger`; the chain work goes through an executor (:mod:`.executors`).
"""

from escrowkit.budget import AgentConfig, SpendRequest, SpendStatus
from escrowkit.coordinator.coordinator import AgentHandle, BudgetCoordinator
from escrowkit.coordinator.executors import (
    NoopExecutor,
    PlannedSpend,
    PoolExecutor,
    SpendExecutor,
    TreasuryExecutor,
)
from escrowkit.coordinator.keys import ROLES, ApiKey, ApiKeys
from escrowkit.coordinator.outbox import EVENT_TYPES, Event, Outbox, WebhookCursor, describe
from escrowkit.coordinator.results import (
    AgentReport,
    Alert,
    BudgetReport,
    CategoryReport,
    PendingApproval,
    RecoveryReport,
    ScopeBalance,
    SpendResult,
    SyncReport,
)
from escrowkit.coordinator.views import MAX_PAGE, AgentBudget, Page
from escrowkit.core.reasons import Reason
from escrowkit.core.units import TokenUnits
from escrowkit.ledger import (
    Approval,
    ApprovalStatus,
    AuditEntry,
    Reservation,
    ReservationStatus,
    Store,
)

__all__ = [
    "EVENT_TYPES",
    "MAX_PAGE",
    "ROLES",
    "AgentBudget",
    "AgentConfig",
    "AgentHandle",
    "AgentReport",
    "Alert",
    "ApiKey",
    "ApiKeys",
    "Approval",
    "ApprovalStatus",
    "AuditEntry",
    "BudgetCoordinator",
    "BudgetReport",
    "CategoryReport",
    "Event",
    "NoopExecutor",
    "Outbox",
    "Page",
    "PendingApproval",
    "PlannedSpend",
    "PoolExecutor",
    "Reason",
    "RecoveryReport",
    "Reservation",
    "ReservationStatus",
    "ScopeBalance",
    "SpendExecutor",
    "SpendRequest",
    "SpendResult",
    "SpendStatus",
    "Store",
    "SyncReport",
    "TokenUnits",
    "TreasuryExecutor",
    "WebhookCursor",
    "describe",
]
