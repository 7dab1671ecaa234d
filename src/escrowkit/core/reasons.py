"""Machine-readable outcome codes: what programs branch on (the sentence is for people)."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["Reason"]


class Reason(StrEnum):
    """Why a spend was not simply APPROVED: ``SpendResult.code``.

    Stable snake_case values that the Python API, the HTTP API and MCP clients share. For
    a DENIED result the check that failed, in the order the checks run; for
    PENDING_APPROVAL :attr:`APPROVAL_REQUIRED`; for FAILED :attr:`FUNDING_FAILED`.
    """

    FROZEN = "frozen"
    UNKNOWN_AGENT = "unknown_agent"
    CATEGORY = "category"
    INVALID_PROVIDER = "invalid_provider"
    PROVIDER_NOT_ALLOWED = "provider_not_allowed"
    PER_TRANSACTION_LIMIT = "per_transaction_limit"
    HOURLY_LIMIT = "hourly_limit"
    DAILY_LIMIT = "daily_limit"
    CATEGORY_BUDGET = "category_budget"
    SCOPE_BUDGET = "scope_budget"
    TOTAL_BUDGET = "total_budget"
    APPROVAL_EXPIRED = "approval_expired"
    APPROVAL_REJECTED = "approval_rejected"
    APPROVAL_REQUIRED = "approval_required"
    FUNDING_FAILED = "funding_failed"
