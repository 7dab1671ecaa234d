"""The SQL ledger: exact amounts, counters, transitions, locking. No chain.

The PostgreSQL variants run when ``ESCROWKIT_TEST_POSTGRES_URL`` points at a database the
test may fill (``postgresql://user@localhost/escrowkit_test``); otherwise they are skipped.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError

from escrowkit.budget import AgentConfig, ScopeUsage, SpendRequest, charged_scopes
from escrowkit.ledger import (
    Approval,
    ApprovalStatus,
    Ledger,
    Reservation,
    ReservationStatus,
    Store,
    metadata,
)
from escrowkit.ledger.schema import idempotency_table

AGENT = "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf"
PROVIDER = "0x2B5AD5c4795c026514f8317c7a215E218DcCD6cF"
WEI = 10**18
PG_URL = os.environ.get("ESCROWKIT_TEST_POSTGRES_URL")


def _sqlite_memory(tmp_path: Path) -> Store:
    return Store()


def _sqlite_file(tmp_path: Path) -> Store:
    return Store(f"sqlite:///{tmp_path / 'ledger.db'}")


def _postgres(tmp_path: Path) -> Store:
    if not PG_URL:
        pytest.skip("set ESCROWKIT_TEST_POSTGRES_URL to run the PostgreSQL variant")
    store = Store(PG_URL)
    with store.engine.begin() as conn:  # a clean slate for each test
        metadata.drop_all(conn)
    store.close()
    return Store(PG_URL)


@pytest.fixture(params=[_sqlite_memory, _sqlite_file, _postgres], ids=["memory", "file", "pg"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    made: Store = request.param(tmp_path)
    yield made
    made.close()


def reservation(
    amount: int, *, agent_id: str = "a", day: str = "2026-01-01", **kw: object
) -> Reservation:
    salt = secrets.token_bytes(32)
    values: dict[str, object] = {
        "id": f"res_{secrets.token_hex(16)}",
        "agent_id": agent_id,
        "amount": amount,
        "provider": PROVIDER,
        "purpose": "test",
        "category": None,
        "day": day,
        "created_at": 1_000.0,
        "lease_at": 1_000.0,
        "status": ReservationStatus.PENDING,
        "salt": salt,
        "escrow_id": secrets.token_bytes(32),
        "requester": AGENT,
    }
    values.update(kw)
    return Reservation(**values)  # type: ignore[arg-type]


def test_uint96_amounts_of_an_18_decimal_token_round_trip_exactly(store: Store) -> None:
    """9.3 tokens at 18 decimals already pass 2**63; the largest escrow is 2**96 - 1."""
    amounts = [2**63 + 1, 9_300_000_000_000_000_001, 2**96 - 1]
    with store.write() as ledger:
        for amount in amounts:
            ledger.insert_reservation(reservation(amount))
    with store.read() as ledger:
        rows = ledger.reservations()
        assert sorted(r.amount for r in rows) == sorted(amounts)
        assert all(type(r.amount) is int for r in rows)
        # The counters hold the exact sum (beyond 2**96, far beyond 64 bits).
        assert ledger.state().used == sum(amounts)
        assert ledger.day_used("a", "2026-01-01") == sum(amounts)


def test_amount_column_is_never_a_float_or_int64(store: Store) -> None:
    with store.write() as ledger:
        ledger.insert_reservation(reservation(2**95 + 7))
    with store.engine.connect() as conn:
        raw = conn.execute(text("SELECT amount FROM reservations")).scalar_one()
    # SQLite keeps the decimal string; PostgreSQL a NUMERIC (Decimal): both exact.
    assert str(raw) == str(2**95 + 7)


def test_transitions_credit_back_exactly_once(store: Store) -> None:
    first, second = reservation(30 * WEI, category="data"), reservation(12 * WEI, category="data")
    with store.write() as ledger:
        ledger.set_category_budget("data", 100 * WEI)
        ledger.insert_reservation(first)
        ledger.insert_reservation(second)
    with store.write() as ledger:
        committed = ledger.transition(
            first, ReservationStatus.COMMITTED, 2_000.0, tx_hashes=["0x1"]
        )
        assert committed is not None and committed.tx_hashes == ("0x1",)
        assert ledger.transition(second, ReservationStatus.VOIDED, 2_000.0, reason="r") is not None
        # A stale view (still PENDING) cannot move the row twice: no double credit.
        assert ledger.transition(second, ReservationStatus.VOIDED, 2_001.0) is None
        assert ledger.transition(committed, ReservationStatus.REFUNDED, 2_002.0) is not None
    with store.read() as ledger:
        assert ledger.state().used == 0
        assert ledger.day_used("a", "2026-01-01") == 0
        assert ledger.category("data") == (True, 100 * WEI, 0)
        statuses = {r.id: r.status for r in ledger.reservations()}
    assert statuses == {first.id: ReservationStatus.REFUNDED, second.id: ReservationStatus.VOIDED}


def test_settled_stays_counted(store: Store) -> None:
    row = reservation(5 * WEI)
    with store.write() as ledger:
        ledger.insert_reservation(row)
        committed = ledger.transition(row, ReservationStatus.COMMITTED, 1.0)
        assert committed is not None
        assert ledger.transition(committed, ReservationStatus.SETTLED, 2.0) is not None
    with store.read() as ledger:
        assert ledger.state().used == 5 * WEI
        assert ledger.pending_amounts() == []


def test_hour_window_counts_only_live_rows_after_since(store: Store) -> None:
    rows = [
        reservation(1, created_at=100.0),
        reservation(10, created_at=3_700.0),
        reservation(100, created_at=3_800.0),
        reservation(1_000, created_at=3_900.0, agent_id="b"),
    ]
    with store.write() as ledger:
        for row in rows:
            ledger.insert_reservation(row)
        ledger.transition(rows[2], ReservationStatus.VOIDED, 4_000.0)
    with store.read() as ledger:
        assert ledger.hour_used("a", since=3_600.0) == 10
        assert ledger.hour_used("a", since=0.0) == 11
        assert ledger.hour_used("b", since=0.0) == 1_000


def test_agents_round_trip_and_bump_the_config_version(store: Store) -> None:
    config = AgentConfig(
        "research-agent",
        "Research",
        AGENT,
        spending_limit=2**95,
        daily_limit=2**95 + 1,
        requires_approval=0,
        hourly_limit=7,
        categories=["data"],
        allowed_providers=[PROVIDER],
    )
    with store.write() as ledger:
        before = ledger.state().config_version
        ledger.upsert_agent(config, 1.0)
        ledger.upsert_agent(config, 2.0)  # update in place
        assert ledger.state().config_version == before + 2
    with store.read() as ledger:
        assert ledger.agents() == {"research-agent": config}


def test_approvals_close_once(store: Store) -> None:
    req = SpendRequest("a", 5, PROVIDER, "x", category="data", idempotency_key="k")
    with store.write() as ledger:
        ledger.insert_approval(
            Approval("apr_1", req, ApprovalStatus.PENDING, requested_at=1.0, expires_at=10.0)
        )
        assert [a.id for a in ledger.pending_approvals(5.0)] == ["apr_1"]
        assert ledger.pending_approvals(10.0) == []  # expired by time
        assert ledger.close_approval("apr_1", ApprovalStatus.APPROVED, 6.0, by="alice")
        assert not ledger.close_approval("apr_1", ApprovalStatus.REJECTED, 7.0)
    with store.read() as ledger:
        approval = ledger.approval("apr_1")
    assert approval is not None and approval.request == req
    assert (approval.status, approval.decided_by) == (ApprovalStatus.APPROVED, "alice")


def test_idempotency_alerts_and_audit(store: Store) -> None:
    with store.write() as ledger:
        ledger.insert_idempotency("a", "k", "f" * 64, 1.0, reservation_id="res_1")
        assert ledger.idempotency("a", "k") is not None
        assert ledger.record_alert("total_budget", "total", 80, "", 800, 1_000, 1.0)
        assert not ledger.record_alert("total_budget", "total", 80, "", 900, 1_000, 2.0)
        ledger.finish_idempotency("a", "k", {"status": "APPROVED"})
        ledger.audit("denied", 1.0, agent_id="a", amount=2**80, reason="why")
        ledger.audit("reserved", 2.0, agent_id="a", reservation_id="res_1")
    with store.read() as ledger:
        record = ledger.idempotency("a", "k")
        assert record is not None and record.result == {"status": "APPROVED"}
        assert ledger.idempotency("b", "k") is None  # keys are scoped per agent
        assert len(ledger.alerts()) == 1
        log = ledger.audit_log()
        assert [e.event for e in log] == ["denied", "reserved"]
        assert log[0].amount == 2**80 and log[0].detail == {"reason": "why"}
        assert [e.event for e in ledger.audit_log(limit=1)] == ["reserved"]


def test_a_key_read_ahead_reads_as_written_after_a_flush(store: Store) -> None:
    """A commit group reads its keys ahead; reads in the group may flush half-way. A key
    written before such a flush must not read as the absent row prefetch saw (a retry in
    the same group would reserve twice), nor lose its result."""
    with store.write() as ledger:
        ledger.prefetch(keys=[("a", "k")])
        assert ledger.idempotency("a", "k") is None
        ledger.insert_idempotency("a", "k", "f" * 64, 1.0, reservation_id="res_1")
        ledger.flush()
        record = ledger.idempotency("a", "k")
        assert record is not None and record.reservation_id == "res_1"
        assert record.result is None
        ledger.finish_idempotency("a", "k", {"status": "APPROVED"})
        ledger.flush()
        record = ledger.idempotency("a", "k")
        assert record is not None and record.result == {"status": "APPROVED"}


def test_a_key_read_ahead_finds_its_agents_and_a_key_from_before_scoping(store: Store) -> None:
    """The read-ahead of a commit group looks keys up by (agent, key): each agent gets
    its own, and a key kept from before keys were scoped per agent (agent '') is found
    for whoever asks, as the single lookup finds it."""
    with store.write() as ledger:
        ledger.insert_idempotency("a", "k", "a" * 64, 1.0, reservation_id="res_a")
        ledger.insert_idempotency("b", "k", "b" * 64, 1.0, reservation_id="res_b")
        ledger.flush()
        ledger.conn.execute(
            idempotency_table.insert().values(
                agent_id="", key="old", fingerprint="c" * 64, result=None, created_at=1.0
            )
        )
    pairs = [("a", "k"), ("b", "k"), ("c", "k"), ("a", "old")]
    queries: list[str] = []

    def count(*args: object) -> None:
        queries.append(str(args[2]))

    with store.write() as ledger:
        ledger.prefetch(keys=pairs)
        # Every answer comes from the read-ahead, not from a lookup per key.
        event.listen(store.engine, "before_cursor_execute", count)
        try:
            found = {pair: ledger.idempotency(*pair) for pair in pairs}
        finally:
            event.remove(store.engine, "before_cursor_execute", count)
    assert queries == []
    assert found[("a", "k")] is not None and found[("a", "k")].reservation_id == "res_a"
    assert found[("b", "k")] is not None and found[("b", "k")].reservation_id == "res_b"
    assert found[("c", "k")] is None
    legacy = found[("a", "old")]
    assert legacy is not None and legacy.agent_id == "" and legacy.fingerprint == "c" * 64


def test_memory_store_is_one_database_for_all_threads() -> None:
    store = Store()
    seen: list[int] = []

    def read() -> None:
        with store.read() as ledger:
            seen.append(len(ledger.reservations()))

    with store.write() as ledger:
        ledger.insert_reservation(reservation(1))
    thread = threading.Thread(target=read)
    thread.start()
    thread.join()
    assert seen == [1]


def test_file_writers_in_two_stores_serialize(tmp_path: Path) -> None:
    """Two Store objects on one file (as two processes would have): the second writer
    waits for BEGIN IMMEDIATE instead of reading a stale counter."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    one, two = Store(url), Store(url)
    holding = threading.Event()
    order: list[str] = []

    def first() -> None:
        with one.write() as ledger:
            ledger.insert_reservation(reservation(5))
            holding.set()
            time.sleep(0.3)
            order.append("first commits")

    thread = threading.Thread(target=first)
    thread.start()
    holding.wait()
    with two.write() as ledger:
        order.append("second writes")
        assert ledger.state().used == 5  # saw the first commit, not the value before it
        ledger.insert_reservation(reservation(7))
    thread.join()
    assert order == ["first commits", "second writes"]
    with one.read() as ledger:
        assert ledger.state().used == 12
    with one.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    fast = Store(url, synchronous="NORMAL")
    with fast.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1


