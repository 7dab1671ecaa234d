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
from escrowkit.coordinator.results import (
    AgentReport,
    Alert,
    BudgetReport,
    CategoryReport,
    PendingApproval,
    RecoveryReport,
    SpendResult,
    SyncReport,
)
from escrowkit.core.reasons import Reason
from escrowkit.core.units import TokenUnits
from escrowkit.ledger import Reservation, ReservationStatus, Store

__all__ = [
    "AgentConfig",
    "AgentHandle",
    "AgentReport",
    "Alert",
    "BudgetCoordinator",
    "BudgetReport",
    "CategoryReport",
    "NoopExecutor",
    "PendingApproval",
    "PlannedSpend",
    "PoolExecutor",
    "Reason",
    "RecoveryReport",
    "Reservation",
    "ReservationStatus",
    "SpendExecutor",
    "SpendRequest",
    "SpendResult",
    "SpendStatus",
    "Store",
    "SyncReport",
    "TokenUnits",
    "TreasuryExecutor",
]
