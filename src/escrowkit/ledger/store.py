"""The coordinator's ledger in SQL (SQLAlchemy Core): SQLite by default, PostgreSQL by URL.

Tables: ``treasury_state`` (one row: budget, usage counter, freeze state; also the lock
row), ``agents``, ``agent_days`` and ``categories`` (usage counters, so no check ever sums
history), ``reservations``, ``approvals``, ``idempotency_keys``, ``audit_log`` (append-only),
``alerts`` and ``meta``.

Serialization: :meth:`Store.write` takes a thread lock, then the database's own write
lock, so processes sharing a database serialize too: SQLite ``BEGIN IMMEDIATE`` (pysqlite's
own transaction handling is switched off so that we can issue it, see SQLAlchemy's
"Serializable isolation / Savepoints / Transactional DDL"), PostgreSQL
``SELECT ... FOR UPDATE`` on the single ``treasury_state`` row.

Amounts are exact: ``NUMERIC(78, 0)`` on PostgreSQL and a decimal string on SQLite (whose
NUMERIC affinity would turn integers above 2**63 into floats); Python sees ``int``. The
counters are therefore read, added in Python and written back, which is exact and safe
because every writer holds the lock.

Throughput: :meth:`Store.run` is group commit. Threads queue their calls; one thread runs
all that are queued, in order, in one transaction (one fsync), buffering inserts and
counter updates into one statement per table. A process also keeps the day counters it
last wrote, valid as long as ``treasury_state.usage_seq`` (bumped with every counter
change, by any process) has not moved.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from enum import StrEnum
from types import SimpleNamespace
from typing import Any, Generic, Literal, TypeVar

from sqlalchemy import (
    DDL,
    BigInteger,
    Boolean,
    Column,
    Dialect,
    Float,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    TypeDecorator,
    and_,
    bindparam,
    create_engine,
    event,
    func,
    insert,
    literal_column,
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.pool import StaticPool
from sqlalchemy.types import TypeEngine

from escrowkit.budget import AgentConfig, SpendRequest
from escrowkit.core.errors import ConfigurationError, EscrowKitError

__all__ = [
    "SCHEMA_VERSION",
    "Amount",
    "Approval",
    "ApprovalStatus",
    "AuditEntry",
    "IdempotencyRecord",
    "Ledger",
    "Reservation",
    "ReservationStatus",
    "Store",
    "TreasuryState",
]

logger = logging.getLogger(__name__)

SCHEMA_VERSION = "1"


class ReservationStatus(StrEnum):
    """A reservation's life: PENDING -> COMMITTED -> SETTLED, or VOIDED, or REFUNDED."""

    PENDING = "PENDING"
    COMMITTED = "COMMITTED"
    SETTLED = "SETTLED"
    VOIDED = "VOIDED"
    REFUNDED = "REFUNDED"


#: Statuses whose amount counts against limits and budgets.
COUNTED = (ReservationStatus.PENDING, ReservationStatus.COMMITTED, ReservationStatus.SETTLED)


class ApprovalStatus(StrEnum):
    PENDING = "PENDING"
    APPROVED = "APPROVED"
    DENIED = "DENIED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"


# --------------------------------------------------------------------------------------
# Schema
# --------------------------------------------------------------------------------------