def test_a_file_store_keeps_one_writer_connection_that_survives_a_lock_timeout(
    tmp_path: Path,
) -> None:
    """The writes of a SQLite file share one connection (no pool round trip per group).
    A BEGIN IMMEDIATE that timed out behind another process's lock leaves it out of any
    transaction, so the next write works; close() gives it back."""
    url = f"sqlite:///{tmp_path / 'kept.db'}"
    store, other = Store(url, timeout=0.05), Store(url)
    with store.write() as ledger:
        ledger.insert_reservation(reservation(1))
    writer = store._writer
    assert writer is not None
    with store.write() as ledger:
        ledger.insert_reservation(reservation(2))
    assert store._writer is writer  # the same connection, not a new checkout
    with other.write() as ledger:  # another process holds the write lock...
        with pytest.raises(DBAPIError, match="locked"), store.write():
            pass  # ...so this BEGIN IMMEDIATE times out
        ledger.insert_reservation(reservation(4))
    assert not writer.in_transaction()
    with store.write() as ledger:
        assert ledger.state().used == 7
        ledger.insert_reservation(reservation(8))
    with other.read() as ledger:
        assert ledger.state().used == 15
    store.close()
    assert writer.closed and store._writer is None
    other.close()


def test_a_failed_write_rolls_back_everything(store: Store) -> None:
    with pytest.raises(RuntimeError), store.write() as ledger:
        ledger.insert_reservation(reservation(9))
        raise RuntimeError("boom")
    with store.read() as ledger:
        assert ledger.state().used == 0 and ledger.reservations() == []


