"""Times as people read them: UTC dates, durations and windows in words.

The chain's clock is the one that counts (escrow deadlines are chain timestamps), so every
"in 3 h" here is measured from the chain's ``now``, which the caller passes in.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from escrowkit.contracts.escrow_rules import EscrowAction
    from escrowkit.core.errors import ContractRevert

__all__ = ["action_words", "duration", "relative", "utc", "window_error"]

_UNITS = (("d", 86_400), ("h", 3_600), ("min", 60), ("s", 1))


def utc(timestamp: float) -> str:
    """``2025-01-02 10:00:00 UTC``."""
    try:
        moment = dt.datetime.fromtimestamp(timestamp, tz=dt.UTC)
    except (OverflowError, OSError, ValueError):
        return f"{int(timestamp)} (beyond any calendar)"
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def duration(seconds: float) -> str:
    """``3 h 20 min``: the two largest units, ``0 s`` for nothing."""
    left = int(abs(seconds))
    parts = []
    for name, size in _UNITS:
        if left >= size:
            parts.append(f"{left // size} {name}")
            left %= size
    return " ".join(parts[:2]) or "0 s"


def relative(timestamp: float, now: float) -> str:
    """``in 3 h 20 min``, ``5 min ago`` or ``now``."""
    if int(timestamp) == int(now):
        return "now"
    words = duration(timestamp - now)
    return f"in {words}" if timestamp > now else f"{words} ago"


def when(timestamp: float, now: float) -> str:
    """``2025-01-02 10:00:00 UTC (in 3 h)``."""
    return f"{utc(timestamp)} ({relative(timestamp, now)})"


def action_words(action: EscrowAction, now: int) -> str:
    """``the provider may settle from 2025-01-02 10:00:00 UTC (in 3 h)``, and the like."""
    who = f"the {action.party} may {action.action}"
    if action.never:
        return f"the {action.party} may never {action.action} alone (no auto-release)"
    if action.end is not None and now >= action.end:
        return f"{who} no more: that ended {when(action.end, now)}"
    until = "" if action.end is None else f" until {when(action.end, now)}"
    if action.start is None or now >= action.start:
        return f"{who} now{until or ', at any time'}"
    return f"{who} from {when(action.start, now)}{until}"


def window_error(exc: ContractRevert, action: str, now: int) -> str | None:
    """A ``TooEarly``/``TooLate`` revert of ``action`` by the requester, in words (None
    for any other revert)."""
    if exc.name == "TooEarly":
        ready = int(exc.arguments.get("readyAt", 0))
        return (
            f"too early to {action} this escrow: the requester may {action} it from "
            f"{when(ready, now)}, once its deadline has passed (chain time now {utc(now)})"
        )
    if exc.name == "TooLate":
        ended = int(exc.arguments.get("endedAt", 0))
        other = "settle it (pay the provider)" if action == "cancel" else "cancel it"
        return (
            f"too late to {action} this escrow: the requester's window to {action} ended "
            f"{when(ended, now)}; the requester may still {other}, and the provider "
            "may cancel it (a full refund)"
        )
    return None
