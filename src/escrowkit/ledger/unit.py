"""The unit of work under every ledger transaction: what it read and what it will write.

The total and per-day counters, new reservations and idempotency keys, transitions and
audit entries are buffered and written once, by :meth:`UnitOfWork.flush` at the end of the
transaction (the store calls it), however many spends the transaction decided; reads in
between see the values held here. A process also keeps the day counters it last wrote
(:class:`DayCache`), valid as long as ``treasury_state.usage_seq`` (bumped with every
counter change, by any process) has not moved.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import update
from sqlalchemy.engine import Connection

from escrowkit.ledger import statements as st
from escrowkit.ledger.records import TreasuryState
from escrowkit.ledger.schema import state_table

__all__ = ["DayCache", "UnitOfWork"]


@dataclass
class DayCache:
    """Day counters as of ``usage_seq == seq`` (value, whether the row exists)."""

    seq: int | None = None
    days: dict[tuple[str, str], tuple[int, bool]] = field(default_factory=dict)

    def clear(self) -> None:
        self.seq, self.days = None, {}


class UnitOfWork:
    """The buffers and counters of one transaction (see the module). Counter updates are
    read-modify-write: call them only in a write transaction, where the lock makes them
    exact."""

    def __init__(self, conn: Connection, cache: DayCache | None = None) -> None:
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
        # Idempotency keys are (agent_id, key).
        self._new_keys: dict[tuple[str, str], dict[str, Any]] = {}
        self._key_results: dict[tuple[str, str], str] = {}
        # Read ahead for a commit group (see prefetch): key -> row (None: no such key),
        # and reservation id -> status, with the transitions to write at flush.
        self._known_keys: dict[tuple[str, str], Any] = {}
        self._statuses: dict[str, str] = {}
        self._transitions: list[dict[str, Any]] = []

    def flush(self) -> None:
        """Write what this transaction buffered: new reservations and idempotency keys,
        the counters it changed, the audit entries (one statement per kind)."""
        self._flush_reservations()
        if self._transitions:
            moved = self.conn.execute(st.TRANSITION, self._transitions)
            expected, self._transitions = len(self._transitions), []
            if self.conn.dialect.supports_sane_multi_rowcount and moved.rowcount != expected:
                # prefetch read the statuses under the write lock, so nobody can have
                # moved a row since: a mismatch is a bug. Raising rolls the group back.
                raise AssertionError(f"{moved.rowcount} of {expected} transitions applied")
        # A key read ahead and written since is read from the table again, not as the
        # row (or absence) that prefetch saw: reads may flush in the middle of a group.
        if self._new_keys:
            self.conn.execute(st.INSERT_IDEMPOTENCY, list(self._new_keys.values()))
            self._forget_keys(self._new_keys)
            self._new_keys = {}
        if self._key_results:
            self.conn.execute(
                st.FINISH_IDEMPOTENCY,
                [
                    {"b_agent": agent, "b_key": key, "b_result": value}
                    for (agent, key), value in self._key_results.items()
                ],
            )
            self._forget_keys(self._key_results)
            self._key_results = {}
        if self._used_dirty and self._state is not None:
            seq = self._state.usage_seq + 1
            self.conn.execute(st.SET_USED, {"b_used": self._state.used, "b_seq": seq})
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
            self.conn.execute(st.INSERT_DAY, inserts)
        if updates:
            self.conn.execute(st.UPDATE_DAY, updates)
        if self._audit:
            self.conn.execute(st.INSERT_AUDIT, self._audit)
            self._audit = []

    def _forget_keys(self, keys: Iterable[tuple[str, str]]) -> None:
        for key in keys:
            self._known_keys.pop(key, None)

    def prefetch(
        self, keys: Sequence[tuple[str, str]] = (), reservation_ids: Sequence[str] = ()
    ) -> None:
        """Read, in one query each, the idempotency keys and the reservation statuses a
        commit group will look at, instead of one query per call.

        Valid for the whole transaction: it holds the database's write lock, so no other
        writer can change them, and this ledger's own writes go through its buffers. The
        transitions of prefetched rows are then checked here and written at flush.
        """
        wanted_keys = sorted(set(keys) - self._known_keys.keys() - self._new_keys.keys())
        for chunk in st.chunks(sorted({key for _, key in wanted_keys})):
            found = {
                (row.agent_id, row.key): row
                for row in self.conn.execute(st.PREFETCH_IDEMPOTENCY, {"b_keys": chunk})
            }
            for agent, key in wanted_keys:
                if key in chunk:
                    self._known_keys[agent, key] = found.get((agent, key)) or found.get(("", key))
        wanted = sorted(set(reservation_ids) - self._statuses.keys())
        for chunk in st.chunks([rid for rid in wanted if rid not in self._new_reservations]):
            for row in self.conn.execute(st.PREFETCH_STATUS, {"b_ids": chunk}):
                self._statuses[row.id] = row.status

    def _flush_reservations(self) -> None:
        if self._new_reservations:
            self.conn.execute(st.INSERT_RESERVATION, list(self._new_reservations.values()))
            self._new_reservations = {}

    # ---- treasury state ----------------------------------------------------------------

    def state(self) -> TreasuryState:
        """The state row (read once per transaction)."""
        if self._state is None:
            row = self.conn.execute(st.SELECT_STATE).one()
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
        self.conn.execute(update(state_table).where(st.S.id == 1).values(**values))
        self._state = None

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
                row = self.conn.execute(st.SELECT_DAY, {"b_agent": agent_id, "b_day": day}).first()
                cached = (0, False) if row is None else (int(row.used), True)
            self._days[key] = cached[0]
            self._day_flags[key] = "clean" if cached[1] else "missing"
        return self._days[key]

    def keep(self, cache: DayCache) -> None:
        """After a commit: remember this transaction's day counters for the next ones."""
        if self._state is None:
            return
        if cache.seq is None or cache.seq != self._start_seq or len(cache.days) > 100_000:
            cache.days = {}
        for key, value in self._days.items():
            cache.days[key] = (value, self._day_flags[key] != "missing")
        cache.seq = self._state.usage_seq
