"""The spending rules, pure: functions of the figures the ledger hands in (no I/O, no
chain, no clock). The coordinator gathers the figures under its lock and asks these."""

from escrowkit.budget.outcomes import Decision, SpendStatus
from escrowkit.budget.policy import PolicyInputs, Usage, evaluate
from escrowkit.budget.requests import ROLE_PRESETS, AgentConfig, SpendRequest

__all__ = [
    "ROLE_PRESETS",
    "AgentConfig",
    "Decision",
    "PolicyInputs",
    "SpendRequest",
    "SpendStatus",
    "Usage",
    "evaluate",
]
