"""What the dashboard shows, in one JSON document (``GET /dashboard/state``): the
figures of ``report()`` (and of ``balances()``, through :func:`..queries.balances`, the
one place scope balances come from), pending approvals, recent decisions and alerts,
escrows and spend over time.

Every amount is ``{"value": <base units as a string>, "text": <TokenUnits.format>}``:
the page prints ``text`` (the project's one formatter: at least two decimals, as many as
it takes to be exact) and uses ``value`` only to size bars. Nothing is rounded here.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from escrowkit.coordinator import ApiKey, ReservationStatus, describe
from escrowkit.service.dashboard.escrows import escrow_rows
from escrowkit.service.models import BalanceOut

__all__ = ["build_state", "spend_series"]

#: Recent events read to find the latest decisions and alerts.
RECENT_EVENTS = 400
RECENT_DECISIONS = 12
RECENT_ALERTS = 10
#: At most this many pages of spends feed the chart (``truncated`` says when that cut).
CHART_PAGES = 20
HOUR, DAY = 3_600, 86_400


def _amount(units: Any, value: int) -> dict[str, str]:
    return {"value": str(value), "text": units.format(value)}


def _time(seconds: float, tz: dt.tzinfo) -> str:
    return dt.datetime.fromtimestamp(seconds, tz).strftime("%Y-%m-%d %H:%M:%S")


def _budget(report: Any, units: Any) -> dict[str, Any]:
    total = report.total_budget
    return {
        "total": _amount(units, total),
        "spent": _amount(units, report.total_spent),
        "reserved": _amount(units, report.reserved),
        "remaining": _amount(units, report.remaining),
        "used_ratio": 0.0 if total <= 0 else (report.total_spent + report.reserved) / total,
    }


def _agents(report: Any, units: Any) -> list[dict[str, Any]]:
    return [
        {
            "agent_id": a.agent_id,
            "name": a.name,
            "spent_today": _amount(units, a.spent_today),
            "daily_limit": _amount(units, a.daily_limit),
            "remaining_today": _amount(units, a.remaining_today),
            "held_today": _amount(units, max(a.daily_limit - a.remaining_today - a.spent_today, 0)),
            "spent": _amount(units, a.spent),
            "reserved": _amount(units, a.reserved),
        }
        for a in sorted(report.by_agent.values(), key=lambda a: a.agent_id)
    ]


def _categories(report: Any, units: Any) -> list[dict[str, Any]]:
    return [
        {
            "category": c.category,
            "spent": _amount(units, c.spent),
            "reserved": _amount(units, c.reserved),
            "budget": None if c.budget is None else _amount(units, c.budget),
            "remaining": None if c.remaining is None else _amount(units, c.remaining),
        }
        for c in sorted(report.by_category.values(), key=lambda c: c.category)
    ]


def _scopes(scopes: list[BalanceOut], units: Any) -> list[dict[str, Any]]:
    """Scope balances as a tree: path order, each with its depth and own segment."""
    return [
        {
            "scope": s.scope,
            "label": s.scope.rsplit("/", 1)[-1] if s.scope else "treasury (total budget)",
            "depth": 0 if not s.scope else s.scope.count("/") + 1,
            "allocated": _amount(units, int(s.allocated)),
            "spent": _amount(units, int(s.spent)),
            "reserved": _amount(units, int(s.reserved)),
            "remaining": _amount(units, int(s.remaining)),
        }
        for s in scopes
    ]


def _approvals(report: Any, units: Any, tz: dt.tzinfo) -> list[dict[str, Any]]:
    items = sorted(report.pending_approvals.values(), key=lambda p: p.requested_at)
    return [
        {
            "approval_id": p.approval_id,
            "agent_id": p.agent_id,
            "amount": _amount(units, p.amount),
            "provider": p.provider,
            "purpose": p.purpose,
            "category": p.category,
            "requested_at": _time(p.requested_at, tz),
            "expires_at": _time(p.expires_at, tz),
        }
        for p in items
    ]


def _recent(coordinator: Any, units: Any, tz: dt.tzinfo) -> list[dict[str, Any]]:
    """The latest decisions, newest first, as the outbox has them."""
    outbox = coordinator.outbox
    head = outbox.head()
    events: list[Any] = []
    cursor = max(head - RECENT_EVENTS, 0)
    while cursor < head:
        batch = outbox.after(cursor, limit=min(1_000, head - cursor))
        if not batch:
            break
        events.extend(e for e in batch if e.type == "decision")
        cursor = batch[-1].id
    return [
        {
            "id": e.id,
            "at": _time(e.at, tz),
            "agent_id": e.agent_id,
            "status": e.data.get("status"),
            "code": e.data.get("code"),
            "amount": _amount(units, int(e.data.get("amount") or 0)),
            "text": describe(e, units),
            "summary": _summary(e.data),
        }
        for e in reversed(events[-RECENT_DECISIONS:])
    ]


def _short(address: str | None) -> str:
    text = address or ""
    return f"{text[:6]}…{text[-4:]}" if len(text) > 12 else text


def _summary(data: dict[str, Any]) -> str:
    """A decision in a line: who, to whom, what for (the reason, when it was refused)."""
    agent, status = data.get("agent_id") or "?", data.get("status")
    if status == "APPROVED":
        return f"{agent} → {_short(data.get('provider'))} · {data.get('purpose')}"
    if status == "PENDING_APPROVAL":
        return f"{agent} waits for approval · {data.get('purpose')}"
    return f"{agent}: {data.get('reason')}"


def _alerts(report: Any, units: Any, tz: dt.tzinfo) -> list[dict[str, Any]]:
    return [
        {
            "kind": a.kind,
            "scope": a.scope,
            "threshold": a.threshold,
            "spent": _amount(units, a.spent),
            "limit": _amount(units, a.limit),
            "at": _time(a.at, tz),
            "text": (
                f"{'Total budget' if a.kind == 'total_budget' else a.scope + ' daily limit'}"
                f" reached {a.threshold}%"
            ),
        }
        for a in sorted(report.alerts, key=lambda a: a.at, reverse=True)[:RECENT_ALERTS]
    ]


def build_state(coordinator: Any, key: ApiKey, scopes: list[BalanceOut]) -> dict[str, Any]:
    """The dashboard's document for ``key`` (an approver or admin), from one report."""
    units, tz = coordinator.units, coordinator.timezone
    report = coordinator.report()
    now = coordinator.clock()
    return {
        "session": {"role": key.role, "name": key.label},
        "token": {"symbol": units.symbol, "decimals": units.decimals},
        "mode": coordinator.mode,
        "now": _time(now, tz),
        "day": dt.datetime.fromtimestamp(now, tz).date().isoformat(),
        "frozen": report.frozen,
        "budget": _budget(report, units),
        "agents": _agents(report, units),
        "categories": _categories(report, units),
        "scopes": _scopes(scopes, units),
        "approvals": _approvals(report, units, tz),
        "decisions": _recent(coordinator, units, tz),
        "alerts": _alerts(report, units, tz),
        "escrows": escrow_rows(coordinator, is_admin=key.role == "admin"),
        "chart": spend_series(coordinator, now),
    }


