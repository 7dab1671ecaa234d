"""The time windows as the coordinator applies them (no chain: a no-op executor).

Daily: the calendar day in UTC, or in the configured zone. Hourly: rolling 3,600 s.
Both driven by the injected clock."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from escrowkit.coordinator import (
    AgentConfig,
    BudgetCoordinator,
    NoopExecutor,
    SpendRequest,
    SpendStatus,
)
from escrowkit.errors import ConfigurationError

U = 10**6
AGENT = "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf"
PROVIDER = "0x2B5AD5c4795c026514f8317c7a215E218DcCD6cF"


class Clock:
    def __init__(self, when: dt.datetime) -> None:
        self.now = when.timestamp()

    def __call__(self) -> float:
        return self.now

    def set(self, when: dt.datetime) -> None:
        self.now = when.timestamp()


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)  # type: ignore[misc]


def coordinator(clock: Clock, store: str | None = None, **extra: object) -> BudgetCoordinator:
    made = BudgetCoordinator(
        None, total_budget=10**6 * U, executor=NoopExecutor(), clock=clock, store=store, **extra
    )  # type: ignore[arg-type]
    made.register_agent(
        AgentConfig("a", "A", AGENT, 100 * U, 100 * U, 100 * U, hourly_limit=60 * U)
    )
    return made


def spend(c: BudgetCoordinator, amount: int) -> SpendStatus:
    return c.request_spending(SpendRequest("a", amount * U, PROVIDER, "x")).status


def test_daily_limit_resets_at_utc_midnight() -> None:
    clock = Clock(utc(2026, 3, 1, 20, 0))
    c = coordinator(clock)
    for hour in (20, 21, 22, 23):  # 4 x 25 = the day's 100
        clock.set(utc(2026, 3, 1, hour, 59, 59))
        assert spend(c, 25) is SpendStatus.APPROVED
    clock.set(utc(2026, 3, 1, 23, 59, 59, 900_000))
    assert spend(c, 1) is SpendStatus.DENIED
    clock.set(utc(2026, 3, 2, 0, 59, 59))  # a new day; the hour since 23:59:59 is over too
    assert spend(c, 50) is SpendStatus.APPROVED
    assert c.report().by_agent["a"].spent_today == 50 * U


def test_daily_limit_follows_the_configured_zone() -> None:
    """New York midnight in March (EST, before the switch) is 05:00 UTC."""
    clock = Clock(utc(2026, 3, 2, 3, 0))
    c = coordinator(clock, timezone="America/New_York")
    for minutes in (0, 61, 122, 183):  # 22:00 - 01:03 New York time, same local day
        clock.set(utc(2026, 3, 2, 1, 0) + dt.timedelta(minutes=minutes))
        assert spend(c, 25) is SpendStatus.APPROVED
    clock.set(utc(2026, 3, 2, 4, 30))  # 23:30 in New York: still the same day
    assert spend(c, 1) is SpendStatus.DENIED
    clock.set(utc(2026, 3, 2, 5, 0))  # New York midnight
    assert spend(c, 1) is SpendStatus.APPROVED


def test_hourly_limit_is_a_rolling_window() -> None:
    start = utc(2026, 3, 1, 10, 0)
    clock = Clock(start)
    c = coordinator(clock)
    assert spend(c, 40) is SpendStatus.APPROVED  # at 10:00:00
    clock.set(start + dt.timedelta(minutes=30))
    assert spend(c, 20) is SpendStatus.APPROVED  # 60 of 60 within the hour
    clock.set(start + dt.timedelta(minutes=59, seconds=59))
    result = c.request_spending(SpendRequest("a", U, PROVIDER, "x"))
    assert result.status is SpendStatus.DENIED and "hourly limit 60.00 USDC" in result.reason
    clock.set(start + dt.timedelta(hours=1))  # the 40 at 10:00:00 has left the window
    assert spend(c, 40) is SpendStatus.APPROVED


def test_a_store_keeps_its_zone(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'l.db'}"
    clock = Clock(utc(2026, 3, 1, 12, 0))
    coordinator(clock, store=url).close()
    with pytest.raises(ConfigurationError, match="timezone"):
        coordinator(clock, store=url, timezone="Europe/Paris")
