"""The batched writes that go straight to the driver (ledger.bulk) store exactly what
SQLAlchemy's ``Connection.execute`` stores, raise what it raises, and step aside when a
statement listener or echo is on."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import event, select
from sqlalchemy.exc import IntegrityError

from escrowkit.ledger import Store, metadata
from escrowkit.ledger import statements as st
from escrowkit.ledger.bulk import executemany
from escrowkit.ledger.schema import audit_table, counters_table, idempotency_table

PG_URL = os.environ.get("ESCROWKIT_TEST_POSTGRES_URL")
HUGE = 2**255 + 7  # beyond 64 bits: an Amount column must keep it exact


@pytest.fixture(params=["file", "pg"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "pg":
        if not PG_URL:
            pytest.skip("set ESCROWKIT_TEST_POSTGRES_URL to run the PostgreSQL variant")
        made = Store(PG_URL)
        with made.engine.begin() as conn:
            metadata.drop_all(conn)
        made.close()
        made = Store(PG_URL)
    else:
        made = Store(f"sqlite:///{tmp_path / 'ledger.db'}")
    yield made
    made.close()


def _audit(n: int, amount: int | None) -> dict[str, object]:
    return {
        "at": float(n),
        "event": "reserved",
        "agent_id": f"a{n}",
        "reservation_id": None,
        "approval_id": None,
        "amount": amount,
        "detail": "{}",
    }


def _rows(store: Store) -> list[tuple[object, ...]]:
    a = audit_table.c
    with store.read() as ledger:
        query = select(a.at, a.event, a.agent_id, a.amount, a.detail).order_by(a.at)
        return [tuple(row) for row in ledger.conn.execute(query)]


def test_the_driver_path_stores_what_sqlalchemy_stores(store: Store) -> None:
    rows = [_audit(n, amount) for n, amount in enumerate([1, None, HUGE, 0])]
    with store.write() as ledger:
        assert executemany(ledger.conn, st.INSERT_AUDIT, rows[:2]) == 2
        ledger.conn.execute(st.INSERT_AUDIT, rows[2:])  # the ordinary path, for comparison
    with store.write() as ledger:
        executemany(ledger.conn, st.INSERT_AUDIT, [_audit(n + 10, HUGE) for n in range(2)])
    found = _rows(store)
    assert [r[3] for r in found] == [1, None, HUGE, 0, HUGE, HUGE]
    assert all(type(r[3]) is int for r in found if r[3] is not None)


def test_updates_report_the_rows_they_matched(store: Store) -> None:
    with store.write() as ledger:
        executemany(
            ledger.conn,
            st.INSERT_COUNTER,
            [{"kind": "day", "name": f"a{n}", "period": "d", "budget": None, "used": n}
             for n in range(3)],
        )  # fmt: skip
    updates = [
        {"b_kind": "day", "b_name": name, "b_period": "d", "b_used": HUGE}
        for name in ("a0", "a2", "missing")
    ]
    with store.write() as ledger:
        assert executemany(ledger.conn, st.UPDATE_COUNTER, updates) == 2
    k = counters_table.c
    with store.read() as ledger:
        used = dict(ledger.conn.execute(select(k.name, k.used).where(k.kind == "day")).all())
    assert used == {"a0": HUGE, "a1": 1, "a2": HUGE}


def test_a_driver_error_is_sqlalchemys_and_rolls_back(store: Store) -> None:
    row = {
        "agent_id": "a",
        "key": "k",
        "fingerprint": "f",
        "result": None,
        "reservation_id": None,
        "created_at": 1.0,
    }
    with store.write() as ledger:
        executemany(ledger.conn, st.INSERT_IDEMPOTENCY, [row])
    with pytest.raises(IntegrityError) as raised, store.write() as ledger:
        executemany(ledger.conn, st.INSERT_AUDIT, [_audit(1, 5)])
        executemany(ledger.conn, st.INSERT_IDEMPOTENCY, [row])
    assert "fingerprint" not in str(raised.value).split("\n")[-1]  # parameters are hidden
    assert _rows(store) == []  # the audit entry went with the failed transaction
    with store.read() as ledger:
        count = len(ledger.conn.execute(select(idempotency_table.c.key)).all())
    assert count == 1


def test_a_statement_listener_sees_every_batch(store: Store) -> None:
    seen: list[str] = []

    def listen(conn: object, cursor: object, statement: str, *args: object) -> None:
        seen.append(statement.split()[0])

    event.listen(store.engine, "before_cursor_execute", listen)
    try:
        with store.write() as ledger:
            executemany(ledger.conn, st.INSERT_AUDIT, [_audit(1, 5), _audit(2, 6)])
    finally:
        event.remove(store.engine, "before_cursor_execute", listen)
    assert "INSERT" in seen
    assert [r[3] for r in _rows(store)] == [5, 6]