def _counted_since(coordinator: Any, since: float) -> tuple[list[Any], bool]:
    """Counted spends (COMMITTED, SETTLED) created at ``since`` or later, and whether
    the chart's page limit cut them short."""
    rows: list[Any] = []
    after = None
    for _ in range(CHART_PAGES):
        page = coordinator.spends(
            ReservationStatus.COMMITTED, ReservationStatus.SETTLED, after=after, limit=100
        )
        fresh = [r for r in page.data if r.created_at >= since]
        rows.extend(fresh)
        if page.next is None or len(fresh) < len(page.data):
            return rows, False
        after = page.next
    return rows, True


def spend_series(coordinator: Any, now: float) -> dict[str, Any]:
    """Spend (committed, net of refunds) per hour over 24 hours and per day over 7 days
    (the coordinator's days), oldest bucket first."""
    units, tz = coordinator.units, coordinator.timezone
    today = dt.datetime.fromtimestamp(now, tz).date()
    day0 = today - dt.timedelta(days=6)
    since_day = dt.datetime.combine(day0, dt.time(), tz).timestamp()
    hour0 = (int(now) // HOUR - 23) * HOUR
    rows, truncated = _counted_since(coordinator, min(since_day, hour0))
    hours = [0] * 24
    days = [0] * 7
    for row in rows:
        if row.created_at >= hour0:
            hours[min(int(row.created_at - hour0) // HOUR, 23)] += row.amount
        index = (dt.datetime.fromtimestamp(row.created_at, tz).date() - day0).days
        if 0 <= index < 7:
            days[index] += row.amount

    def bucket(label: str, value: int) -> dict[str, Any]:
        return {"label": label, **_amount(units, value)}

    return {
        "24h": [
            bucket(dt.datetime.fromtimestamp(hour0 + n * HOUR, tz).strftime("%H:00"), v)
            for n, v in enumerate(hours)
        ],
        "7d": [
            bucket((day0 + dt.timedelta(days=n)).strftime("%a %d"), v) for n, v in enumerate(days)
        ],
        "truncated": truncated,
    }
