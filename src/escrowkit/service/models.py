"""The wire shapes of the HTTP API (and of MCP's structured results): pydantic models,
from which the OpenAPI document is generated.

Requests refuse unknown fields (``agent_id`` in a spend's body is a 400: the agent comes
from the key). In responses every field is always present, ``null`` when empty; amounts
are strings of base units (exact beyond 2**53), times UTC seconds.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StringConstraints

__all__ = [
    "AgentIn",
    "AgentOut",
    "AgentReportOut",
    "AlertOut",
    "Amount",
    "AmountIn",
    "ApprovalList",
    "ApprovalOut",
    "ApproveIn",
    "AuditEntryOut",
    "AuditList",
    "BalanceList",
    "BalanceOut",
    "BudgetIn",
    "BudgetOut",
    "CategoryReportOut",
    "ErrorBody",
    "ErrorOut",
    "EventOut",
    "FreezeIn",
    "FrozenOut",
    "HealthOut",
    "MeOut",
    "PendingApprovalOut",
    "RejectIn",
    "RemovedOut",
    "ReportOut",
    "SpendIn",
    "SpendList",
    "SpendOut",
    "SpendResultOut",
]

#: An amount in a response: a string of base units.
Amount = Annotated[str, StringConstraints(pattern=r"^[0-9]+$")]
#: An amount in a request: a JSON integer or a string of base units.
AmountIn = Annotated[
    StrictInt | Annotated[str, StringConstraints(pattern=r"^[0-9]{1,78}$")],
    Field(description="Base units: a JSON integer or a string of digits (25 USDC: 25000000)."),
]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---- errors --------------------------------------------------------------------------------


class ErrorBody(_Out):
    type: Literal[
        "invalid_request_error",
        "authentication_error",
        "permission_error",
        "idempotency_error",
        "api_error",
    ]
    code: str = Field(description="What programs branch on, e.g. idempotency_key_mismatch.")
    message: str = Field(description="For people; never holds a key.")


class ErrorOut(_Out):
    error: ErrorBody


class HealthOut(_Out):
    status: Literal["ok"]


# ---- spends --------------------------------------------------------------------------------


class SpendIn(_In):
    """A spend as the agent whose key this is."""

    amount: AmountIn
    provider: str = Field(description="Who gets paid: a checksummed address.")
    purpose: str = Field(description="What it is for (goes to the audit log).")
    category: str | None = None
    workflow: str | None = Field(
        default=None, description="Charges the workflow's scope too (DESIGN.md section 8)."
    )


class SpendResultOut(_Out):
    """A decision: APPROVED (funded on-chain), DENIED (``code`` names the check),
    PENDING_APPROVAL (``approval_id``) or FAILED (nothing counted; ``error`` says why)."""

    status: Literal["APPROVED", "DENIED", "PENDING_APPROVAL", "FAILED"]
    code: str | None
    reason: str
    reservation_id: str | None
    escrow_id: str | None
    approval_id: str | None
    remaining_daily: Amount | None
    remaining_total: Amount | None
    tx_hashes: list[str]
    error: dict[str, Any] | None


class SpendOut(_Out):
    """A spend's ledger row (``status``: PENDING, COMMITTED, SETTLED, VOIDED, REFUNDED)."""

    reservation_id: str
    agent_id: str
    amount: Amount
    provider: str
    purpose: str
    category: str | None
    workflow: str | None
    status: Literal["PENDING", "COMMITTED", "SETTLED", "VOIDED", "REFUNDED"]
    escrow_id: str | None
    approval_id: str | None
    tx_hashes: list[str]
    created_at: float


class SpendList(_Out):
    data: list[SpendOut]
    next: str | None = Field(description="Pass as ``after`` for the next page; null: last page.")


# ---- approvals -----------------------------------------------------------------------------


class ApprovalOut(_Out):
    approval_id: str
    agent_id: str
    amount: Amount
    provider: str
    purpose: str
    category: str | None
    status: Literal["PENDING", "APPROVED", "DENIED", "REJECTED", "EXPIRED"]
    requested_at: float
    expires_at: float
    decided_at: float | None
    decided_by: str | None
    reason: str | None
    reservation_id: str | None