def test_window_queries_use_indexes_not_scans(tmp_path: Path) -> None:
    """Daily, category and total figures are counters; the hourly window is an index
    range scan. The plans must not scan the table."""
    store = Store(f"sqlite:///{tmp_path / 'big.db'}")
    with store.engine.connect() as conn:
        plan = " ".join(
            str(row[-1])
            for row in conn.exec_driver_sql(
                "EXPLAIN QUERY PLAN SELECT amount FROM reservations WHERE agent_id = 'a' "
                "AND created_at > 5 AND status IN ('PENDING', 'COMMITTED', 'SETTLED')"
            )
        )
        assert "ix_reservations_agent_created" in plan, plan
        plan = " ".join(
            str(row[-1])
            for row in conn.exec_driver_sql(
                "EXPLAIN QUERY PLAN SELECT amount FROM reservations WHERE status = 'PENDING'"
            )
        )
        assert "ix_reservations_pending" in plan, plan


def test_cached_day_counters_notice_another_writer(tmp_path: Path) -> None:
    """Each store keeps day counters between transactions; a write by another process
    (here: another Store on the same file) bumps usage_seq and invalidates them."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    one, two = Store(url), Store(url)
    with one.write() as ledger:
        ledger.insert_reservation(reservation(5))
    with two.write() as ledger:
        assert ledger.day_used("a", "2026-01-01") == 5
        ledger.insert_reservation(reservation(7))
    with one.write() as ledger:
        assert ledger.day_used("a", "2026-01-01") == 12
        assert ledger.state().used == 12


def test_the_audit_log_is_append_only_in_the_database(store: Store) -> None:
    with store.write() as ledger:
        ledger.audit("denied", 1.0, agent_id="a", reason="why")
    for statement in ("UPDATE audit_log SET event = 'approved'", "DELETE FROM audit_log"):
        with pytest.raises(DBAPIError, match="append-only"), store.engine.begin() as conn:
            conn.exec_driver_sql(statement)
    with store.read() as ledger:
        assert [e.event for e in ledger.audit_log()] == ["denied"]


@pytest.mark.parametrize("kind", ["file", "pg"])
def test_a_read_is_one_snapshot(kind: str, tmp_path: Path) -> None:
    """report() adds up several queries (the usage counter, the PENDING rows, ...) in one
    read: a commit by another process between two of them must not show in one and not
    the other, or the report's figures contradict each other."""
    one = _sqlite_file(tmp_path) if kind == "file" else _postgres(tmp_path)
    two = Store(one.url)
    with one.read() as ledger:
        before = len(ledger.reservations())
        with two.write() as other:
            other.insert_reservation(reservation(5))
        assert len(ledger.reservations()) == before
        assert ledger.pending_amounts() == []
    with one.read() as ledger:
        assert len(ledger.reservations()) == before + 1
    one.close()
    two.close()


