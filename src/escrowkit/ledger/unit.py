"""The unit of work under every ledger transaction: what it read and what it will write.

The usage counters (one table, ``counters``: the root scope's total, the other scopes',
the categories' and the agents' days), new reservations and idempotency keys,
transitions and audit entries are buffered and written once, by :meth:`UnitOfWork.flush`
at the end of the transaction (the store calls it), however many spends the transaction
decided; reads in between see the values held here. A process also keeps the counters
it last wrote (:class:`CounterCache`), valid as long as ``treasury_state.usage_seq``
(bumped with every counter change, by any process) has not moved.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import update
from sqlalchemy.engine import Connection

from escrowkit.ledger import statements as st
from escrowkit.ledger.bulk import executemany
from escrowkit.ledger.records import TreasuryState
from escrowkit.ledger.schema import state_table

__all__ = ["ROOT_KEY", "CounterCache", "CounterKey", "UnitOfWork"]

#: A counter's key: (kind, name, period); see ``schema.counters_table``.
CounterKey = tuple[str, str, str]
#: The root scope's counter: the total budget and what counts against it.
ROOT_KEY: CounterKey = ("scope", "", "")

# A counter held by a transaction is [budget, used, flag]; the flag says what the table
# holds: the same (CLEAN), no row (MISSING), a row to insert (NEW) or to update (DIRTY).
_CLEAN, _MISSING, _NEW, _DIRTY = range(4)


@dataclass
class CounterCache:
    """Counters as of ``usage_seq == seq``: key -> [budget, used, flag] (see above)."""

    seq: int | None = None
    rows: dict[CounterKey, list[Any]] = field(default_factory=dict)

    def clear(self) -> None:
        self.seq, self.rows = None, {}


@dataclass
class _StateRow:
    freeze_reason: str | None
    config_version: int


class UnitOfWork:
    """The buffers and counters of one transaction (see the module). Counter updates are
    read-modify-write: call them only in a write transaction, where the lock makes them
    exact."""

    def __init__(self, conn: Connection, cache: CounterCache | None = None) -> None:
        self.conn = conn
        self._cache = cache
        self._row: _StateRow | None = None
        self._state: TreasuryState | None = None
        self._start_seq: int | None = None
        # The cache's counters, when they were good at the start of this transaction.
        self._kept: dict[CounterKey, list[Any]] | None = None
        self._seq = 0
        self._seq_dirty = False
        # Counters read or changed in this transaction ([budget, used, flag]), and the
        # keys of those to write at flush.
        self._counters: dict[CounterKey, list[Any]] = {}
        self._dirty: dict[CounterKey, None] = {}
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
            moved = executemany(self.conn, st.TRANSITION, self._transitions)
            expected, self._transitions = len(self._transitions), []
            if self.conn.dialect.supports_sane_multi_rowcount and moved != expected:
                # prefetch read the statuses under the write lock, so nobody can have
                # moved a row since: a mismatch is a bug. Raising rolls the group back.
                raise AssertionError(f"{moved} of {expected} transitions applied")
        # A key read ahead and written since is read from the table again, not as the
        # row (or absence) that prefetch saw: reads may flush in the middle of a group.
        if self._new_keys:
            executemany(self.conn, st.INSERT_IDEMPOTENCY, list(self._new_keys.values()))
            self._forget_keys(self._new_keys)
            self._new_keys = {}
        if self._key_results:
            executemany(
                self.conn,
                st.FINISH_IDEMPOTENCY,
                [
                    {"b_agent": agent, "b_key": key, "b_result": value}
                    for (agent, key), value in self._key_results.items()
                ],
            )
            self._forget_keys(self._key_results)
            self._key_results = {}
        if self._dirty:
            self._flush_counters()
        if self._seq_dirty:
            self._seq += 1
            self.conn.execute(st.SET_SEQ, {"b_seq": self._seq})
            self._seq_dirty = False
            self._state = None
        if self._audit:
            executemany(self.conn, st.INSERT_AUDIT, self._audit)
            self._audit = []

    def _flush_counters(self) -> None:
        inserts, updates = [], []
        for key in self._dirty:
            entry = self._counters[key]
            kind, name, period = key
            if entry[2] == _NEW:
                inserts.append(
                    {"kind": kind, "name": name, "period": period, "budget": entry[0],
                     "used": entry[1]}
                )  # fmt: skip
            else:
                updates.append({"b_kind": kind, "b_name": name, "b_period": period,
                                "b_used": entry[1]})  # fmt: skip
            entry[2] = _CLEAN
        self._dirty = {}
        executemany(self.conn, st.INSERT_COUNTER, inserts)
        executemany(self.conn, st.UPDATE_COUNTER, updates)
        self._seq_dirty = True

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
        # 250 pairs: at most 250 keys and 251 agents ("" for keys from before they were
        # scoped per agent), within SQLite's oldest bound on variables.
        for pairs in st.chunks(wanted_keys, 250):
            params = {
                "b_agents": sorted({agent for agent, _ in pairs} | {""}),
                "b_keys": sorted({key for _, key in pairs}),
            }
            found = {
                (row.agent_id, row.key): row
                for row in self.conn.execute(st.PREFETCH_IDEMPOTENCY, params)
            }
            for agent, key in pairs:
                self._known_keys[agent, key] = found.get((agent, key)) or found.get(("", key))
        wanted = sorted(set(reservation_ids) - self._statuses.keys())
        for chunk in st.chunks([rid for rid in wanted if rid not in self._new_reservations]):
            for row in self.conn.execute(st.PREFETCH_STATUS, {"b_ids": chunk}):
                self._statuses[row.id] = row.status

    def _flush_reservations(self) -> None:
        if self._new_reservations:
            executemany(self.conn, st.INSERT_RESERVATION, list(self._new_reservations.values()))
            self._new_reservations = {}

    # ---- treasury state ----------------------------------------------------------------

    def _state_row(self) -> _StateRow:
        """The state row (read once per transaction; it says whether the cache is good)."""
        if self._row is None:
            row = self.conn.execute(st.SELECT_STATE).one()
            self._row = _StateRow(
                freeze_reason=row.freeze_reason if row.frozen else None,
                config_version=row.config_version,
            )
            self._seq = row.usage_seq
            self._state = None
            if self._start_seq is None:
                self._start_seq = row.usage_seq
                cache = self._cache
                if cache is not None and cache.seq == row.usage_seq:
                    self._kept = cache.rows
        return self._row

    def config_version(self) -> int:
        """Bumped with every change of the agents (cheaper than :meth:`state`)."""
        return (self._row or self._state_row()).config_version

    def state(self) -> TreasuryState:
        """Budget, usage and freeze state: the state row and the root scope's counter."""
        if self._state is None:
            row = self._row or self._state_row()
            budget, used, _ = self._counters.get(ROOT_KEY) or self._counter(ROOT_KEY)
            self._state = TreasuryState(
                total_budget=budget or 0,
                used=used,
                freeze_reason=row.freeze_reason,
                config_version=row.config_version,
                usage_seq=self._seq,
            )
        return self._state

    def _update_state(self, **values: Any) -> None:
        self.flush()
        self.conn.execute(update(state_table).where(st.S.id == 1).values(**values))
        self._row = None
        self._state = None

    # ---- counters ----------------------------------------------------------------------
    # A counter held here is the very list the process's cache holds (when the cache was
    # good at the start): a write transaction runs alone (the store's lock), and one that
    # rolls back clears the cache.

    def _counter(self, key: CounterKey) -> list[Any]:
        """[budget, used, flag] of a counter (a missing one: no budget, nothing used)."""
        entry = self._counters.get(key)
        if entry is None:
            if self._row is None:
                self._state_row()  # says whether the cache is good
            kept = self._kept
            entry = None if kept is None else kept.get(key)
            if entry is None:
                row = self.conn.execute(
                    st.SELECT_COUNTER, {"b_kind": key[0], "b_name": key[1], "b_period": key[2]}
                ).first()
                entry = [None, 0, _MISSING] if row is None else [row.budget, int(row.used), _CLEAN]
            self._counters[key] = entry
        return entry

    def counter(self, key: CounterKey) -> tuple[int | None, int, bool]:
        """(budget, used, whether the row exists) of a counter."""
        budget, used, flag = self._counter(key)
        return budget, used, flag != _MISSING

    def _load(self, keys: Sequence[CounterKey]) -> None:
        """Hold the counters of ``keys``, reading those that neither this transaction nor
        the cache holds in one query (a decision's scopes after another process wrote)."""
        counters = self._counters
        if self._row is None:
            self._state_row()
        kept = self._kept
        wanted = []
        for key in keys:
            if key not in counters:
                entry = None if kept is None else kept.get(key)
                if entry is None:
                    wanted.append(key)
                else:
                    counters[key] = entry
        if len(wanted) < 2:
            for key in wanted:  # one query either way
                self._counter(key)
            return
        params = {
            "b_kinds": sorted({kind for kind, _, _ in wanted}),
            "b_names": sorted({name for _, name, _ in wanted}),
            "b_periods": sorted({period for _, _, period in wanted}),
        }
        found = {
            (row.kind, row.name, row.period): row
            for row in self.conn.execute(st.SELECT_COUNTERS, params)
        }
        for key in wanted:
            row = found.get(key)
            counters[key] = (
                [None, 0, _MISSING] if row is None else [row.budget, int(row.used), _CLEAN]
            )

    def _add(self, key: CounterKey, delta: int) -> int:
        """Add ``delta`` to a counter (written at flush); its new value."""
        entry = self._counters.get(key) or self._counter(key)
        entry[1] += delta
        flag = entry[2]
        if flag == _CLEAN:
            entry[2] = _DIRTY
        elif flag == _MISSING:
            entry[2] = _NEW
        self._dirty[key] = None
        return int(entry[1])

    def _add_total(self, delta: int) -> int:
        """:meth:`_add` for the root scope (what :meth:`state` shows)."""
        self._state = None
        return self._add(ROOT_KEY, delta)

    def _set_budget(self, key: CounterKey, budget: int | None) -> None:
        """Set (None: remove) a counter's budget, now; its usage stays."""
        entry = self._counter(key)
        self.flush()
        kind, name, period = key
        if entry[2] == _MISSING:
            self.conn.execute(
                st.INSERT_COUNTER,
                {"kind": kind, "name": name, "period": period, "budget": budget, "used": 0},
            )
        else:
            self.conn.execute(
                st.SET_COUNTER_BUDGET,
                {"b_kind": kind, "b_name": name, "b_period": period, "b_budget": budget},
            )
        entry[0], entry[2] = budget, _CLEAN
        self._seq_dirty = True
        self._state = None

    def day_used(self, agent_id: str, day: str) -> int:
        """What counts against ``agent_id``'s limit on ``day``."""
        return int(self._counter(("day", agent_id, day))[1])

    def keep(self, cache: CounterCache) -> None:
        """After a commit: remember this transaction's counters for the next ones."""
        if self._row is None:
            return
        if self._kept is not cache.rows or len(cache.rows) > 100_000:
            cache.rows = {}  # it was stale (another process wrote) or has grown large
        cache.rows.update(self._counters)
        cache.seq = self._seq