class Amount(TypeDecorator[int]):
    """An exact non-negative integer of base units (up to 78 digits: a uint256).

    PostgreSQL stores ``NUMERIC(78, 0)``; other databases a decimal string, because
    SQLite's NUMERIC affinity silently turns integers beyond 64 bits into floats.
    """

    impl = Numeric(78, 0)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(Numeric(78, 0, asdecimal=True))
        return dialect.type_descriptor(String(80))

    def process_bind_param(self, value: int | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"amounts are int base units, not {type(value).__name__}")
        return Decimal(value) if dialect.name == "postgresql" else str(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> int | None:
        return None if value is None else int(value)


metadata = MetaData()

_Id = String(40)
_Address = String(42)
_Hash = String(66)

meta_table = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

state_table = Table(
    "treasury_state",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("total_budget", Amount, nullable=False),
    Column("used", Amount, nullable=False),
    Column("frozen", Boolean, nullable=False),
    Column("freeze_reason", Text),
    Column("config_version", Integer, nullable=False),
    # Bumped with every change of the usage counters: a process whose cached day
    # counters carry the current value knows nobody else has changed them.
    Column("usage_seq", BigInteger, nullable=False),
    Column("updated_at", Float, nullable=False),
)

agents_table = Table(
    "agents",
    metadata,
    Column("id", String(128), primary_key=True),
    Column("name", Text, nullable=False),
    Column("address", _Address, nullable=False),
    Column("spending_limit", Amount, nullable=False),
    Column("daily_limit", Amount, nullable=False),
    Column("requires_approval", Amount, nullable=False),
    Column("hourly_limit", Amount),
    Column("categories", Text),  # JSON list, or NULL for "no list"
    Column("allowed_providers", Text),  # JSON list, or NULL for "any"
    Column("updated_at", Float, nullable=False),
)

agent_days_table = Table(
    "agent_days",
    metadata,
    Column("agent_id", String(128), primary_key=True),
    Column("day", String(10), primary_key=True),  # calendar day in the coordinator's zone
    Column("used", Amount, nullable=False),
)

categories_table = Table(
    "categories",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("budget", Amount),  # NULL: uncapped
    Column("used", Amount, nullable=False),
)

reservations_table = Table(
    "reservations",
    metadata,
    Column("id", _Id, primary_key=True),
    Column("agent_id", String(128), nullable=False),
    Column("amount", Amount, nullable=False),
    Column("provider", _Address, nullable=False),
    Column("purpose", Text, nullable=False),
    Column("category", String(128)),
    Column("day", String(10), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("lease_at", Float, nullable=False),
    Column("status", String(16), nullable=False),
    Column("salt", _Hash, nullable=False),
    Column("escrow_id", _Hash, nullable=False),
    Column("requester", _Address, nullable=False),
    Column("tx_hashes", Text, nullable=False),  # JSON list
    Column("reason", Text),
    Column("approval_id", _Id),
    Column("idempotency_key", String(255)),
    Column("updated_at", Float, nullable=False),
    Index("ix_reservations_escrow", "escrow_id", unique=True),
    # Rolling-hour sums: an index range scan over one agent's last hour.
    Index("ix_reservations_agent_created", "agent_id", "created_at"),
    # PENDING rows are few and short-lived: a partial index holds just them (recover,
    # "reserved" figures), so the 99.9 % of rows that are final cost it nothing.
    Index(
        "ix_reservations_pending",
        "lease_at",
        sqlite_where=text("status = 'PENDING'"),
        postgresql_where=text("status = 'PENDING'"),
    ),
)

approvals_table = Table(
    "approvals",
    metadata,
    Column("id", _Id, primary_key=True),
    Column("agent_id", String(128), nullable=False),
    Column("amount", Amount, nullable=False),
    Column("provider", _Address, nullable=False),
    Column("purpose", Text, nullable=False),
    Column("category", String(128)),
    Column("idempotency_key", String(255)),
    Column("status", String(16), nullable=False),
    Column("requested_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("decided_at", Float),
    Column("decided_by", Text),
    Column("reason", Text),
    Column("reservation_id", _Id),
    Index("ix_approvals_status", "status"),
)

idempotency_table = Table(
    "idempotency_keys",
    metadata,
    Column("key", String(255), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("result", Text),  # JSON SpendResult; NULL while the first request is in flight
    Column("reservation_id", _Id),
    Column("created_at", Float, nullable=False),
)

audit_table = Table(
    "audit_log",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("at", Float, nullable=False),
    Column("event", String(32), nullable=False),
    Column("agent_id", String(128)),
    Column("reservation_id", _Id),
    Column("approval_id", _Id),
    Column("amount", Amount),
    Column("detail", Text, nullable=False),
    Index("ix_audit_reservation", "reservation_id"),
)


def _ddl(statement: str, dialect: str) -> Any:
    return DDL(statement).execute_if(dialect=dialect)  # type: ignore[no-untyped-call]


# The audit log is append-only in the database itself, not just by convention.
for _statement in (
    "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END",
    "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END",
):
    event.listen(audit_table, "after_create", _ddl(_statement, "sqlite"))
for _statement in (
    "CREATE OR REPLACE FUNCTION escrowkit_audit_append_only() RETURNS trigger "
    "LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$",
    "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
    "FOR EACH ROW EXECUTE FUNCTION escrowkit_audit_append_only()",
):
    event.listen(audit_table, "after_create", _ddl(_statement, "postgresql"))

alerts_table = Table(
    "alerts",
    metadata,
    Column("kind", String(32), primary_key=True),
    Column("scope", String(128), primary_key=True),
    Column("threshold", Integer, primary_key=True),
    Column("period", String(10), primary_key=True),  # "" for the total budget, else the day
    Column("spent", Amount, nullable=False),
    Column("limit", Amount, nullable=False),
    Column("at", Float, nullable=False),
)


# --------------------------------------------------------------------------------------
# Rows
# --------------------------------------------------------------------------------------


def _hex(value: bytes) -> str:
    return "0x" + value.hex()


def _unhex(value: str) -> bytes:
    return bytes.fromhex(value.removeprefix("0x"))


@dataclass(frozen=True)
class TreasuryState:
    """The single state row: budget, what counts against it, freeze state."""

    total_budget: int
    used: int
    freeze_reason: str | None
    config_version: int
    usage_seq: int = 0


@dataclass(frozen=True)
class Reservation:
    """One spend's row in the ledger."""

    id: str
    agent_id: str
    amount: int
    provider: str
    purpose: str
    category: str | None
    day: str
    created_at: float
    lease_at: float
    status: ReservationStatus
    salt: bytes
    escrow_id: bytes
    requester: str
    tx_hashes: tuple[str, ...] = ()
    reason: str | None = None
    approval_id: str | None = None
    idempotency_key: str | None = None
    updated_at: float = 0.0

    @property
    def counted(self) -> bool:
        return self.status in COUNTED

    def _row(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "agent_id": self.agent_id,
            "amount": self.amount,
            "provider": self.provider,
            "purpose": self.purpose,
            "category": self.category,
            "day": self.day,
            "created_at": self.created_at,
            "lease_at": self.lease_at,
            "status": self.status.value,
            "salt": _hex(self.salt),
            "escrow_id": _hex(self.escrow_id),
            "requester": self.requester,
            "tx_hashes": json.dumps(list(self.tx_hashes)),
            "reason": self.reason,
            "approval_id": self.approval_id,
            "idempotency_key": self.idempotency_key,
            "updated_at": self.updated_at or self.created_at,
        }

    @classmethod
    def _from_row(cls, row: Any) -> Reservation:
        m = row._mapping
        return cls(
            id=m["id"],
            agent_id=m["agent_id"],
            amount=m["amount"],
            provider=m["provider"],
            purpose=m["purpose"],
            category=m["category"],
            day=m["day"],
            created_at=m["created_at"],
            lease_at=m["lease_at"],
            status=ReservationStatus(m["status"]),
            salt=_unhex(m["salt"]),
            escrow_id=_unhex(m["escrow_id"]),
            requester=m["requester"],
            tx_hashes=tuple(json.loads(m["tx_hashes"])),
            reason=m["reason"],
            approval_id=m["approval_id"],
            idempotency_key=m["idempotency_key"],
            updated_at=m["updated_at"],
        )


@dataclass(frozen=True)
class Approval:
    """A spend above an agent's threshold, waiting for (or closed by) a person."""

    id: str
    request: SpendRequest
    status: ApprovalStatus
    requested_at: float
    expires_at: float
    decided_at: float | None = None
    decided_by: str | None = None
    reason: str | None = None
    reservation_id: str | None = None

    @classmethod
    def _from_row(cls, row: Any) -> Approval:
        m = row._mapping
        request = SpendRequest(
            agent_id=m["agent_id"],
            amount=m["amount"],
            provider=m["provider"],
            purpose=m["purpose"],
            category=m["category"],
            idempotency_key=m["idempotency_key"],
        )
        return cls(
            id=m["id"],
            request=request,
            status=ApprovalStatus(m["status"]),
            requested_at=m["requested_at"],
            expires_at=m["expires_at"],
            decided_at=m["decided_at"],
            decided_by=m["decided_by"],
            reason=m["reason"],
            reservation_id=m["reservation_id"],
        )


@dataclass(frozen=True)
class IdempotencyRecord:
    key: str
    fingerprint: str
    result: dict[str, Any] | None
    reservation_id: str | None


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: float
    event: str
    agent_id: str | None
    reservation_id: str | None
    approval_id: str | None
    amount: int | None
    detail: dict[str, Any]


def _agent_row(config: AgentConfig, now: float) -> dict[str, Any]:
    return {
        "id": config.id,
        "name": config.name,
        "address": config.address,
        "spending_limit": config.spending_limit,
        "daily_limit": config.daily_limit,
        "requires_approval": config.requires_approval,
        "hourly_limit": config.hourly_limit,
        "categories": None if config.categories is None else json.dumps(list(config.categories)),
        "allowed_providers": (
            None if config.allowed_providers is None else json.dumps(list(config.allowed_providers))
        ),
        "updated_at": now,
    }


def _agent_from_row(row: Any) -> AgentConfig:
    m = row._mapping
    return AgentConfig(
        id=m["id"],
        name=m["name"],
        address=m["address"],
        spending_limit=m["spending_limit"],
        daily_limit=m["daily_limit"],
        requires_approval=m["requires_approval"],
        hourly_limit=m["hourly_limit"],
        categories=None if m["categories"] is None else tuple(json.loads(m["categories"])),
        allowed_providers=(
            None if m["allowed_providers"] is None else tuple(json.loads(m["allowed_providers"]))
        ),
    )


# --------------------------------------------------------------------------------------
# Statements built once (SQLAlchemy caches their compiled form)
# --------------------------------------------------------------------------------------

_s, _r, _d, _c = state_table.c, reservations_table.c, agent_days_table.c, categories_table.c

_SELECT_STATE = select(
    _s.total_budget, _s.used, _s.frozen, _s.freeze_reason, _s.config_version, _s.usage_seq
).where(_s.id == 1)
_LOCK_STATE = select(_s.id).where(_s.id == 1).with_for_update()


def _status_is(*statuses: ReservationStatus) -> Any:
    """``status = 'X'`` / ``status IN ('X', 'Y')`` with the values written into the SQL
    (they are our own constants): a planner can match a literal, not a bound parameter,
    against the partial index's ``WHERE status = 'PENDING'``."""
    values: list[Any] = [literal_column(f"'{s.value}'") for s in statuses]
    return _r.status == values[0] if len(values) == 1 else _r.status.in_(values)


_COUNTED = [s.value for s in COUNTED]
_i = idempotency_table.c


def _amount(name: str) -> Any:
    return bindparam(name, type_=Amount())


# The hot path (every decision) runs only these prebuilt statements: building a Core
# statement costs several times more than executing a cached one.
_SET_USED = (
    update(state_table)
    .where(_s.id == 1)
    .values(used=_amount("b_used"), usage_seq=bindparam("b_seq"))
)
_SELECT_DAY = select(_d.used).where(
    and_(_d.agent_id == bindparam("b_agent"), _d.day == bindparam("b_day"))
)
_INSERT_DAY = insert(agent_days_table)
_UPDATE_DAY = (
    update(agent_days_table)
    .where(and_(_d.agent_id == bindparam("b_agent"), _d.day == bindparam("b_day")))
    .values(used=_amount("b_used"))
)
_SELECT_CATEGORY = select(_c.budget, _c.used).where(_c.name == bindparam("b_name"))
_INSERT_CATEGORY = insert(categories_table)
_UPDATE_CATEGORY_USED = (
    update(categories_table).where(_c.name == bindparam("b_name")).values(used=_amount("b_used"))
)
_HOUR_AMOUNTS = select(_r.amount).where(
    and_(
        _r.agent_id == bindparam("b_agent"),
        _r.created_at > bindparam("b_since"),
        _r.status.in_(_COUNTED),
    )
)
_INSERT_RESERVATION = insert(reservations_table)
_SELECT_RESERVATION = select(reservations_table).where(_r.id == bindparam("b_id"))
_TRANSITION = (
    update(reservations_table)
    .where(and_(_r.id == bindparam("b_id"), _r.status == bindparam("b_from")))
    .values(
        status=bindparam("b_to"),
        updated_at=bindparam("b_at"),
        tx_hashes=bindparam("b_tx_hashes"),
        reason=bindparam("b_reason"),
    )
)
_SELECT_IDEMPOTENCY = select(_i.fingerprint, _i.result, _i.reservation_id).where(
    _i.key == bindparam("b_key")
)
_PREFETCH_IDEMPOTENCY = select(_i.key, _i.fingerprint, _i.result, _i.reservation_id).where(
    _i.key.in_(bindparam("b_keys", expanding=True))
)
_PREFETCH_STATUS = select(_r.id, _r.status).where(_r.id.in_(bindparam("b_ids", expanding=True)))
_INSERT_IDEMPOTENCY = insert(idempotency_table)
_FINISH_IDEMPOTENCY = (
    update(idempotency_table)
    .where(_i.key == bindparam("b_key"))
    .values(result=bindparam("b_result"))
)
_INSERT_AUDIT = insert(audit_table)


# --------------------------------------------------------------------------------------
# Ledger: the operations, on one connection inside one transaction
# --------------------------------------------------------------------------------------


class Ledger:
    """The ledger's operations inside one transaction (from :meth:`Store.write` or
    :meth:`Store.read`). Counter updates are read-modify-write: call them only in a write
    transaction, where the lock makes them exact.

    The total and per-day counters and the audit entries are written once, by
    :meth:`flush` at the end of the transaction (the store calls it), however many spends
    the transaction decided: reads in between see the values held here.
    """

    def __init__(self, conn: Connection, cache: _DayCache | None = None) -> None:
        self.conn = conn
        self._cache = cache
        self._state: TreasuryState | None = None
        self._start_seq: int | None = None
        self._used_dirty = False
        # Day counters read or changed in this transaction, and what the table holds:
        # "clean" (the same), "missing" (no row), "new" (insert), "dirty" (update).
        self._days: dict[tuple[str, str], int] = {}
        self._day_flags: dict[tuple[str, str], str] = {}
        self._audit: list[dict[str, Any]] = []
        self._new_reservations: dict[str, dict[str, Any]] = {}  # id -> row
        self._new_keys: dict[str, dict[str, Any]] = {}
        self._key_results: dict[str, str] = {}
        # Read ahead for a commit group (see prefetch): key -> row (None: no such key),
        # and reservation id -> status, with the transitions to write at flush.
        self._known_keys: dict[str, Any] = {}
        self._statuses: dict[str, str] = {}
        self._transitions: list[dict[str, Any]] = []

    def flush(self) -> None:
        """Write what this transaction buffered: new reservations and idempotency keys,
        the counters it changed, the audit entries (one statement per kind)."""
        self._flush_reservations()
        if self._transitions:
            moved = self.conn.execute(_TRANSITION, self._transitions)
            expected, self._transitions = len(self._transitions), []
            if self.conn.dialect.supports_sane_multi_rowcount and moved.rowcount != expected:
                # prefetch read the statuses under the write lock, so nobody can have
                # moved a row since: a mismatch is a bug. Raising rolls the group back.
                raise AssertionError(f"{moved.rowcount} of {expected} transitions applied")
        # A key read ahead and written since is read from the table again, not as the
        # row (or absence) that prefetch saw: reads may flush in the middle of a group.
        if self._new_keys:
            self.conn.execute(_INSERT_IDEMPOTENCY, list(self._new_keys.values()))
            self._forget_keys(self._new_keys)
            self._new_keys = {}
        if self._key_results:
            self.conn.execute(
                _FINISH_IDEMPOTENCY,
                [{"b_key": k, "b_result": v} for k, v in self._key_results.items()],
            )
            self._forget_keys(self._key_results)
            self._key_results = {}
        if self._used_dirty and self._state is not None:
            seq = self._state.usage_seq + 1
            self.conn.execute(_SET_USED, {"b_used": self._state.used, "b_seq": seq})
            self._state = replace(self._state, usage_seq=seq)
            self._used_dirty = False
        inserts, updates = [], []
        for key, flag in self._day_flags.items():
            if flag == "new":
                inserts.append({"agent_id": key[0], "day": key[1], "used": self._days[key]})
            elif flag == "dirty":
                updates.append({"b_agent": key[0], "b_day": key[1], "b_used": self._days[key]})
            else:
                continue
            self._day_flags[key] = "clean"
        if inserts:
            self.conn.execute(_INSERT_DAY, inserts)
        if updates:
            self.conn.execute(_UPDATE_DAY, updates)
        if self._audit:
            self.conn.execute(_INSERT_AUDIT, self._audit)
            self._audit = []

    def _forget_keys(self, keys: Iterable[str]) -> None:
        for key in keys:
            self._known_keys.pop(key, None)

    def prefetch(self, keys: Sequence[str] = (), reservation_ids: Sequence[str] = ()) -> None:
        """Read, in one query each, the idempotency keys and the reservation statuses a
        commit group will look at, instead of one query per call.

        Valid for the whole transaction: it holds the database's write lock, so no other
        writer can change them, and this ledger's own writes go through its buffers. The
        transitions of prefetched rows are then checked here and written at flush.
        """
        for chunk in _chunks(sorted(set(keys) - self._known_keys.keys() - self._new_keys.keys())):
            found = {
                row.key: row for row in self.conn.execute(_PREFETCH_IDEMPOTENCY, {"b_keys": chunk})
            }
            for key in chunk:
                self._known_keys[key] = found.get(key)
        wanted = sorted(set(reservation_ids) - self._statuses.keys())
        for chunk in _chunks([rid for rid in wanted if rid not in self._new_reservations]):
            for row in self.conn.execute(_PREFETCH_STATUS, {"b_ids": chunk}):
                self._statuses[row.id] = row.status

    def _flush_reservations(self) -> None:
        if self._new_reservations:
            self.conn.execute(_INSERT_RESERVATION, list(self._new_reservations.values()))
            self._new_reservations = {}

    # ---- treasury state ----------------------------------------------------------------

    def state(self) -> TreasuryState:
        """The state row (read once per transaction)."""
        if self._state is None:
            row = self.conn.execute(_SELECT_STATE).one()
            self._state = TreasuryState(
                total_budget=row.total_budget,
                used=row.used,
                freeze_reason=row.freeze_reason if row.frozen else None,
                config_version=row.config_version,
                usage_seq=row.usage_seq,
            )
            if self._start_seq is None:
                self._start_seq = row.usage_seq
        return self._state

    def _set_used(self, used: int) -> None:
        state = self.state()
        self._state = replace(state, used=used)
        self._used_dirty = True

    def _update_state(self, **values: Any) -> None:
        self.flush()
        self.conn.execute(update(state_table).where(_s.id == 1).values(**values))
        self._state = None

    def set_total_budget(self, amount: int, now: float) -> None:
        self._update_state(total_budget=amount, updated_at=now)

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

    # ---- agents and categories ---------------------------------------------------------

    def agents(self) -> dict[str, AgentConfig]:
        rows = self.conn.execute(select(agents_table).order_by(agents_table.c.id))
        return {row.id: _agent_from_row(row) for row in rows}

    def upsert_agent(self, config: AgentConfig, now: float) -> None:
        values = _agent_row(config, now)
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

    def category(self, name: str) -> tuple[bool, int | None, int]:
        """(exists, budget, used) of a category; a missing one has no budget and no use."""
        row = self.conn.execute(_SELECT_CATEGORY, {"b_name": name}).first()
        if row is None:
            return False, None, 0
        return True, row.budget, row.used

    def categories(self) -> dict[str, tuple[int | None, int]]:
        rows = self.conn.execute(select(_c.name, _c.budget, _c.used).order_by(_c.name))
        return {row.name: (row.budget, row.used) for row in rows}

    def set_category_budget(self, name: str, budget: int | None) -> None:
        exists, _, _ = self.category(name)
        if exists:
            self.conn.execute(update(categories_table).where(_c.name == name).values(budget=budget))
        else:
            self.conn.execute(insert(categories_table).values(name=name, budget=budget, used=0))

    # ---- usage -------------------------------------------------------------------------

    def day_used(self, agent_id: str, day: str) -> int:
        """What counts against ``agent_id``'s limit on ``day``."""
        key = (agent_id, day)
        if key not in self._days:
            cache = self._cache
            self.state()  # sets _start_seq: the cache is good if it is as of that value
            cached = (
                cache.days.get(key) if cache is not None and cache.seq == self._start_seq else None
            )
            if cached is None:
                row = self.conn.execute(_SELECT_DAY, {"b_agent": agent_id, "b_day": day}).first()
                cached = (0, False) if row is None else (int(row.used), True)
            self._days[key] = cached[0]
            self._day_flags[key] = "clean" if cached[1] else "missing"
        return self._days[key]

    def _keep(self, cache: _DayCache) -> None:
        """After a commit: remember this transaction's day counters for the next ones."""
        if self._state is None:
            return
        if cache.seq is None or cache.seq != self._start_seq or len(cache.days) > 100_000:
            cache.days = {}
        for key, value in self._days.items():
            cache.days[key] = (value, self._day_flags[key] != "missing")
        cache.seq = self._state.usage_seq

    def days_used(self, day: str | None = None) -> dict[tuple[str, str], int]:
        self.flush()
        query = select(_d.agent_id, _d.day, _d.used)
        if day is not None:
            query = query.where(_d.day == day)
        return {(row.agent_id, row.day): row.used for row in self.conn.execute(query)}

    def hour_used(self, agent_id: str, since: float) -> int:
        """Counted amounts of ``agent_id``'s reservations created after ``since``."""
        self.flush()
        rows = self.conn.execute(_HOUR_AMOUNTS, {"b_agent": agent_id, "b_since": since})
        return sum(row.amount for row in rows)

    def add_usage(self, agent_id: str, day: str, category: str | None, delta: int) -> None:
        """Add ``delta`` (negative to credit back) to the total, the agent's day and the
        category counters."""
        used = self.state().used + delta
        if used < 0:  # pragma: no cover - a bug, never a user error
            raise AssertionError(f"usage would go negative ({used}): the ledger is inconsistent")
        self._set_used(used)
        key = (agent_id, day)
        self._days[key] = self.day_used(agent_id, day) + delta
        flag = self._day_flags[key]
        self._day_flags[key] = {"missing": "new", "clean": "dirty"}.get(flag, flag)
        if category is not None:
            exists, _, category_used = self.category(category)
            if exists:
                self.conn.execute(
                    _UPDATE_CATEGORY_USED, {"b_name": category, "b_used": category_used + delta}
                )
            else:
                self.conn.execute(
                    _INSERT_CATEGORY, {"name": category, "budget": None, "used": delta}
                )

    def pending_amounts(self) -> list[tuple[str, str, str | None, int]]:
        """(agent_id, day, category, amount) of every PENDING reservation."""
        self.flush()
        rows = self.conn.execute(
            select(_r.agent_id, _r.day, _r.category, _r.amount).where(
                _status_is(ReservationStatus.PENDING)
            )
        )
        return [(row.agent_id, row.day, row.category, row.amount) for row in rows]

    # ---- reservations ------------------------------------------------------------------

    def insert_reservation(self, reservation: Reservation) -> None:
        """Write a PENDING reservation and count it (total, agent's day, category)."""
        self._new_reservations[reservation.id] = reservation._row()
        self.add_usage(
            reservation.agent_id, reservation.day, reservation.category, reservation.amount
        )

    def reservation(self, reservation_id: str) -> Reservation | None:
        self.flush()
        row = self.conn.execute(_SELECT_RESERVATION, {"b_id": reservation_id}).first()
        return None if row is None else Reservation._from_row(row)

    def reservation_by_escrow(self, escrow_id: bytes) -> Reservation | None:
        self.flush()
        row = self.conn.execute(
            select(reservations_table).where(_r.escrow_id == _hex(escrow_id))
        ).first()
        return None if row is None else Reservation._from_row(row)

    def reservations(
        self,
        statuses: Iterable[ReservationStatus] | None = None,
        *,
        lease_before: float | None = None,
    ) -> list[Reservation]:
        self.flush()
        query = select(reservations_table)
        if statuses is not None:
            query = query.where(_status_is(*statuses))
        if lease_before is not None:
            query = query.where(_r.lease_at <= lease_before)
        return [
            Reservation._from_row(row) for row in self.conn.execute(query.order_by(_r.created_at))
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
            if self.conn.execute(_TRANSITION, params).rowcount != 1:
                return None
        if reservation.counted != (to in COUNTED):
            delta = -reservation.amount if reservation.counted else reservation.amount
            self.add_usage(reservation.agent_id, reservation.day, reservation.category, delta)
        return replace(reservation, status=to, updated_at=now, tx_hashes=hashes, reason=why)

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
                status=approval.status.value,
                requested_at=approval.requested_at,
                expires_at=approval.expires_at,
            )
        )

    def approval(self, approval_id: str) -> Approval | None:
        row = self.conn.execute(
            select(approvals_table).where(approvals_table.c.id == approval_id)
        ).first()
        return None if row is None else Approval._from_row(row)

    def pending_approvals(self, now: float) -> list[Approval]:
        a = approvals_table.c
        rows = self.conn.execute(
            select(approvals_table)
            .where(and_(a.status == ApprovalStatus.PENDING.value, a.expires_at > now))
            .order_by(a.requested_at)
        )
        return [Approval._from_row(row) for row in rows]

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

    def idempotency(self, key: str) -> IdempotencyRecord | None:
        buffered = self._new_keys.get(key)
        row: Any
        if buffered is not None:
            row = SimpleNamespace(**buffered)
        elif key in self._known_keys:
            row = self._known_keys[key]
        else:
            row = self.conn.execute(_SELECT_IDEMPOTENCY, {"b_key": key}).first()
        if row is None:
            return None
        text_result = self._key_results.get(key, row.result)
        result = None if text_result is None else json.loads(text_result)
        return IdempotencyRecord(key, row.fingerprint, result, row.reservation_id)

    def insert_idempotency(
        self,
        key: str,
        fingerprint: str,
        now: float,
        *,
        result: Mapping[str, Any] | None = None,
        reservation_id: str | None = None,
    ) -> None:
        self._new_keys[key] = {
            "key": key,
            "fingerprint": fingerprint,
            "result": None if result is None else json.dumps(result),
            "reservation_id": reservation_id,
            "created_at": now,
        }

    def finish_idempotency(self, key: str, result: Mapping[str, Any]) -> None:
        text_result = json.dumps(result)
        if key in self._new_keys:
            self._new_keys[key]["result"] = text_result
        else:
            self._key_results[key] = text_result

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
                "detail": json.dumps(detail, default=str, sort_keys=True),
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


# --------------------------------------------------------------------------------------
# Store: engine, locking, schema
# --------------------------------------------------------------------------------------


T = TypeVar("T")


def _chunks(items: Sequence[str], size: int = 500) -> Iterator[list[str]]:
    """``items`` in lists of at most ``size`` (SQLite's bound on variables per query)."""
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


@dataclass
class _DayCache:
    """Day counters as of ``usage_seq == seq`` (value, whether the row exists)."""

    seq: int | None = None
    days: dict[tuple[str, str], tuple[int, bool]] = field(default_factory=dict)

    def clear(self) -> None:
        self.seq, self.days = None, {}


class _Op(Generic[T]):
    """One call waiting in :meth:`Store.run`'s queue."""

    __slots__ = ("done", "error", "fn", "keys", "reservation_ids", "result", "wake")

    def __init__(
        self, fn: Callable[[Ledger], T], keys: Sequence[str], reservation_ids: Sequence[str]
    ) -> None:
        self.fn = fn
        self.keys = keys
        self.reservation_ids = reservation_ids
        self.wake = threading.Event()
        self.done = False
        self.result: T | None = None
        self.error: BaseException | None = None


def _normalize_url(url: str) -> str:
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


class Store:
    """The coordinator's database.

    ``url=None`` is a private in-memory SQLite database (one connection shared by all
    threads); ``"sqlite:///path.db"`` a file in WAL mode that several processes may share;
    ``"postgresql://user@host/db"`` PostgreSQL through psycopg 3.

    ``synchronous`` (SQLite files): ``"FULL"`` (the default) syncs every commit to disk
    before the coordinator sends anything on-chain, so not even a power cut can lose a
    reservation whose escrow then gets funded; group commit makes that one fsync per group
    of decisions. ``"NORMAL"``, the usual WAL setting, is faster and never loses a commit
    when a process dies, but may lose the last ones to a power cut or an OS crash.
    ``timeout``: how long a writer waits for another process's write lock.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        synchronous: Literal["NORMAL", "FULL"] = "FULL",
        timeout: float = 30.0,
        echo: bool = False,
    ) -> None:
        if synchronous not in ("NORMAL", "FULL"):
            raise ConfigurationError(f"synchronous must be NORMAL or FULL, not {synchronous!r}")
        self._lock = threading.RLock()
        self._day_cache = _DayCache()
        self._turn = threading.Lock()
        self._leading = False
        self._queue: list[_Op[Any]] = []
        self.url = _normalize_url(url) if url is not None else "sqlite://"
        parsed = make_url(self.url)
        self.dialect = parsed.get_backend_name()
        self.engine: Engine
        if self.dialect == "sqlite":
            memory = parsed.database in (None, "", ":memory:")
            kwargs: dict[str, Any] = {
                "connect_args": {"timeout": timeout, "check_same_thread": False},
                "echo": echo,
            }
            if memory:
                # One connection for every thread, or each thread would see its own
                # empty database; the store's lock keeps them from interleaving.
                kwargs["poolclass"] = StaticPool
            self.engine = create_engine(self.url, **kwargs)
            self._setup_sqlite(self.engine, memory=memory, synchronous=synchronous)
        elif self.dialect == "postgresql":
            self.engine = create_engine(self.url, echo=echo, pool_pre_ping=True)
        else:
            raise ConfigurationError(
                f"unsupported store {parsed.render_as_string(hide_password=True)}: "
                "use sqlite:///file.db or postgresql://user@host/db"
            )
        self._create_schema()

    def __repr__(self) -> str:
        return f"Store({make_url(self.url).render_as_string(hide_password=True)})"

    @staticmethod
    def _setup_sqlite(engine: Engine, *, memory: bool, synchronous: str) -> None:
        @event.listens_for(engine, "connect")
        def _connect(dbapi_connection: Any, _record: Any) -> None:
            # Take transactions away from pysqlite (it would BEGIN lazily, and only
            # DEFERRED): _transaction() issues BEGIN IMMEDIATE / BEGIN itself. (Not via a
            # "begin" engine event: any engine event makes every execute pay for event
            # dispatch, which was a third of a decision's cost.)
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            if not memory:
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute(f"PRAGMA synchronous={synchronous}")
                # Hot index pages stay in memory (the default cache is 2 MiB), and the
                # WAL is folded back into the database every ~40 MB rather than ~4 MB:
                # pages written over and over are copied (and synced) once per checkpoint.
                cursor.execute("PRAGMA cache_size=-65536")
                cursor.execute("PRAGMA wal_autocheckpoint=10000")
            cursor.close()

    @contextlib.contextmanager
    def _transaction(self, *, write: bool) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            if self.dialect == "sqlite":
                # SQLAlchemy's own BEGIN is a no-op for pysqlite; this is the real one.
                conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
            elif not write:
                # A read adds up several queries (report): one snapshot for all of them,
                # as SQLite's read transaction is. (Writes need no snapshot: the row lock
                # serializes them and each statement sees every earlier commit.)
                conn.execution_options(isolation_level="REPEATABLE READ")
            try:
                yield conn
            except BaseException:
                conn.rollback()
                raise
            conn.commit()

    def _create_schema(self) -> None:
        with self.write(lock_row=False) as ledger:
            conn = ledger.conn
            if self.dialect == "postgresql":
                # Concurrent first starts: one creates, the others wait here.
                conn.execute(text("SELECT pg_advisory_xact_lock(7316251)"))
            metadata.create_all(conn)
            state = conn.execute(select(_s.id).where(_s.id == 1)).first()
            if state is None:
                conn.execute(
                    insert(state_table).values(
                        id=1,
                        total_budget=0,
                        used=0,
                        frozen=False,
                        freeze_reason=None,
                        config_version=0,
                        usage_seq=0,
                        updated_at=0.0,
                    )
                )
            found = ledger.meta().get("schema_version")
            if found is None:
                ledger.set_meta("schema_version", SCHEMA_VERSION)
            elif found != SCHEMA_VERSION:
                raise ConfigurationError(
                    f"{self!r} has schema version {found}; this escrowkit writes {SCHEMA_VERSION}"
                )

    @contextlib.contextmanager
    def write(self, *, lock_row: bool = True) -> Iterator[Ledger]:
        """A write transaction holding the thread lock and the database's write lock."""
        with self._lock:
            try:
                with self._transaction(write=True) as conn:
                    if lock_row and self.dialect == "postgresql":
                        conn.execute(_LOCK_STATE)
                    ledger = Ledger(conn, self._day_cache)
                    yield ledger
                    ledger.flush()
            except BaseException:
                self._day_cache.clear()  # it may hold values that were rolled back
                raise
            ledger._keep(self._day_cache)

    def run(
        self,
        fn: Callable[[Ledger], T],
        *,
        keys: Sequence[str] = (),
        reservation_ids: Sequence[str] = (),
    ) -> T:
        """Run ``fn(ledger)`` in a write transaction shared with other threads' calls.

        Group commit: calls waiting for the lock queue up, and whichever thread gets it
        runs every queued call, in order, in one transaction, so one ``BEGIN IMMEDIATE``
        and one commit serve them all. Each call still sees everything the earlier ones
        wrote: the serial order is exactly the queue's.

        ``fn`` may raise an :class:`EscrowKitError` only before it writes (it is handed
        back to its caller and the others go on). Any other exception rolls the batch
        back, and each call is then run again alone, so only the faulty one fails.

        ``keys`` and ``reservation_ids`` name the idempotency keys ``fn`` will look up and
        the reservations it will move: a group reads them all in one query each
        (:meth:`Ledger.prefetch`). They are hints; ``fn`` is right without them.
        """
        op: _Op[T] = _Op(fn, keys, reservation_ids)
        with self._turn:
            self._queue.append(op)
            leading = not self._leading
            self._leading = True
        if not leading:
            # Another thread is running a group: it runs ours next, or hands us the lead.
            op.wake.wait()
        if not op.done:
            self._lead(op)
        if op.error is not None:
            raise op.error
        return op.result  # type: ignore[return-value]

    def _lead(self, own: _Op[Any]) -> None:
        """Run everything queued as one group; then wake its callers and pass the lead to
        the first caller that queued meanwhile (only the threads that must run wake)."""
        with self._turn:
            batch, self._queue = self._queue, []
        try:
            with self._lock:
                self._run_batch(batch, own)
        finally:
            with self._turn:
                for op in batch:
                    if op.done and op is not own:
                        op.wake.set()
                if self._queue:
                    self._queue[0].wake.set()
                else:
                    self._leading = False

    def _run_batch(self, batch: list[_Op[Any]], own: _Op[Any]) -> None:
        """One transaction for ``batch``; if it fails unexpectedly, each call alone."""
        try:
            self._run_group(batch)
        except Exception as exc:
            if len(batch) == 1:
                batch[0].error, batch[0].done = exc, True
                return
            logger.warning("a grouped write failed (%s); running each call alone", exc)
            for index, op in enumerate(batch):
                try:
                    self._run_batch([op], own)
                except BaseException:
                    self._requeue(batch[index:], own)
                    raise
        except BaseException:
            self._requeue(batch, own)
            raise

    def _run_group(self, batch: list[_Op[Any]]) -> None:
        for op in batch:
            op.result, op.error = None, None
        with self.write() as ledger:
            if len(batch) > 1:  # alone, a call's own queries cost the same or less
                ledger.prefetch(
                    [key for op in batch for key in op.keys],
                    [rid for op in batch for rid in op.reservation_ids],
                )
            for op in batch:
                try:
                    op.result = op.fn(ledger)
                except EscrowKitError as exc:
                    op.error = exc
        for op in batch:
            op.done = True

    def _requeue(self, ops: list[_Op[Any]], own: _Op[Any]) -> None:
        """After a KeyboardInterrupt (or the like) in this thread: its own call ends with
        it; the others go back to the head of the queue for the next leader."""
        with self._turn:
            self._queue[:0] = [op for op in ops if op is not own and not op.done]

    @contextlib.contextmanager
    def read(self) -> Iterator[Ledger]:
        """A read transaction: one consistent snapshot (PostgreSQL: REPEATABLE READ)."""
        with self._lock, self._transaction(write=False) as conn:
            yield Ledger(conn)

    def close(self) -> None:
        self.engine.dispose()