# ---- scopes: one counter table -------------------------------------------------------


def scoped(amount: int, agent_id: str, scope: str, workflow: str | None = None) -> Reservation:
    return reservation(amount, agent_id=agent_id, scope=scope, workflow=workflow)


CHILD = "workspace:a/agent:p/agent:c"


def scope_used(ledger: Ledger, scope: str) -> int:
    return ledger.counter(("scope", scope, ""))[1]


def test_a_spend_counts_in_every_scope_it_charges_until_voided(store: Store) -> None:
    row = scoped(7 * WEI, "c", CHILD, workflow="t1")
    with store.write() as ledger:
        ledger.set_scope_budget("workspace:a", 100 * WEI)
        ledger.insert_reservation(row)
    charged = charged_scopes(CHILD, "t1")
    assert len(charged) == 6
    with store.read() as ledger:
        assert all(scope_used(ledger, scope) == 7 * WEI for scope in charged)
        assert scope_used(ledger, "workspace:b") == 0
        assert ledger.state().used == 7 * WEI
        [budgeted] = ledger.scope_usage(charged)
        assert budgeted == ScopeUsage("workspace:a", 100 * WEI, 7 * WEI)
        assert ledger.pending_charges()[0].scope == CHILD
    with store.write() as ledger:
        assert ledger.transition(row, ReservationStatus.VOIDED, 2.0) is not None
    with store.read() as ledger:
        assert all(scope_used(ledger, scope) == 0 for scope in charged)


