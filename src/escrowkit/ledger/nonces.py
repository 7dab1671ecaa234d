"""Nonces of a sending key shared by every process on one ledger.

:class:`LedgerNonces` is a nonce source (the protocol ``escrowkit.evm.nonces.NonceSource``,
met structurally: the ledger imports nothing of the chain layer). For each send it takes
the key's row of the ``nonces`` table under the database's lock (PostgreSQL ``SELECT ...
FOR UPDATE`` on that row; SQLite ``BEGIN IMMEDIATE``), hands the nonce to ``send`` while
it holds the lock, and advances the row only once ``send`` returned, that is once the node
accepted the transaction. So:

- processes sharing the key never send the same nonce, and never leave a gap;
- a process that dies before its send leaves the row as it was (its transaction aborts
  with its connection): no gap;
- a process that dies after its send, before its commit, leaves the row behind the node:
  the next sender's nonce is refused ("nonce too low", or an underpriced replacement of
  the dead process's pending transaction), and the source asks the node for the key's
  pending count and sends again. A send the node already holds (the same hash) counts as
  sent, never as a conflict (the transport checks that).

The node is asked for the key's pending count (and its answer is used) when the row is
missing, at a process's first send with the key, when the row was last advanced more than
``stale_after`` seconds ago (the key was idle: a transaction sent with it elsewhere is
counted, one the node dropped is not left as a gap), after :meth:`resync`, and after a
conflict. Under the row's lock nobody else is sending with the key, so the node's count
is exact then; the row is trusted otherwise, which saves a round trip per send and keeps
working behind a load balancer whose nodes lag a little. A nonce row's commit needs no
durability (a lost advance heals like a crash after send), so PostgreSQL commits it
without waiting for the disk.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, TypeVar

from sqlalchemy import and_, insert, select, text, update

from escrowkit.core.errors import NonceConflict
from escrowkit.ledger.schema import nonces_table

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from escrowkit.ledger.engine import Store

__all__ = ["LedgerNonces"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

N = nonces_table.c
#: How often one send is tried again after the node refused its nonce.
RETRIES = 4


class LedgerNonces:
    """A sending key's nonces in the ledger's ``nonces`` table (see the module)."""

    def __init__(
        self,
        store: Store,
        chain_id: int,
        *,
        stale_after: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if store.dialect == "sqlite" and store.url in ("sqlite://", "sqlite:///:memory:"):
            raise ValueError("an in-memory ledger is one process's: it cannot share nonces")
        self.store = store
        self.chain_id = int(chain_id)
        self.stale_after = stale_after
        self.clock = clock
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        # A sender whose generation is not the current one asks the node next time
        # (every sender at its first send in this process, and after resync()).
        self._generation = 0
        self._seen: dict[str, int] = {}

    def __repr__(self) -> str:
        return f"LedgerNonces({self.store!r}, chain {self.chain_id})"

    def send(self, sender: str, send: Callable[[int], T], pending: Callable[[], int]) -> T:
        """``send(nonce)`` with ``sender``'s next nonce under its row's lock; the row is
        advanced once ``send`` returned (see the module)."""
        with self._lock(sender), self._row(sender) as conn:
            nonce = self._next(conn, sender, pending)
            for attempt in range(RETRIES + 1):
                try:
                    result = send(nonce)
                except NonceConflict:
                    if attempt == RETRIES:
                        raise
                    refused, nonce = nonce, pending()
                    if nonce == refused:
                        nonce += 1
                    logger.info("nonce %d of %s was taken; sending with %d", refused, sender, nonce)
                    continue
                # Anything else raised: the transaction rolls back, the row stays.
                conn.execute(
                    update(nonces_table)
                    .where(and_(N.chain_id == self.chain_id, N.sender == sender))
                    .values(next_nonce=nonce + 1, updated_at=self.clock())
                )
                return result
        raise AssertionError("unreachable")  # pragma: no cover

    def resync(self, sender: str | None = None) -> None:
        """The next send of ``sender`` (or of every sender) takes the node's count."""
        with self._guard:
            if sender is None:
                self._generation += 1
            else:
                self._seen.pop(sender, None)

    # ---- internals -------------------------------------------------------------------

    def _lock(self, sender: str) -> threading.Lock:
        # This process's threads queue here, not on the database's lock.
        with self._guard:
            return self._locks.setdefault(sender, threading.Lock())

    @contextlib.contextmanager
    def _row(self, sender: str) -> Iterator[Connection]:
        """A transaction holding ``sender``'s row lock (the row made if missing); it
        commits when the block ends, and rolls back when it raises."""
        store = self.store
        if store.dialect == "sqlite":
            # SQLite locks the whole database: the store's own write transaction.
            with store.write(lock_row=False) as ledger:
                self._ensure(ledger.conn, sender)
                yield ledger.conn
            return
        with store.engine.connect() as conn, conn.begin():
            # The advance needs no durability: a lost one heals like a crash after send.
            conn.execute(text("SET LOCAL synchronous_commit TO OFF"))
            self._ensure(conn, sender)
            yield conn

    def _ensure(self, conn: Connection, sender: str) -> None:
        where = and_(N.chain_id == self.chain_id, N.sender == sender)
        found = conn.execute(select(N.next_nonce).where(where).with_for_update()).first()
        if found is not None:
            return
        row = {"chain_id": self.chain_id, "sender": sender, "next_nonce": -1, "updated_at": 0.0}
        if self.store.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            conn.execute(pg_insert(nonces_table).values(**row).on_conflict_do_nothing())
            conn.execute(select(N.next_nonce).where(where).with_for_update())
        else:
            conn.execute(insert(nonces_table).values(**row))

    def _next(self, conn: Connection, sender: str, pending: Callable[[], int]) -> int:
        """The row's nonce, or the node's count where the row cannot be trusted."""
        row = conn.execute(
            select(N.next_nonce, N.updated_at).where(
                and_(N.chain_id == self.chain_id, N.sender == sender)
            )
        ).one()
        with self._guard:
            resync = self._seen.get(sender) != self._generation
            self._seen[sender] = self._generation
        stored, updated = int(row.next_nonce), float(row.updated_at)
        if stored >= 0 and not resync and self.clock() - updated <= self.stale_after:
            return stored
        nonce = pending()
        if stored >= 0 and nonce != stored:
            logger.info(
                "nonce row of %s said %d, the node %d: using the node's", sender, stored, nonce
            )
        return nonce
