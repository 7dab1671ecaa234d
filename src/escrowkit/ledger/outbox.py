"""The event outbox: events written in the same transaction as the decision that caused
them (buffered like the audit log, written at flush), read in id order by the service's
event streams and webhook deliveries; and each webhook endpoint's delivery cursor."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.engine import Connection

from escrowkit.ledger.bulk import executemany
from escrowkit.ledger.schema import events_table, webhook_cursors_table
from escrowkit.ledger.unit import CounterCache, UnitOfWork

__all__ = ["Event", "OutboxRows", "WebhookCursor"]

E, W = events_table.c, webhook_cursors_table.c
_INSERT_EVENT = insert(events_table)
_AFTER = (
    select(events_table).where(E.id > bindparam("b_after")).order_by(E.id).limit(bindparam("b_n"))
)
_AFTER_FOR_AGENT = (
    select(events_table)
    .where(E.id > bindparam("b_after"), E.agent_id == bindparam("b_agent"))
    .order_by(E.id)
    .limit(bindparam("b_n"))
)


@dataclass(frozen=True)
class Event:
    """One outbox row: ``type`` is ``decision``, ``approval``, ``alert`` or ``escrow``;
    ``agent_id`` the agent it concerns (None for the treasury's own alerts)."""

    id: int
    at: float
    type: str
    agent_id: str | None
    data: dict[str, Any]


@dataclass(frozen=True)
class WebhookCursor:
    """Where one webhook endpoint's deliveries stand."""

    endpoint: str
    delivered_through: int
    attempts: int
    next_attempt_at: float
    lease_owner: str | None
    lease_until: float
    last_error: str | None


class OutboxRows(UnitOfWork):
    """The outbox's operations (mixed into :class:`~escrowkit.ledger.Ledger`)."""

    def __init__(self, conn: Connection, cache: CounterCache | None = None) -> None:
        super().__init__(conn, cache)
        self._events: list[dict[str, Any]] = []

    def emit(
        self, event: str, now: float, data: Mapping[str, Any], *, agent_id: str | None = None
    ) -> None:
        """Add an event to the outbox; written with the transaction (or not at all)."""
        self._events.append(
            {"at": now, "type": event, "agent_id": agent_id, "data": json.dumps(data)}
        )

    def flush(self) -> None:
        super().flush()
        if self._events:
            executemany(self.conn, _INSERT_EVENT, self._events)
            self._events = []

    def events_after(self, after: int, *, agent_id: str | None = None, limit: int) -> list[Event]:
        self.flush()
        if agent_id is None:
            rows = self.conn.execute(_AFTER, {"b_after": after, "b_n": limit})
        else:
            rows = self.conn.execute(
                _AFTER_FOR_AGENT, {"b_after": after, "b_agent": agent_id, "b_n": limit}
            )
        return [Event(r.id, r.at, r.type, r.agent_id, json.loads(r.data)) for r in rows]

    def event_head(self) -> int:
        """The id of the last event (0 when there is none)."""
        self.flush()
        return int(self.conn.execute(select(func.coalesce(func.max(E.id), 0))).scalar_one())

    # ---- webhook cursors -----------------------------------------------------------------

    def webhook_cursor(self, endpoint: str) -> WebhookCursor | None:
        row = self.conn.execute(select(webhook_cursors_table).where(W.endpoint == endpoint)).first()
        if row is None:
            return None
        m = row._mapping
        return WebhookCursor(
            m["endpoint"],
            m["delivered_through"],
            m["attempts"],
            m["next_attempt_at"],
            m["lease_owner"],
            m["lease_until"],
            m["last_error"],
        )

    def insert_webhook_cursor(self, endpoint: str, through: int, now: float) -> None:
        self.conn.execute(
            insert(webhook_cursors_table).values(
                endpoint=endpoint,
                delivered_through=through,
                attempts=0,
                next_attempt_at=0.0,
                lease_owner=None,
                lease_until=0.0,
                last_error=None,
                updated_at=now,
            )
        )

    def update_webhook_cursor(self, endpoint: str, now: float, **values: Any) -> None:
        self.conn.execute(
            update(webhook_cursors_table)
            .where(W.endpoint == endpoint)
            .values(updated_at=now, **values)
        )
