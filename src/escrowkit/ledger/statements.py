"""The hot path's statements, built once (SQLAlchemy caches their compiled form):
building a Core statement costs several times more than executing a cached one."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from sqlalchemy import and_, bindparam, insert, literal_column, select, update

from escrowkit.ledger.records import COUNTED, ReservationStatus
from escrowkit.ledger.schema import (
    Amount,
    audit_table,
    counters_table,
    idempotency_table,
    reservations_table,
    state_table,
)

T = TypeVar("T")

S, R, K, I = (  # noqa: E741
    state_table.c,
    reservations_table.c,
    counters_table.c,
    idempotency_table.c,
)


def chunks(items: Sequence[T], size: int = 500) -> Iterator[list[T]]:
    """``items`` in lists of at most ``size`` (SQLite's bound on variables per query)."""
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


SELECT_STATE = select(S.frozen, S.freeze_reason, S.config_version, S.usage_seq).where(S.id == 1)
LOCK_STATE = select(S.id).where(S.id == 1).with_for_update()


def status_is(*statuses: ReservationStatus) -> Any:
    """``status = 'X'`` / ``status IN ('X', 'Y')`` with the values written into the SQL
    (they are our own constants): a planner can match a literal, not a bound parameter,
    against the partial index's ``WHERE status = 'PENDING'``."""
    values: list[Any] = [literal_column(f"'{s.value}'") for s in statuses]
    return R.status == values[0] if len(values) == 1 else R.status.in_(values)


COUNTED_VALUES = [s.value for s in COUNTED]


def _amount(name: str) -> Any:
    return bindparam(name, type_=Amount())


SET_SEQ = update(state_table).where(S.id == 1).values(usage_seq=bindparam("b_seq"))
_COUNTER_KEY = and_(
    K.kind == bindparam("b_kind"), K.name == bindparam("b_name"), K.period == bindparam("b_period")
)
SELECT_COUNTER = select(K.budget, K.used).where(_COUNTER_KEY)
# Several counters in one query. Each column has its own list, so SQLite looks the
# combinations up in the primary key (a row-value IN list would scan the table, which
# grows by a row per agent and day); the caller drops the combinations it did not ask for.
SELECT_COUNTERS = select(K.kind, K.name, K.period, K.budget, K.used).where(
    and_(
        K.kind.in_(bindparam("b_kinds", expanding=True)),
        K.name.in_(bindparam("b_names", expanding=True)),
        K.period.in_(bindparam("b_periods", expanding=True)),
    )
)
INSERT_COUNTER = insert(counters_table)
UPDATE_COUNTER = update(counters_table).where(_COUNTER_KEY).values(used=_amount("b_used"))
SET_COUNTER_BUDGET = update(counters_table).where(_COUNTER_KEY).values(budget=_amount("b_budget"))
HOUR_AMOUNTS = select(R.amount).where(
    and_(
        R.agent_id == bindparam("b_agent"),
        R.created_at > bindparam("b_since"),
        R.status.in_(COUNTED_VALUES),
    )
)
INSERT_RESERVATION = insert(reservations_table)
SELECT_RESERVATION = select(reservations_table).where(R.id == bindparam("b_id"))
TRANSITION = (
    update(reservations_table)
    .where(and_(R.id == bindparam("b_id"), R.status == bindparam("b_from")))
    .values(
        status=bindparam("b_to"),
        updated_at=bindparam("b_at"),
        tx_hashes=bindparam("b_tx_hashes"),
        reason=bindparam("b_reason"),
    )
)
# A key is (agent_id, key); agent_id '' marks a key from before revision 0002 (see the
# migration), looked up beside the agent's own.
SELECT_IDEMPOTENCY = select(I.agent_id, I.key, I.fingerprint, I.result, I.reservation_id).where(
    and_(I.key == bindparam("b_key"), I.agent_id.in_([bindparam("b_agent"), ""]))
)
# Both key columns are bound, so the lookup uses the (agent_id, key) primary key; on the
# key alone it would scan every key ever stored, in every commit group.
PREFETCH_IDEMPOTENCY = select(I.agent_id, I.key, I.fingerprint, I.result, I.reservation_id).where(
    and_(
        I.agent_id.in_(bindparam("b_agents", expanding=True)),
        I.key.in_(bindparam("b_keys", expanding=True)),
    )
)
PREFETCH_STATUS = select(R.id, R.status).where(R.id.in_(bindparam("b_ids", expanding=True)))
INSERT_IDEMPOTENCY = insert(idempotency_table)
FINISH_IDEMPOTENCY = (
    update(idempotency_table)
    .where(and_(I.agent_id == bindparam("b_agent"), I.key == bindparam("b_key")))
    .values(result=bindparam("b_result"))
)
INSERT_AUDIT = insert(audit_table)
