"""The budget coordinator: many agents, one treasury, no overspend, no half-done spend.

``BudgetCoordinator`` (orchestration) over ``policy`` (pure checks) and ``store`` (the SQL
ledger); the chain work goes through an executor (``executor``).
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
