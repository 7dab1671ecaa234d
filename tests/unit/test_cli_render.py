"""What the CLI prints, without a chain: JSON with one type per kind of field, and lists
whose ids are whole on an 80-column terminal."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from escrowkit.cli import listing, render
from escrowkit.coordinator import (
    AgentReport,
    Alert,
    BudgetReport,
    PendingApproval,
    Reason,
    SpendRequest,
    SpendResult,
    SpendStatus,
    TokenUnits,
)

PROVIDER = "0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc"
ESCROW = "0x" + "ab" * 32
APPROVAL = "apr_" + "0" * 32


class Token:
    """What the renderers use of a TokenClient."""

    format = TokenUnits(6, "USDC").format


def report() -> BudgetReport:
    return BudgetReport(
        total_budget=10**9,
        total_spent=2**60,
        reserved=0,
        remaining=0,
        by_agent={"a": AgentReport("a", "A", 5, 0, 5, 10**8, 10**8 - 5)},
        pending_approvals={
            APPROVAL: PendingApproval(APPROVAL, "a", 7, PROVIDER, "x", None, 1.5, 2.5)
        },
        alerts=[Alert("total_budget", "total", 80, 8, 10, "", 3.0)],
    )


def test_json_amounts_are_strings_and_counts_numbers() -> None:
    data = render.plain(
        {"token": {"decimals": 6}, **render.plain(report()), "escrow": {"deadline": 99}}
    )
    assert data["total_budget"] == str(10**9) and data["total_spent"] == str(2**60)
    agent = data["by_agent"]["a"]
    assert (agent["spent"], agent["daily_limit"], agent["remaining_today"]) == (
        "5",
        str(10**8),
        str(10**8 - 5),
    )
    (alert,) = data["alerts"]
    assert (alert["threshold"], alert["spent"], alert["limit"], alert["at"]) == (80, "8", "10", 3.0)
    approval = data["pending_approvals"][APPROVAL]
    assert approval["amount"] == "7" and approval["expires_at"] == 2.5
    assert data["token"]["decimals"] == 6 and data["escrow"]["deadline"] == 99


@pytest.fixture
def narrow(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    out = io.StringIO()
    monkeypatch.setattr(listing, "console", Console(file=out, width=80, color_system=None))
    return out


def fits(text: str) -> bool:
    return all(len(line) <= 80 for line in text.splitlines())


def test_a_batch_shows_whole_ids_and_marks_replays(narrow: io.StringIO) -> None:
    ask = SpendRequest("a-rather-long-agent-name", 25 * 10**6, PROVIDER, "x")
    rows: list[Any] = [
        (ask, SpendResult(SpendStatus.APPROVED, "escrow funded", escrow_id=ESCROW), False),
        (
            ask,
            SpendResult(
                SpendStatus.PENDING_APPROVAL,
                "Amount 25.00 USDC is above the approval threshold 10.00 USDC of agent "
                "'a-rather-long-agent-name': needs approval",
                approval_id=APPROVAL,
                code=Reason.APPROVAL_REQUIRED,
            ),
            True,
        ),
    ]
    listing.show_batch(Path("spends.csv"), rows, Token())  # type: ignore[arg-type]
    text = narrow.getvalue()
    assert fits(text), text
    assert f"    escrow {ESCROW}\n" in text and f"    approval {APPROVAL}\n" in text
    assert "PENDING_APPROVAL (replay)" in text and "APPROVED (replay)" not in text


def test_approvals_show_whole_ids(narrow: io.StringIO) -> None:
    listing.show_approvals(report().pending_approvals, Token())  # type: ignore[arg-type]
    text = narrow.getvalue()
    assert fits(text) and APPROVAL in text and PROVIDER in text
