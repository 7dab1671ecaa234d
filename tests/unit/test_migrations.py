"""Schema migrations: a ledger made by an older escrowkit upgrades in place on open; one
made by a newer escrowkit is refused. The fixture ``tests/fixtures/ledger_v1.db`` was
made by escrowkit 0.1.0 (schema version 1, before migrations; see make_ledger_v1.py.txt).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData, Numeric, String, create_engine, inspect, text

from escrowkit.errors import ConfigurationError
from escrowkit.ledger import Ledger, ReservationStatus, Store, metadata
from escrowkit.ledger.migrate import current_revision
from escrowkit.ledger.schema import HEAD_REVISION, REVISIONS

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "ledger_v1.db"
TREASURY = "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf"
U = 10**6
PG_URL = os.environ.get("ESCROWKIT_TEST_POSTGRES_URL")


def v1_copy(tmp_path: Path) -> str:
    target = tmp_path / "ledger.db"
    shutil.copy(FIXTURE, target)
    return f"sqlite:///{target}"


def test_the_head_is_the_last_migration() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from escrowkit.ledger.migrate import MIGRATIONS

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    script = ScriptDirectory.from_config(config)
    assert script.get_current_head() == HEAD_REVISION
    assert [r.revision for r in reversed(list(script.walk_revisions()))] == list(REVISIONS)


def test_a_v1_ledger_upgrades_in_place_keeping_every_row(tmp_path: Path) -> None:
    url = v1_copy(tmp_path)
    store = Store(url)
    try:
        with store.read() as ledger:
            assert current_revision(ledger.conn) == HEAD_REVISION
            rows = {r.status for r in ledger.reservations()}
            assert rows == {
                ReservationStatus.COMMITTED,
                ReservationStatus.SETTLED,
                ReservationStatus.PENDING,
            }
            assert {r.sender for r in ledger.reservations()} == {TREASURY}  # treasury mode
            assert len(ledger.audit_log()) == 20  # as the fixture holds them
            assert set(ledger.agents()) == {"research-agent", "data-agent"}
            # Keys take the agent of the spend they led to; a denial's keeps ''.
            assert ledger.idempotency("research-agent", "k-1") is not None
            pending = ledger.idempotency("research-agent", "k-3")
            assert pending is not None and pending.agent_id == "research-agent"
            denied = ledger.idempotency("research-agent", "k-2")
            assert denied is not None and denied.agent_id == ""
            assert ledger.state().total_budget == 1_000 * 10**6
            assert_counters_carried_over(ledger)
    finally:
        store.close()
    # The upgraded schema is exactly what a new ledger gets.
    engine = create_engine(url)
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
        triggers = conn.execute(text("select name from sqlite_master where type='trigger'"))
        assert {t[0] for t in triggers} == {"audit_log_no_update", "audit_log_no_delete"}
        counters = text("select sql from sqlite_master where name = 'counters'")
        assert "WITHOUT ROWID" in conn.execute(counters).scalar_one()  # as a new ledger's
    engine.dispose()
    Store(url).close()  # opening again is a no-op


def assert_counters_carried_over(ledger: Ledger) -> None:
    """Revision 0003 moved every counter into one table: the total (the root scope), the
    category budgets, the agents' days, and each agent's own scope, summed from its
    counted rows (research: 25 committed + 30 settled + 10 pending; data: 150)."""
    state = ledger.state()
    assert (state.total_budget, state.used) == (1_000 * U, 215 * U)
    assert ledger.categories() == {"compute": (400 * U, 150 * U)}
    assert ledger.days_used() == {
        ("research-agent", "2026-01-02"): 65 * U,
        ("data-agent", "2026-01-02"): 150 * U,
    }
    assert sorted(ledger.scope_budgets()) == [("", 1_000 * U, 215 * U)]  # none but the root
    assert [(s.scope, s.used) for s in ledger.scope_usage(["agent:research-agent"])] == []
    assert ledger.counter(("scope", "agent:research-agent", "")) == (None, 65 * U, True)
    assert ledger.counter(("scope", "agent:data-agent", "")) == (None, 150 * U, True)
    rows = ledger.reservations()
    assert {(r.agent_id, r.scope, r.workflow) for r in rows} == {
        ("research-agent", "agent:research-agent", None),
        ("data-agent", "agent:data-agent", None),
    }
    assert {a.scope for a in ledger.agents().values()} == {""}


def test_a_ledger_stamped_past_the_placeholder_0003_gets_its_scopes(tmp_path: Path) -> None:
    """Main's service branch shipped a placeholder 0003 (it changed nothing) and 0004 (the
    service's tables): a ledger made or upgraded there is at 0004 without the counters.
    Revision 0005 runs 0003's steps on it; the result is what a new ledger gets."""
    from alembic import command
    from alembic.config import Config

    from escrowkit.ledger.migrate import MIGRATIONS

    url = v1_copy(tmp_path)
    engine = create_engine(url)
    with engine.begin() as conn:  # 0001 -> 0002, then what 0004 adds, stamped 0004
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = conn
        conn.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)"))
        conn.execute(text("INSERT INTO alembic_version VALUES ('0001')"))
        command.upgrade(config, "0002")
        for name in ("api_keys", "events", "webhook_cursors"):
            metadata.tables[name].create(conn)
        conn.execute(text("UPDATE alembic_version SET version_num = '0004'"))
        assert "counters" not in inspect(conn).get_table_names()
    engine.dispose()
    store = Store(url)
    try:
        with store.read() as ledger:
            assert current_revision(ledger.conn) == HEAD_REVISION
            assert_counters_carried_over(ledger)
    finally:
        store.close()
    engine = create_engine(url)
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    engine.dispose()