class ApprovalList(_Out):
    data: list[ApprovalOut]
    next: str | None


class ApproveIn(_In):
    note: str = ""


class RejectIn(_In):
    reason: str


# ---- reading -------------------------------------------------------------------------------


class BalanceOut(_Out):
    """A scope's budget (``""`` is the root: the total budget)."""

    scope: str
    allocated: Amount
    spent: Amount
    reserved: Amount
    remaining: Amount


class BalanceList(_Out):
    data: list[BalanceOut]
    next: str | None


class MeOut(_Out):
    """The agent's limits and what it has used of them (today is the coordinator's day)."""

    agent_id: str
    name: str
    address: str
    spending_limit: Amount
    daily_limit: Amount
    requires_approval: Amount
    hourly_limit: Amount | None
    categories: list[str] | None
    allowed_providers: list[str] | None
    day: str
    spent_today: Amount
    reserved_today: Amount
    remaining_today: Amount
    used_this_hour: Amount
    remaining_this_hour: Amount | None
    scopes: list[BalanceOut]


class AgentReportOut(_Out):
    agent_id: str
    name: str
    spent: Amount
    reserved: Amount
    spent_today: Amount
    daily_limit: Amount
    remaining_today: Amount


class CategoryReportOut(_Out):
    category: str
    spent: Amount
    reserved: Amount
    budget: Amount | None
    remaining: Amount | None


class PendingApprovalOut(_Out):
    approval_id: str
    agent_id: str
    amount: Amount
    provider: str
    purpose: str
    category: str | None
    requested_at: float
    expires_at: float


class AlertOut(_Out):
    kind: str
    scope: str
    threshold: int
    spent: Amount
    limit: Amount
    period: str
    at: float


class ReportOut(_Out):
    """The BudgetReport's fields by name (an agent key: the treasury's figures and its
    own agent, approvals, alerts and scopes only)."""

    total_budget: Amount
    total_spent: Amount
    reserved: Amount
    remaining: Amount
    by_agent: dict[str, AgentReportOut]
    by_category: dict[str, CategoryReportOut]
    pending_approvals: dict[str, PendingApprovalOut]
    alerts: list[AlertOut]
    scopes: list[BalanceOut]
    frozen: str | None


class AuditEntryOut(_Out):
    id: int
    at: float
    event: str
    agent_id: str | None
    reservation_id: str | None
    approval_id: str | None
    amount: Amount | None
    detail: dict[str, Any]


class AuditList(_Out):
    data: list[AuditEntryOut]
    next: str | None


class EventOut(_Out):
    """One event: an SSE message's data and a webhook's body. ``text`` is a sentence,
    so that a Slack or Discord incoming webhook shows it as a message."""

    id: int
    type: Literal["decision", "approval", "alert", "escrow"]
    created_at: float
    agent_id: str | None
    data: dict[str, Any]
    text: str


# ---- administration ------------------------------------------------------------------------


class FreezeIn(_In):
    reason: str


class FrozenOut(_Out):
    frozen: bool
    reason: str | None


class AgentIn(_In):
    """An agent and its limits (base units); registering an existing id updates it."""

    id: str
    name: str | None = None
    address: str
    spending_limit: AmountIn
    daily_limit: AmountIn
    requires_approval: AmountIn
    hourly_limit: AmountIn | None = None
    categories: list[str] | None = None
    allowed_providers: list[str] | None = None
    scope: str = Field(default="", description="Where the agent sits ('' the root).")
    parent: str | None = Field(
        default=None, description="Spawn as a child of this agent (scope must then be '')."
    )


class AgentOut(_Out):
    id: str
    name: str
    address: str
    spending_limit: Amount
    daily_limit: Amount
    requires_approval: Amount
    hourly_limit: Amount | None
    categories: list[str] | None
    allowed_providers: list[str] | None
    scope: str
    path: str = Field(description="What its spends charge (scope/agent:<id>).")


class RemovedOut(_Out):
    removed: list[str] = Field(description="The agent and its descendants, now removed.")


class BudgetIn(_In):
    amount: AmountIn | None = Field(description="Base units; null removes the budget.")


class BudgetOut(_Out):
    scope: str
    amount: Amount | None
