"""The ledger's operations inside one transaction (:class:`Ledger`).

Tables: ``treasury_state`` (one row: freeze state, config and usage versions; also the
lock row), ``agents``, ``counters`` (every budget and usage counter: the root scope's
total budget, the other scopes', the categories', the agents' days; see
:mod:`~escrowkit.ledger.counters`), ``reservations``, ``approvals``, ``idempotency_keys``,
``audit_log`` (append-only), ``alerts`` and ``meta``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Table, and_, func, insert, select, update

from escrowkit.budget import AgentConfig
from escrowkit.ledger import statements as st
from escrowkit.ledger.counters import Counters
from escrowkit.ledger.keys import KeyRows
from escrowkit.ledger.outbox import OutboxRows
from escrowkit.ledger.pages import PageRows
from escrowkit.ledger.records import (
    COUNTED,
    Approval,
    ApprovalStatus,
    AuditEntry,
    IdempotencyRecord,
    Reservation,
    ReservationStatus,
    agent_from_row,
    agent_to_row,
    hex32,
)
from escrowkit.ledger.schema import (
    agents_table,
    alerts_table,
    approvals_table,
    audit_table,
    meta_table,
    reservations_table,
)

__all__ = ["Ledger"]

# json.dumps builds a new encoder for every call with options; the audit log's is kept.
_detail_json = json.JSONEncoder(default=str, sort_keys=True).encode


class Ledger(Counters, KeyRows, OutboxRows, PageRows):
    """The operations of one transaction (from :meth:`Store.write` or :meth:`Store.read`).
    Reads see what this transaction buffered; writes are flushed with it. The service's
    tables (keys, outbox, pages) have their operations in their own modules."""

    def set_freeze(self, reason: str | None, now: float) -> None:
        self._update_state(frozen=reason is not None, freeze_reason=reason, updated_at=now)

    def bump_config_version(self, now: float) -> None:
        self._update_state(config_version=self.state().config_version + 1, updated_at=now)

    # ---- meta --------------------------------------------------------------------------

    def meta(self) -> dict[str, str]:
        return {row.key: row.value for row in self.conn.execute(select(meta_table))}

    def set_meta(self, key: str, value: str) -> None:
        if self.conn.execute(select(meta_table.c.value).where(meta_table.c.key == key)).first():
            self.conn.execute(update(meta_table).where(meta_table.c.key == key).values(value=value))
        else:
            self.conn.execute(insert(meta_table).values(key=key, value=value))

    # ---- agents --------------------------------------------------------------------------

    def agents(self, *, removed: bool = False) -> dict[str, AgentConfig]:
        """The enabled agents by id (``removed=True``: those removed instead)."""
        a = agents_table.c
        where = a.removed_at.is_not(None) if removed else a.removed_at.is_(None)
        rows = self.conn.execute(select(agents_table).where(where).order_by(a.id))
        return {row.id: agent_from_row(row) for row in rows}

    def upsert_agent(self, config: AgentConfig, now: float) -> None:
        """Register or update an agent (enabled: registering a removed id re-enables it)."""
        values = agent_to_row(config, now)
        exists = self.conn.execute(
            select(agents_table.c.id).where(agents_table.c.id == config.id)
        ).first()
        if exists:
            self.conn.execute(
                update(agents_table).where(agents_table.c.id == config.id).values(**values)
            )
        else:
            self.conn.execute(insert(agents_table).values(**values))
        self.bump_config_version(now)

    def remove_agents(self, agent_ids: Sequence[str], now: float) -> None:
        """Disable agents: from now on they are not among :meth:`agents`."""
        a = agents_table.c
        for chunk in st.chunks(list(agent_ids)):
            self.conn.execute(
                update(agents_table)
                .where(and_(a.id.in_(chunk), a.removed_at.is_(None)))
                .values(removed_at=now, updated_at=now)
            )
        self.bump_config_version(now)

    # ---- reservations ------------------------------------------------------------------

    def insert_reservation(self, reservation: Reservation) -> None:
        """Write a PENDING reservation and count it (the root, the agent's day, the
        category, every scope it charges)."""
        self._new_reservations[reservation.id] = reservation.to_row()
        self.add_usage(reservation, reservation.amount)

    def reservation(self, reservation_id: str) -> Reservation | None:
        self.flush()
        row = self.conn.execute(st.SELECT_RESERVATION, {"b_id": reservation_id}).first()
        return None if row is None else Reservation.from_row(row)

    def reservation_by_escrow(self, escrow_id: bytes) -> Reservation | None:
        self.flush()
        row = self.conn.execute(
            select(reservations_table).where(st.R.escrow_id == hex32(escrow_id))
        ).first()
        return None if row is None else Reservation.from_row(row)

    def reservations(
        self,
        statuses: Iterable[ReservationStatus] | None = None,
        *,
        lease_before: float | None = None,
    ) -> list[Reservation]:
        self.flush()
        query = select(reservations_table)
        if statuses is not None:
            query = query.where(st.status_is(*statuses))
        if lease_before is not None:
            query = query.where(st.R.lease_at <= lease_before)
        return [
            Reservation.from_row(row) for row in self.conn.execute(query.order_by(st.R.created_at))
        ]

    def transition(
        self,
        reservation: Reservation,
        to: ReservationStatus,
        now: float,
        *,
        tx_hashes: Sequence[str] | None = None,
        reason: str | None = None,
    ) -> Reservation | None:
        """Move a reservation from the status it has in ``reservation`` to ``to``.

        Returns the updated row, or None when another writer moved it first (the row no
        longer has the expected status). Leaving the counted statuses credits the amount
        back; re-entering them (a voided spend whose escrow was funded after all) counts
        it again.
        """
        hashes = reservation.tx_hashes if tx_hashes is None else tuple(tx_hashes)
        why = reservation.reason if reason is None else reason
        params = {
            "b_id": reservation.id,
            "b_from": reservation.status.value,
            "b_to": to.value,
            "b_at": now,
            "b_tx_hashes": json.dumps(list(hashes)),
            "b_reason": why,
        }
        known = self._statuses.get(reservation.id)
        if known is not None:
            if known != reservation.status.value:
                return None
            self._statuses[reservation.id] = to.value
            self._transitions.append(params)
        else:
            # Only a row this transaction buffered must be written before it is updated;
            # the counters and audit entries wait for the end of the transaction (a commit
            # group that mixes decisions and outcomes would otherwise write them once per
            # outcome).
            if reservation.id in self._new_reservations:
                self._flush_reservations()
            if self.conn.execute(st.TRANSITION, params).rowcount != 1:
                return None
        if reservation.counted != (to in COUNTED):
            delta = -reservation.amount if reservation.counted else reservation.amount
            self.add_usage(reservation, delta)
        return reservation.moved(to, now, hashes, why)

    # ---- approvals ---------------------------------------------------------------------

    def insert_approval(self, approval: Approval) -> None:
        req = approval.request
        self.conn.execute(
            insert(approvals_table).values(
                id=approval.id,
                agent_id=req.agent_id,
                amount=req.amount,
                provider=req.provider,
                purpose=req.purpose,
                category=req.category,
                idempotency_key=req.idempotency_key,
                workflow=req.workflow,
                status=approval.status.value,
                requested_at=approval.requested_at,
                expires_at=approval.expires_at,
            )
        )

    def approval(self, approval_id: str) -> Approval | None:
        row = self.conn.execute(
            select(approvals_table).where(approvals_table.c.id == approval_id)
        ).first()
        return None if row is None else Approval.from_row(row)

    def pending_approvals(self, now: float) -> list[Approval]:
        a = approvals_table.c
        rows = self.conn.execute(
            select(approvals_table)
            .where(and_(a.status == ApprovalStatus.PENDING.value, a.expires_at > now))
            .order_by(a.requested_at)
        )
        return [Approval.from_row(row) for row in rows]

    def open_approvals_of(self, agent_ids: Sequence[str]) -> list[Approval]:
        """Every approval of these agents still PENDING (expired ones too)."""
        a = approvals_table.c
        found: list[Approval] = []
        for chunk in st.chunks(list(agent_ids)):
            rows = self.conn.execute(
                select(approvals_table).where(
                    and_(a.agent_id.in_(chunk), a.status == ApprovalStatus.PENDING.value)
                )
            )
            found += [Approval.from_row(row) for row in rows]
        return sorted(found, key=lambda approval: approval.requested_at)

    def set_approval_result(self, approval_id: str, result: Mapping[str, Any]) -> None:
        """Keep an approved approval's result, to replay it when it is approved again."""
        self.conn.execute(
            update(approvals_table)
            .where(approvals_table.c.id == approval_id)
            .values(result=json.dumps(result))
        )

    def close_approval(
        self,
        approval_id: str,
        status: ApprovalStatus,
        now: float,
        *,
        by: str | None = None,
        reason: str | None = None,
        reservation_id: str | None = None,
    ) -> bool:
        a = approvals_table.c
        result = self.conn.execute(
            update(approvals_table)
            .where(and_(a.id == approval_id, a.status == ApprovalStatus.PENDING.value))
            .values(
                status=status.value,
                decided_at=now,
                decided_by=by,
                reason=reason,
                reservation_id=reservation_id,
            )
        )
        return result.rowcount == 1

    # ---- idempotency -------------------------------------------------------------------

    def idempotency(self, agent_id: str, key: str) -> IdempotencyRecord | None:
        """What ``agent_id``'s ``key`` recorded (or a key kept from before keys were
        scoped per agent), or None."""
        ident = (agent_id, key)
        buffered = self._new_keys.get(ident)
        row: Any
        if buffered is not None:
            row = SimpleNamespace(**buffered)
        elif ident in self._known_keys:
            row = self._known_keys[ident]
        else:
            rows = list(
                self.conn.execute(st.SELECT_IDEMPOTENCY, {"b_key": key, "b_agent": agent_id})
            )
            row = min(rows, key=lambda r: r.agent_id != agent_id, default=None)
        if row is None:
            return None
        text_result = self._key_results.get((row.agent_id, key), row.result)
        result = None if text_result is None else json.loads(text_result)
        return IdempotencyRecord(row.agent_id, key, row.fingerprint, result, row.reservation_id)

    def insert_idempotency(
        self,
        agent_id: str,
        key: str,
        fingerprint: str,
        now: float,
        *,
        result: Mapping[str, Any] | None = None,
        reservation_id: str | None = None,
    ) -> None:
        self._new_keys[agent_id, key] = {
            "agent_id": agent_id,
            "key": key,
            "fingerprint": fingerprint,
            "result": None if result is None else json.dumps(result),
            "reservation_id": reservation_id,
            "created_at": now,
        }

    def finish_idempotency(self, agent_id: str, key: str, result: Mapping[str, Any]) -> None:
        text_result = json.dumps(result)
        if (agent_id, key) in self._new_keys:
            self._new_keys[agent_id, key]["result"] = text_result
        else:
            self._key_results[agent_id, key] = text_result

    # ---- audit and alerts --------------------------------------------------------------

    def audit(
        self,
        event: str,
        now: float,
        *,
        agent_id: str | None = None,
        reservation_id: str | None = None,
        approval_id: str | None = None,
        amount: int | None = None,
        **detail: Any,
    ) -> None:
        """Append one entry to the audit log (never updated, never deleted); written with
        the transaction."""
        self._audit.append(
            {
                "at": now,
                "event": event,
                "agent_id": agent_id,
                "reservation_id": reservation_id,
                "approval_id": approval_id,
                "amount": amount,
                "detail": _detail_json(detail),
            }
        )

    def audit_log(
        self, *, reservation_id: str | None = None, limit: int | None = None
    ) -> list[AuditEntry]:
        self.flush()
        a = audit_table.c
        query = select(audit_table).order_by(a.id)
        if reservation_id is not None:
            query = query.where(a.reservation_id == reservation_id)
        if limit is not None:
            query = query.order_by(None).order_by(a.id.desc()).limit(limit)
        rows = list(self.conn.execute(query))
        if limit is not None:
            rows.reverse()
        return [
            AuditEntry(
                id=row.id,
                at=row.at,
                event=row.event,
                agent_id=row.agent_id,
                reservation_id=row.reservation_id,
                approval_id=row.approval_id,
                amount=row.amount,
                detail=json.loads(row.detail),
            )
            for row in rows
        ]

    def record_alert(
        self, kind: str, scope: str, threshold: int, period: str, spent: int, limit: int, now: float
    ) -> bool:
        """Record an alert unless it already fired for this ``limit``; True when this call
        recorded it. One row per (kind, scope, threshold, period): an alert that fired for
        another limit (the budget or the daily limit changed since) is fired anew."""
        t = alerts_table.c
        key = and_(t.kind == kind, t.scope == scope, t.threshold == threshold, t.period == period)
        fired_for = self.conn.execute(select(t.limit).where(key)).scalar()
        if fired_for == limit:
            return False
        if fired_for is not None:
            self.conn.execute(
                update(alerts_table).where(key).values(spent=spent, limit=limit, at=now)
            )
            return True
        self.conn.execute(
            insert(alerts_table).values(
                kind=kind,
                scope=scope,
                threshold=threshold,
                period=period,
                spent=spent,
                limit=limit,
                at=now,
            )
        )
        return True

    def alerts(self) -> list[dict[str, Any]]:
        rows = self.conn.execute(select(alerts_table).order_by(alerts_table.c.at))
        return [dict(row._mapping) for row in rows]

    def count(self, table: Table) -> int:
        return int(self.conn.execute(select(func.count()).select_from(table)).scalar_one())
