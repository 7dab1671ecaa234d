"""The calendar day a spend counts in, in the coordinator's time zone (pure: the caller
says what time it is)."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass

from escrowkit.core.errors import InvalidRequest

__all__ = ["HOUR", "DayWindows", "parse_zone", "zone_name"]

#: The hourly limit's rolling window, in seconds.
HOUR = 3_600


def parse_zone(timezone: str | dt.tzinfo) -> dt.tzinfo:
    """``"UTC"``, an IANA name (``"Europe/Berlin"``) or a tzinfo; InvalidRequest otherwise."""
    if isinstance(timezone, dt.tzinfo):
        return timezone
    if not isinstance(timezone, str):
        raise InvalidRequest(f"timezone must be a zone name, got {timezone!r}")
    if timezone.upper() == "UTC":
        return dt.UTC
    try:
        return zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise InvalidRequest(f"unknown timezone {timezone!r}") from None


def zone_name(zone: dt.tzinfo) -> str:
    """The name a ledger records its zone by."""
    return "UTC" if zone is dt.UTC else str(zone)


@dataclass
class _Day:
    start: float = 0.0
    end: float = 0.0
    key: str = ""


class DayWindows:
    """Maps a time (UTC seconds) to its calendar day (``"2026-01-02"``) in ``zone``; the
    current day is kept until it ends, so the common case is two comparisons."""

    def __init__(self, zone: dt.tzinfo) -> None:
        self.zone = zone
        self._day = _Day()

    def key(self, now: float) -> str:
        day = self._day
        if day.start <= now < day.end:
            return day.key
        local = dt.datetime.fromtimestamp(now, self.zone)
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        start = midnight.timestamp()
        end = (midnight + dt.timedelta(days=1)).timestamp()
        self._day = _Day(start, end, local.date().isoformat())
        return self._day.key
