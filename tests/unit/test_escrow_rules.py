"""Escrow's state table as data, and in words: who may do what to an escrow, from when."""

from __future__ import annotations

import pytest

from escrowkit.cli.times import action_words, duration, relative, utc, window_error
from escrowkit.contracts.escrow import NEVER, EscrowId, EscrowRecord
from escrowkit.contracts.escrow_rules import EscrowAction, escrow_actions
from escrowkit.core.errors import revert_class
from escrowkit.core.escrow_state import EscrowState

REQUESTER = "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf"
PROVIDER = "0x2B5AD5c4795c026514f8317c7a215E218DcCD6cF"
DEADLINE = 1_767_225_600  # 2026-01-01 00:00:00 UTC


def record(state: EscrowState, window: int = 3_600) -> EscrowRecord:
    return EscrowRecord(
        EscrowId(b"\1" * 32),
        REQUESTER,
        PROVIDER,
        25_000_000,
        DEADLINE,
        window,
        state,  # type: ignore[arg-type]
    )


def allowed(state: EscrowState, now: int, window: int = 3_600) -> set[tuple[str, str]]:
    return {(a.party, a.action) for a in escrow_actions(record(state, window)) if a.open_at(now)}


def test_what_each_party_may_do_follows_the_contract() -> None:
    before, during, after = DEADLINE - 1, DEADLINE + 10, DEADLINE + 3_600
    assert allowed(EscrowState.INITIATED, before) == {
        ("requester", "fund"),
        ("requester", "cancel"),
        ("provider", "cancel"),
    }
    assert ("requester", "fund") not in allowed(EscrowState.INITIATED, DEADLINE)
    assert allowed(EscrowState.FUNDED, before) == {("requester", "settle"), ("provider", "cancel")}
    assert allowed(EscrowState.FUNDED, during) == {
        ("requester", "settle"),
        ("requester", "cancel"),
        ("provider", "cancel"),
    }
    assert allowed(EscrowState.FUNDED, after) == {
        ("requester", "settle"),
        ("provider", "settle"),
        ("provider", "cancel"),
    }
    never = allowed(EscrowState.FUNDED, after + 10**9, window=NEVER)
    assert ("provider", "settle") not in never and ("requester", "cancel") in never
    assert escrow_actions(record(EscrowState.SETTLED)) == ()
    assert escrow_actions(record(EscrowState.CANCELLED)) == ()


def test_times_in_words() -> None:
    assert utc(DEADLINE) == "2026-01-01 00:00:00 UTC"
    assert duration(3_600 * 3 + 20 * 60 + 5) == "3 h 20 min"
    assert duration(2 * 86_400 + 3_600) == "2 d 1 h"
    assert duration(0) == "0 s"
    assert relative(DEADLINE, DEADLINE - 90) == "in 1 min 30 s"
    assert relative(DEADLINE, DEADLINE + 60) == "1 min ago"
    assert relative(DEADLINE, DEADLINE) == "now"


def test_each_action_says_when() -> None:
    cancel = EscrowAction("requester", "cancel", start=DEADLINE, end=DEADLINE + 3_600)
    assert action_words(cancel, DEADLINE - 7_200) == (
        "the requester may cancel from 2026-01-01 00:00:00 UTC (in 2 h) "
        "until 2026-01-01 01:00:00 UTC (in 3 h)"
    )
    assert action_words(cancel, DEADLINE + 60).startswith("the requester may cancel now until ")
    assert action_words(cancel, DEADLINE + 3_600).startswith(
        "the requester may cancel no more: that ended 2026-01-01 01:00:00 UTC"
    )
    assert action_words(EscrowAction("provider", "cancel"), 0) == (
        "the provider may cancel now, at any time"
    )
    assert "may never settle alone" in action_words(
        EscrowAction("provider", "settle", never=True), 0
    )


@pytest.mark.parametrize(
    ("name", "arguments", "words"),
    [
        (
            "TooEarly",
            {"id": b"\1" * 32, "readyAt": DEADLINE},
            "too early to cancel this escrow: the requester may cancel it from "
            "2026-01-01 00:00:00 UTC (in 1 h)",
        ),
        (
            "TooLate",
            {"id": b"\1" * 32, "endedAt": DEADLINE},
            "too late to cancel this escrow: the requester's window to cancel ended "
            "2026-01-01 00:00:00 UTC (1 h ago)",
        ),
    ],
)
def test_window_reverts_say_the_window_in_words(
    name: str, arguments: dict[str, object], words: str
) -> None:
    exc = revert_class(name)(arguments)
    now = DEADLINE - 3_600 if name == "TooEarly" else DEADLINE + 3_600
    assert (window_error(exc, "cancel", now) or "").startswith(words)
    assert window_error(revert_class("InvalidState")({}), "cancel", 0) is None
