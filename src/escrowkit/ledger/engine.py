"""The ledger's database: SQLite by default, PostgreSQL by URL (:class:`Store`).

Serialization: :meth:`Store.write` takes a thread lock, then the database's own write
lock, so processes sharing a database serialize too: SQLite ``BEGIN IMMEDIATE`` (pysqlite's
own transaction handling is switched off so that we can issue it, see SQLAlchemy's
"Serializable isolation / Savepoints / Transactional DDL"), PostgreSQL
``SELECT ... FOR UPDATE`` on the single ``treasury_state`` row.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal, TypeVar

from sqlalchemy import create_engine, event, insert, select, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.pool import StaticPool

from escrowkit.core.errors import ConfigurationError
from escrowkit.ledger import statements as st
from escrowkit.ledger.group import GroupCommit
from escrowkit.ledger.ledger import Ledger
from escrowkit.ledger.migrate import prepare
from escrowkit.ledger.schema import SCHEMA_VERSION, counters_table, state_table
from escrowkit.ledger.unit import CounterCache

__all__ = ["Store", "normalize_url"]

T = TypeVar("T")


def normalize_url(url: str) -> str:
    """``postgres://`` and ``postgresql://`` URLs through psycopg 3."""
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
        self._counter_cache = CounterCache()
        self.group = GroupCommit(self.write, self._lock)
        self.url = normalize_url(url) if url is not None else "sqlite://"
        parsed = make_url(self.url)
        self.dialect = parsed.get_backend_name()
        self.engine: Engine
        # SQLite files: the writes' one connection (see _writer_connection). Not for the
        # in-memory database (its one connection is shared already) nor PostgreSQL (a
        # connection kept open would miss the pool's check that the server is alive).
        self._keep_writer = False
        self._writer: Connection | None = None
        # Only a private in-memory database (one connection) needs the lock to read.
        self._read_lock: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
        if self.dialect == "sqlite":
            memory = parsed.database in (None, "", ":memory:")
            if memory:
                self._read_lock = self._lock
            kwargs: dict[str, Any] = {
                "connect_args": {"timeout": timeout, "check_same_thread": False},
                "echo": echo,
            }
            if memory:
                # One connection for every thread, or each thread would see its own
                # empty database; the store's lock keeps them from interleaving.
                kwargs["poolclass"] = StaticPool
            else:
                # Readers take their own connections (see read): let many at once.
                kwargs["max_overflow"] = 60
                self._keep_writer = True
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
        if write and self._keep_writer:
            yield from self._begun(self._writer_connection(), write=True)
            return
        with self.engine.connect() as conn:
            yield from self._begun(conn, write=write)

    def _writer_connection(self) -> Connection:
        """The connection that a SQLite file's writes keep (called holding the lock):
        checking one out of the pool and back in for every group was about a twentieth
        of a decision's cost. A connection that failed is replaced."""
        conn = self._writer
        if conn is None or conn.closed or conn.invalidated:
            if conn is not None:
                conn.close()
            conn = self._writer = self.engine.connect()
        return conn

    def _begun(self, conn: Connection, *, write: bool) -> Iterator[Connection]:
        """One transaction on ``conn``: begun, then committed, or rolled back on error
        (a BEGIN that timed out too: a kept connection must not stay in a transaction)."""
        try:
            if self.dialect == "sqlite":
                # SQLAlchemy's own BEGIN is a no-op for pysqlite; this is the real one.
                conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
            elif not write:
                # A read adds up several queries (report): one snapshot for all of them,
                # as SQLite's read transaction is. (Writes need no snapshot: the row lock
                # serializes them and each statement sees every earlier commit.)
                conn.execution_options(isolation_level="REPEATABLE READ")
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
            prepare(conn, repr(self))
            state = conn.execute(select(st.S.id).where(st.S.id == 1)).first()
            if state is None:
                conn.execute(
                    insert(state_table).values(
                        id=1,
                        frozen=False,
                        freeze_reason=None,
                        config_version=0,
                        usage_seq=0,
                        updated_at=0.0,
                    )
                )
                # The root scope: the total budget (set by the coordinator) and its usage.
                conn.execute(
                    insert(counters_table).values(
                        kind="scope", name="", period="", budget=0, used=0
                    )
                )
            if ledger.meta().get("schema_version") is None:
                ledger.set_meta("schema_version", SCHEMA_VERSION)

    @contextlib.contextmanager
    def write(self, *, lock_row: bool = True) -> Iterator[Ledger]:
        """A write transaction holding the thread lock and the database's write lock."""
        with self._lock:
            try:
                with self._transaction(write=True) as conn:
                    if lock_row and self.dialect == "postgresql":
                        conn.execute(st.LOCK_STATE)
                    ledger = Ledger(conn, self._counter_cache)
                    yield ledger
                    ledger.flush()
            except BaseException:
                self._counter_cache.clear()  # it may hold values that were rolled back
                raise
            ledger.keep(self._counter_cache)

    def run(
        self,
        fn: Callable[[Ledger], T],
        *,
        keys: Sequence[tuple[str, str]] = (),
        reservation_ids: Sequence[str] = (),
    ) -> T:
        """Run ``fn(ledger)`` in a write transaction shared with other threads' calls
        (group commit: see :meth:`GroupCommit.run`)."""
        return self.group.run(fn, keys=keys, reservation_ids=reservation_ids)

    async def arun(
        self,
        fn: Callable[[Ledger], T],
        *,
        keys: Sequence[tuple[str, str]] = (),
        reservation_ids: Sequence[str] = (),
    ) -> T:
        """:meth:`run` from a coroutine, which holds no thread while it waits for its
        group (see :meth:`GroupCommit.arun`)."""
        return await self.group.arun(fn, keys=keys, reservation_ids=reservation_ids)

    @contextlib.contextmanager
    def read(self) -> Iterator[Ledger]:
        """A read transaction: one consistent snapshot (PostgreSQL: REPEATABLE READ).

        It does not wait for the writers: on a file (WAL) or PostgreSQL a reader has its
        own connection and sees the last commit, while a commit group writes and syncs."""
        with self._read_lock, self._transaction(write=False) as conn:
            yield Ledger(conn)

    def close(self) -> None:
        self.group.close()
        with self._lock:
            writer, self._writer = self._writer, None
            if writer is not None:
                writer.close()
        self.engine.dispose()
