"""Nonces per sender, handed out in order across threads."""

from __future__ import annotations

import threading
from collections.abc import Callable

__all__ = ["NonceManager"]


class NonceManager:
    """Hands out nonces per sender, safe across threads.

    The caller holds :meth:`lock` for a sender from taking a nonce until the node has
    accepted the transaction, so nonces reach the node in order and without gaps; a failed
    send calls :meth:`resync`, and the next nonce is read from the node again.
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

    def resync(self, sender: str | None = None) -> None:
        """Forget what we know (one sender, or all after a snapshot revert)."""
        with self._guard:
            if sender is None:
                self._next.clear()
            else:
                self._next.pop(sender, None)
