"""The chain work of a spend: treasury, pool, or none (see :mod:`.base`)."""

from escrowkit.coordinator.executors.base import (
    POOL_PERIOD,
    ChainExecutor,
    PlannedSpend,
    SpendExecutor,
    tx_hash_of,
)
from escrowkit.coordinator.executors.noop import NoopExecutor
from escrowkit.coordinator.executors.pool import PoolExecutor
from escrowkit.coordinator.executors.treasury import TreasuryExecutor

__all__ = [
    "POOL_PERIOD",
    "ChainExecutor",
    "NoopExecutor",
    "PlannedSpend",
    "PoolExecutor",
    "SpendExecutor",
    "TreasuryExecutor",
    "tx_hash_of",
]