def test_a_refund_credits_every_charged_scope(store: Store) -> None:
    row = scoped(5, "c", CHILD)
    with store.write() as ledger:
        ledger.insert_reservation(row)
        committed = ledger.transition(row, ReservationStatus.COMMITTED, 2.0)
        assert committed is not None
    with store.write() as ledger:
        assert ledger.transition(committed, ReservationStatus.REFUNDED, 3.0) is not None
    with store.read() as ledger:
        assert [scope_used(ledger, s) for s in charged_scopes(CHILD)] == [0, 0, 0]
        assert ledger.state().used == 0


def test_budgets_live_in_the_counter_table(store: Store) -> None:
    with store.write() as ledger:
        ledger.set_total_budget(1_000, 1.0)
        ledger.set_category_budget("data", 50)
        ledger.set_scope_budget("workspace:a", 60)
        ledger.insert_reservation(scoped(5, "c", CHILD))
        ledger.set_scope_budget("workspace:a/agent:p", 30)  # after a spend: keeps its usage
    with store.read() as ledger:
        assert sorted(ledger.scope_budgets()) == [
            ("", 1_000, 5),
            ("workspace:a", 60, 5),
            ("workspace:a/agent:p", 30, 5),
        ]
        assert ledger.category("data") == (True, 50, 0)
    with store.write() as ledger:
        ledger.set_scope_budget("workspace:a", None)
    with store.read() as ledger:
        assert [c.scope for c in ledger.scope_budgets()] == ["", "workspace:a/agent:p"]
        assert ledger.counter(("scope", "workspace:a", "")) == (None, 5, True)


