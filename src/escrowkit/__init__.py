"""escrowkit: a shared, rule-bound treasury for teams of AI agents.

Solidity escrow and budget-pool contracts hold the money; this package compiles, deploys
and drives them, and a coordinator decides, under a lock, which agent may spend what.

Names are imported lazily (PEP 562) so that ``import escrowkit`` stays fast and does
nothing else (no environment variable, logging or global state is touched); web3 and
friends load on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "Chain": "escrowkit.evm.chain",
    "compile_contracts": "escrowkit.build.compiler",
    "Artifact": "escrowkit.build.compiler",
    "deploy": "escrowkit.contracts.deploy",
    "Deployments": "escrowkit.contracts.deploy",
    "deploy_stack": "escrowkit.contracts.stack",
    "Stack": "escrowkit.contracts.stack",
    "TokenClient": "escrowkit.contracts.token",
    "EscrowClient": "escrowkit.contracts.escrow",
    "EscrowState": "escrowkit.contracts.escrow",
    "EscrowRecord": "escrowkit.contracts.escrow",
    "EscrowId": "escrowkit.contracts.escrow",
    "BudgetPoolClient": "escrowkit.contracts.pool",
    "AgentLimits": "escrowkit.contracts.pool",
    "BudgetCoordinator": "escrowkit.coordinator",
    "AgentConfig": "escrowkit.coordinator",
    "SpendRequest": "escrowkit.coordinator",
    "SpendResult": "escrowkit.coordinator",
    "SpendStatus": "escrowkit.coordinator",
    "BudgetReport": "escrowkit.coordinator",
    "ScopeBalance": "escrowkit.coordinator",
    "Alert": "escrowkit.coordinator",
    "Reason": "escrowkit.core.reasons",
    "parse_units": "escrowkit.core.units",
    "format_units": "escrowkit.core.units",
}

__all__ = [
    "AgentConfig",
    "AgentLimits",
    "Alert",
    "Artifact",
    "BudgetCoordinator",
    "BudgetPoolClient",
    "BudgetReport",
    "Chain",
    "Deployments",
    "EscrowClient",
    "EscrowId",
    "EscrowRecord",
    "EscrowState",
    "Reason",
    "ScopeBalance",
    "SpendRequest",
    "SpendResult",
    "SpendStatus",
    "Stack",
    "TokenClient",
    "compile_contracts",
    "deploy",
    "deploy_stack",
    "format_units",
    "parse_units",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'escrowkit' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:
    from escrowkit.build.compiler import Artifact, compile_contracts
    from escrowkit.contracts.deploy import Deployments, deploy
    from escrowkit.contracts.escrow import EscrowClient, EscrowId, EscrowRecord, EscrowState
    from escrowkit.contracts.pool import AgentLimits, BudgetPoolClient
    from escrowkit.contracts.stack import Stack, deploy_stack
    from escrowkit.contracts.token import TokenClient
    from escrowkit.coordinator import (
        AgentConfig,
        Alert,
        BudgetCoordinator,
        BudgetReport,
        ScopeBalance,
        SpendRequest,
        SpendResult,
        SpendStatus,
    )
    from escrowkit.core.reasons import Reason
    from escrowkit.core.units import format_units, parse_units
    from escrowkit.evm.chain import Chain