def test_a_ledger_newer_than_the_code_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    Store(url).close()
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(ConfigurationError, match="newer escrowkit"):
        Store(url)


def test_a_new_ledger_is_created_at_the_head(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    store = Store(url)
    with store.read() as ledger:
        assert current_revision(ledger.conn) == HEAD_REVISION
    store.close()


@pytest.mark.skipif(not PG_URL, reason="set ESCROWKIT_TEST_POSTGRES_URL")
def test_the_migration_runs_on_postgresql(tmp_path: Path) -> None:
    """The v1 fixture's tables and rows, copied into PostgreSQL as 0.1.0 made them there
    (amounts NUMERIC(78, 0), not SQLite's decimal strings), upgrade there too."""
    assert PG_URL is not None
    source = create_engine(v1_copy(tmp_path))
    old = MetaData()
    old.reflect(source)
    amounts = {
        (table.name, column.name)
        for table in old.sorted_tables
        for column in table.columns
        if isinstance(column.type, String) and column.type.length == 80
    }
    for table in old.sorted_tables:
        for column in table.columns:
            if (table.name, column.name) in amounts:
                column.type = Numeric(78, 0)
    target = Store(PG_URL)  # a clean slate first
    with target.engine.begin() as conn:
        metadata.drop_all(conn)
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
        old.create_all(conn)
        with source.connect() as read:
            for table in old.sorted_tables:
                rows = [
                    {
                        k: int(v) if (table.name, k) in amounts and v is not None else v
                        for k, v in r._mapping.items()
                    }
                    for r in read.execute(text(f"SELECT * FROM {table.name}"))
                ]
                if rows:
                    conn.execute(table.insert(), rows)
    target.close()
    source.dispose()
    upgraded = Store(PG_URL)
    try:
        with upgraded.read() as ledger:
            assert current_revision(ledger.conn) == HEAD_REVISION
            assert len(ledger.reservations()) == 4
            assert ledger.idempotency("research-agent", "k-1") is not None
            assert "nonces" in inspect(ledger.conn).get_table_names()
            assert_counters_carried_over(ledger)
    finally:
        upgraded.close()
