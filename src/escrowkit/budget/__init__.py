"""The spending rules, pure: functions of the figures the ledger hands in (no I/O, no
chain, no clock). The coordinator gathers the figures under its lock and asks these."""

from escrowkit.budget.outcomes import Decision, SpendStatus
from escrowkit.budget.policy import PolicyInputs, ScopeUsage, Usage, evaluate
from escrowkit.budget.requests import ROLE_PRESETS, AgentConfig, SpendRequest
from escrowkit.budget.scopes import ROOT, charged_scopes, check_scope

__all__ = [
    "ROLE_PRESETS",
    "ROOT",
    "AgentConfig",
    "Decision",
    "PolicyInputs",
    "ScopeUsage",
    "SpendRequest",
    "SpendStatus",
    "Usage",
    "charged_scopes",
    "check_scope",
    "evaluate",
]
