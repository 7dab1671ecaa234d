"""Nonces per sender: who hands them out (a :class:`NonceSource`) and the default one, in
this process (:class:`NonceManager`).

A nonce source allocates a sender's next nonce, gives it to a ``send(nonce)`` callable that
signs the transaction and hands it to the node, and counts the nonce as used only once the
node has accepted it. Concurrent senders therefore reach the node in order and without
gaps, and a transaction that was never accepted leaves none. ``send`` raises
:class:`~escrowkit.errors.NonceConflict` when the node says the nonce is taken (or beyond a
gap): the source then asks the node for the sender's pending count and sends again.

Several processes sharing one key need a source they share too: the ledger offers one
(``escrowkit.ledger.nonces.LedgerNonces``, a row per sender taken under the database's
lock), which a chain uses for one sender through :meth:`Chain.use_nonce_source
<escrowkit.evm.chain.Chain.use_nonce_source>`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Protocol, TypeVar

from escrowkit.core.errors import ContractRevert, NonceConflict

__all__ = ["MAX_NONCE_RETRIES", "NonceManager", "NonceSource", "retry_nonce"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: How often a send is tried again after the node refused its nonce.
MAX_NONCE_RETRIES = 4


class NonceSource(Protocol):
    """Allocates nonces for senders (see the module)."""

    def send(self, sender: str, send: Callable[[int], T], pending: Callable[[], int]) -> T:
        """Call ``send`` with ``sender``'s next nonce and return what it returns; the nonce
        counts as used once it returned. ``pending()`` is the node's pending transaction
        count of ``sender`` (for a sender seen for the first time, and after a conflict)."""
        ...

    def resync(self, sender: str | None = None) -> None:
        """Forget what is known of one sender's (or every sender's) next nonce: the next
        send asks the node (after a snapshot revert, for example)."""
        ...


def retry_nonce(refused: int, pending: Callable[[], int]) -> int:
    """The nonce to try after the node refused ``refused``: its pending count, which holds
    whatever took ``refused`` (or, for a nonce beyond a gap, where the gap starts)."""
    nonce = pending()
    return nonce + 1 if nonce == refused else nonce


class NonceManager:
    """Hands out nonces per sender in this process, safe across threads.

    The lock of a sender is held from taking a nonce until the node has accepted the
    transaction (not until it is mined), so one sender's transactions reach the node in
    order and many of them can wait in one block. A send that failed in an unknown way
    (the node may or may not have taken it) makes the next one ask the node again.
    """

    def __init__(self, fetch: Callable[[str], int]) -> None:
        self._fetch = fetch
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._next: dict[str, int] = {}

    def lock(self, sender: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(sender, threading.Lock())

    def take(self, sender: str) -> int:
        """The next nonce for ``sender``; call with ``lock(sender)`` held."""
        if sender not in self._next:
            self._next[sender] = self._fetch(sender)
        nonce = self._next[sender]
        self._next[sender] = nonce + 1
        return nonce

    def send(self, sender: str, send: Callable[[int], T], pending: Callable[[], int]) -> T:
        with self.lock(sender):
            nonce = self._next.get(sender)
            if nonce is None:
                nonce = pending()
            for attempt in range(MAX_NONCE_RETRIES + 1):
                try:
                    result = send(nonce)
                except NonceConflict:
                    if attempt == MAX_NONCE_RETRIES:
                        self._next.pop(sender, None)
                        raise
                    refused, nonce = nonce, retry_nonce(nonce, pending)
                    logger.info("nonce %d of %s was taken; sending with %d", refused, sender, nonce)
                    continue
                except ContractRevert as exc:
                    # Rejected before the node accepted anything: the nonce is still free.
                    self._next[sender] = nonce
                    if exc.tx_hash is not None:
                        self._next.pop(sender, None)
                    raise
                except BaseException:
                    # The node may or may not have taken it: ask it again next time.
                    self._next.pop(sender, None)
                    raise
                self._next[sender] = nonce + 1
                return result
        raise AssertionError("unreachable")  # pragma: no cover

    def resync(self, sender: str | None = None) -> None:
        """Forget what we know (one sender, or all after a snapshot revert)."""
        with self._guard:
            if sender is None:
                self._next.clear()
            else:
                self._next.pop(sender, None)
