"""The ledger's tables (SQLAlchemy Core), and the exact amount type they store.

Amounts are exact: ``NUMERIC(78, 0)`` on PostgreSQL and a decimal string on SQLite (whose
NUMERIC affinity would turn integers above 2**63 into floats); Python sees ``int``. The
audit log is append-only in the database itself (triggers), not just by convention.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

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
    event,
    text,
)
from sqlalchemy.types import TypeEngine

from escrowkit.budget.scopes import MAX_SCOPE_LENGTH

__all__ = [
    "HEAD_REVISION",
    "REVISIONS",
    "SCHEMA_VERSION",
    "Amount",
    "agents_table",
    "alerts_table",
    "api_keys_table",
    "approvals_table",
    "audit_table",
    "counters_table",
    "events_table",
    "idempotency_table",
    "meta_table",
    "metadata",
    "nonces_table",
    "reservations_table",
    "state_table",
    "webhook_cursors_table",
]

SCHEMA_VERSION = "3"
#: Every migration revision this code knows, oldest first; the last is the schema above.
#: A ledger whose revision is not here was made by a newer escrowkit and is refused.
REVISIONS = ("0001", "0002", "0003", "0004", "0005")
HEAD_REVISION = REVISIONS[-1]


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
_Scope = String(MAX_SCOPE_LENGTH)

meta_table = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

state_table = Table(
    "treasury_state",
    metadata,
    # The lock row. The total budget and its usage are the root scope's counter.
    Column("id", Integer, primary_key=True, autoincrement=False),
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
    # Where the agent sits ('' the root; a spawned child: its parent's path).
    Column("scope", _Scope, nullable=False, server_default=""),
    # Set by remove_agent (the agent and its descendants are denied); NULL: enabled.
    Column("removed_at", Float),
)

counters_table = Table(
    "counters",
    metadata,
    # Every usage counter and lifetime budget, one mechanism (so no check ever sums
    # history): kind 'scope' (name a scope path; '' the root: the total budget), kind
    # 'category' (name the category) and kind 'day' (name an agent id, period its
    # calendar day in the coordinator's zone; the daily limit is the agent's).
    Column("kind", String(8), primary_key=True),
    Column("name", _Scope, primary_key=True),
    Column("period", String(10), primary_key=True),  # '' for lifetime counters
    Column("budget", Amount),  # NULL: counted, not capped
    Column("used", Amount, nullable=False),
    # Rows kept in key order (SQLite): a decision's counters (the agent's day, its path
    # and the path's prefixes) sit side by side on few pages, found without an index.
    sqlite_with_rowid=False,
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
    # The key that sends for this row (recovery asks whether that key is idle), and the
    # agent address its escrow id was derived from (recovery fences that id). NULL in
    # rows written before schema revision 0002.
    Column("sender", _Address),
    Column("agent_address", _Address),
    # The agent's path and the request's workflow when reserved: the scopes it charged
    # (budget.scopes.charged_scopes), credited back from the same two values.
    Column("scope", _Scope, nullable=False, server_default=""),
    Column("workflow", String(128)),
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
    Column("result", Text),  # JSON SpendResult of the approval (replayed when approved again)
    Column("workflow", String(128)),
    Index("ix_approvals_status", "status"),
)

idempotency_table = Table(
    "idempotency_keys",
    metadata,
    # Keys are scoped per agent: two agents may use the same key string. ('' marks a key
    # of a ledger from before revision 0002 whose agent could not be told.)
    Column("agent_id", String(128), primary_key=True),
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

nonces_table = Table(
    "nonces",
    metadata,
    # The next nonce of a sending key, shared by every process on the ledger: taken under
    # this row's lock and advanced only once the node has accepted the transaction.
    Column("chain_id", BigInteger, primary_key=True, autoincrement=False),
    Column("sender", _Address, primary_key=True),
    Column("next_nonce", BigInteger, nullable=False),
    Column("updated_at", Float, nullable=False),
)

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


# ---- the service's tables (revision 0004): API keys, the event outbox, webhook cursors ----

api_keys_table = Table(
    "api_keys",
    metadata,
    Column("id", _Id, primary_key=True),  # the public id (``key_…``), shown and revoked by
    Column("hash", String(64), nullable=False),  # SHA-256 hex of the key: never the key
    Column("role", String(16), nullable=False),  # agent, approver, admin
    Column("agent_id", String(128)),  # an agent key's agent
    Column("name", Text),
    Column("created_at", Float, nullable=False),
    Column("revoked_at", Float),
    Index("ix_api_keys_hash", "hash", unique=True),
)

events_table = Table(
    "events",
    metadata,
    # One sequence for every process on the ledger: written under the write lock, so ids
    # become visible in order and "after id N" never skips one. Never reused (SQLite
    # AUTOINCREMENT): a client resuming from an id must not miss an event that took it.
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("at", Float, nullable=False),
    Column("type", String(16), nullable=False),  # decision, approval, alert, escrow
    Column("agent_id", String(128)),
    Column("data", Text, nullable=False),  # JSON
    Index("ix_events_agent", "agent_id", "id"),
    sqlite_autoincrement=True,
)

webhook_cursors_table = Table(
    "webhook_cursors",
    metadata,
    # SHA-256 of the endpoint's URL (a Slack or Discord webhook URL is itself a secret).
    Column("endpoint", String(64), primary_key=True),
    Column("delivered_through", BigInteger, nullable=False),  # last event id answered 2xx
    Column("attempts", Integer, nullable=False),  # failed tries of the next event
    Column("next_attempt_at", Float, nullable=False),
    # The process delivering now; another takes over once the lease has run out.
    Column("lease_owner", String(64)),
    Column("lease_until", Float, nullable=False),
    Column("last_error", Text),
    Column("updated_at", Float, nullable=False),
)
