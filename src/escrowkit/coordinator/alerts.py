"""Alerts: net committed spend reaching 80, 90 and 100 % of the total budget or of an
agent's daily limit fires once per limit, across every process on one ledger."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from escrowkit.coordinator.context import Context
from escrowkit.coordinator.outbox import record_alert
from escrowkit.coordinator.results import Alert
from escrowkit.core.errors import InvalidRequest
from escrowkit.ledger import Ledger, Reservation

__all__ = ["ALERT_THRESHOLDS", "Alerts"]

logger = logging.getLogger(__name__)

ALERT_THRESHOLDS = (80, 90, 100)


class Alerts:
    """Finds the alerts a commit crosses (recorded in the ledger, once) and, after the
    transaction, calls back."""

    def __init__(self, context: Context) -> None:
        self.context = context
        self._callbacks: list[Callable[[Alert], object]] = []
        self._fired: set[tuple[str, str, int, str, int]] = set()

    def on_alert(self, callback: Callable[[Alert], object]) -> Callable[[Alert], object]:
        if not callable(callback):
            raise InvalidRequest("on_alert needs a callable")
        self._callbacks.append(callback)
        return callback

    def crossed(self, ledger: Ledger, row: Reservation, now: float) -> list[Alert]:
        """Alerts crossed by committing ``row``: recorded in the store (once across
        processes), returned to be fired after the transaction commits."""
        state = ledger.state()
        agent = self.context.agents.get(row.agent_id)
        day_used = ledger.day_used(row.agent_id, row.day)
        # Usage counts reservations too, so it bounds committed spend from above: below
        # the lowest threshold nothing can fire and the pending rows need not be read.
        low = ALERT_THRESHOLDS[0]
        total_near = state.used * 100 >= low * state.total_budget
        daily_near = agent is not None and day_used * 100 >= low * agent.daily_limit
        if not (total_near or daily_near):
            return []
        fired: list[Alert] = []
        pending = ledger.pending_amounts()
        if total_near:
            committed = state.used - sum(amount for *_, amount in pending)
            fired += self._record(
                ledger, "total_budget", "total", "", committed, state.total_budget, now
            )
        if daily_near and agent is not None:
            in_flight = sum(
                a for agent_id, day, _, a in pending if agent_id == row.agent_id and day == row.day
            )
            spent = day_used - in_flight
            fired += self._record(
                ledger, "daily_limit", row.agent_id, row.day, spent, agent.daily_limit, now
            )
        return fired

    def _record(
        self,
        ledger: Ledger,
        kind: str,
        scope: str,
        period: str,
        spent: int,
        limit: int,
        now: float,
    ) -> list[Alert]:
        fired = []
        for threshold in ALERT_THRESHOLDS:
            if spent * 100 < threshold * limit:
                continue
            if (kind, scope, threshold, period, limit) in self._fired:
                continue
            if ledger.record_alert(kind, scope, threshold, period, spent, limit, now):
                ledger.audit(
                    "alert",
                    now,
                    agent_id=scope if kind == "daily_limit" else None,
                    kind=kind,
                    threshold=threshold,
                    spent=str(spent),
                    limit=str(limit),
                    period=period,
                )
                alert = Alert(kind, scope, threshold, spent, limit, period, now)
                record_alert(ledger, alert)
                fired.append(alert)
        return fired

    def fire(self, alerts: Iterable[Alert]) -> None:
        """After the commit: remember, log and call back (a failing callback is logged)."""
        units = self.context.units
        for alert in alerts:
            self._fired.add((alert.kind, alert.scope, alert.threshold, alert.period, alert.limit))
            logger.warning(
                "alert: %s %s reached %d%% (%s of %s)",
                alert.kind,
                alert.scope,
                alert.threshold,
                units.format(alert.spent),
                units.format(alert.limit),
            )
            for callback in list(self._callbacks):
                try:
                    callback(alert)
                except Exception:
                    logger.exception("alert callback %r failed", callback)
