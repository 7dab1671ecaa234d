"""Every statement of the hot path (ledger.statements) finds its rows through an index
on SQLite: none of them reads a whole table that grows with the ledger.

A scan is invisible in a small test ledger and ruinous in a real one: the idempotency
prefetch once matched on the key alone, which the (agent_id, key) primary key cannot
serve, so every commit group read every key ever stored (100,000 keys cost the
coordinator benchmark 60 % of its rate); several counters were read with a row-value IN
list, which SQLite answers by reading every counter."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy.dialects import sqlite
from sqlalchemy.sql.dml import Delete, Update
from sqlalchemy.sql.selectable import Select

from escrowkit.ledger import Store
from escrowkit.ledger import keys as ledger_keys
from escrowkit.ledger import outbox as ledger_outbox
from escrowkit.ledger import statements as st

#: Tables that grow with the ledger: with every spend, or (counters) with every agent and
#: day. The state row and the agents may be scanned at no cost worth a rule.
GROWING = (
    "reservations",
    "idempotency_keys",
    "audit_log",
    "events",
    "approvals",
    "counters",
    "api_keys",
)

#: The module-level statements of the ledger's hot paths: decisions (statements), the
#: service's key check (keys) and the event stream (outbox).
STATEMENTS = {
    f"{module.__name__.rsplit('.', 1)[1]}.{name}": value
    for module in (st, ledger_keys, ledger_outbox)
    for name, value in vars(module).items()
    if name.lstrip("_").isupper() and isinstance(value, Select | Update | Delete)
}


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> sqlite3.Connection:
    path: Path = tmp_path_factory.mktemp("plans") / "ledger.db"
    Store(f"sqlite:///{path}").close()  # the schema as the store creates it
    conn = sqlite3.connect(path)
    conn.execute("ANALYZE")
    return conn


def _plan(conn: sqlite3.Connection, statement: Select | Update | Delete) -> list[str]:
    """SQLite's query plan of ``statement``, every unset bound value a placeholder (lists
    of two for the expanding ones)."""
    dialect = sqlite.dialect()
    bare = statement.compile(dialect=dialect)
    if not any(bind.expanding for bind in bare.binds.values()):
        sql = str(bare)
    else:  # lists are rendered as one placeholder per item, which needs every value set
        assert isinstance(statement, Select)
        values = {
            name: ["x", "y"] if bind.expanding else "x"
            for name, bind in bare.binds.items()
            if bind.value is None
        }
        rendered = statement.params(**values)
        sql = str(rendered.compile(dialect=dialect, compile_kwargs={"render_postcompile": True}))
    rows = conn.execute("EXPLAIN QUERY PLAN " + sql, ["x"] * sql.count("?")).fetchall()
    return [row[-1] for row in rows]


def test_the_hot_path_has_statements_to_check() -> None:
    names = {"PREFETCH_IDEMPOTENCY", "SELECT_IDEMPOTENCY", "PREFETCH_STATUS", "TRANSITION"}
    assert {f"statements.{name}" for name in names} <= set(STATEMENTS)
    assert "keys._BY_HASHES" in STATEMENTS
    assert any(name.startswith("outbox.") for name in STATEMENTS)


@pytest.mark.parametrize("name", sorted(STATEMENTS))
def test_no_statement_scans_a_growing_table(db: sqlite3.Connection, name: str) -> None:
    plan = _plan(db, STATEMENTS[name])
    scans = [step for step in plan if step.startswith("SCAN") and step.split()[1] in GROWING]
    assert not scans, f"{name} scans a growing table: {plan}"
    assert plan, name


def test_the_check_sees_a_scan(db: sqlite3.Connection) -> None:
    """The rule would catch the old prefetch: the key alone, without its agent."""
    from sqlalchemy import bindparam, select

    from escrowkit.ledger.schema import idempotency_table

    keys = idempotency_table.c
    old = select(keys.agent_id, keys.key).where(keys.key.in_(bindparam("b_keys", expanding=True)))
    plan = _plan(db, old)
    assert any(step.startswith("SCAN idempotency_keys") for step in plan), plan