def test_counters_are_written_once_per_transaction(store: Store) -> None:
    """Ten spends under a three-level scope in one transaction write each counter once:
    one INSERT (new rows) and one UPDATE (changed rows) for the whole counter table, and
    the next transaction reads none of them again (the process keeps them)."""
    statements: list[str] = []

    def seen(conn: object, cursor: object, statement: str, *args: object) -> None:
        if "counters" in statement:
            statements.append(statement.split()[0])

    def spend_ten() -> None:
        with store.write() as ledger:
            for n in range(10):
                ledger.insert_reservation(scoped(1, f"a{n}", f"tenant:t/workspace:w/agent:a{n}"))

    spend_ten()
    event.listen(store.engine, "before_cursor_execute", seen)
    try:
        spend_ten()
    finally:
        event.remove(store.engine, "before_cursor_execute", seen)
    assert statements == ["UPDATE"]
    with store.read() as ledger:
        assert scope_used(ledger, "tenant:t/workspace:w") == 20
        assert scope_used(ledger, "tenant:t/workspace:w/agent:a3") == 2


@pytest.mark.parametrize("kind", ["file", "pg"])
def test_a_budget_set_by_another_store_is_seen(kind: str, tmp_path: Path) -> None:
    """A process keeps the counters it wrote; a budget another process sets (another
    Store on the same database) bumps usage_seq, so the kept values are read again (the
    scopes of a decision in one query)."""
    one = _sqlite_file(tmp_path) if kind == "file" else _postgres(tmp_path)
    two = Store(one.url)
    charged = list(charged_scopes(CHILD))
    with one.write() as ledger:
        ledger.insert_reservation(scoped(5, "c", CHILD))
        assert ledger.scope_usage(charged) == []
    with two.write() as ledger:
        ledger.set_scope_budget("workspace:a", 9)
        ledger.set_scope_budget(CHILD, 7)
    with one.write() as ledger:
        assert ledger.charged_usage(CHILD, None) == [
            ScopeUsage("workspace:a", 9, 5),
            ScopeUsage(CHILD, 7, 5),
        ]
    one.close()
    two.close()


def test_removed_agents_and_their_open_approvals(store: Store) -> None:
    parent = AgentConfig("p", "P", AGENT, 10, 10, 5, scope="workspace:a")
    request = SpendRequest("p", 5, PROVIDER, "x", workflow="t1")
    with store.write() as ledger:
        ledger.upsert_agent(parent, 1.0)
        ledger.insert_approval(Approval("apr_1", request, ApprovalStatus.PENDING, 1.0, 2.0))
        ledger.remove_agents(["p"], 3.0)
        assert ledger.agents() == {}
        assert ledger.agents(removed=True) == {"p": parent}
        [approval] = ledger.open_approvals_of(["p"])  # expired by time, still open
        assert approval.request == request
        ledger.upsert_agent(parent, 4.0)  # registering again re-enables
        assert ledger.agents() == {"p": parent}


def test_a_moved_row_equals_dataclasses_replace() -> None:
    """Reservation.moved (the transition's fast copy) makes what dataclasses.replace makes,
    and leaves the original as it was."""
    import dataclasses

    row = reservation(5)
    moved = row.moved(ReservationStatus.COMMITTED, 2.0, ("0xab",), "funded")
    assert moved == dataclasses.replace(
        row, status=ReservationStatus.COMMITTED, updated_at=2.0, tx_hashes=("0xab",),
        reason="funded",
    )  # fmt: skip
    assert row.status is ReservationStatus.PENDING and row.tx_hashes == ()
    assert hash(moved) == hash(dataclasses.replace(moved))
