"""Group commit: threads queue their writes, and one runs all that are queued, in order,
in one transaction (one ``BEGIN IMMEDIATE``, one fsync), buffering inserts and counter
updates into one statement per table (see :class:`~escrowkit.ledger.unit.UnitOfWork`).

Coroutines queue theirs too (:meth:`GroupCommit.arun`) without holding a thread while
they wait: the store's one leader thread runs a group for them when none is running, and
each coroutine is woken on its loop when its call is done."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Generic, TypeVar

from escrowkit.core.errors import EscrowKitError
from escrowkit.ledger.ledger import Ledger

__all__ = ["GroupCommit"]

logger = logging.getLogger(__name__)

T = TypeVar("T")


class _Op(Generic[T]):
    """One call waiting in :meth:`Store.run`'s queue."""

    __slots__ = (
        "done",
        "error",
        "fn",
        "future",
        "keys",
        "loop",
        "reservation_ids",
        "result",
        "wake",
    )

    def __init__(
        self,
        fn: Callable[[Ledger], T],
        keys: Sequence[tuple[str, str]],
        reservation_ids: Sequence[str],
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.fn = fn
        self.keys = keys
        self.reservation_ids = reservation_ids
        # A thread's call: held until the call is done or its thread must lead (a bare
        # lock is the cheapest wake-up; an Event builds a Condition and a lock per wait).
        # A coroutine's call: a future on its loop, and no thread until one must lead.
        self.loop = loop
        self.wake = threading.Lock()
        self.future: asyncio.Future[T] | None = None
        if loop is None:
            self.wake.acquire()
        else:
            self.future = loop.create_future()
        self.done = False
        self.result: T | None = None
        self.error: BaseException | None = None

    def resume(self) -> None:
        """Wake the caller: release its thread, or settle its future on its loop."""
        if self.loop is None:
            self.wake.release()
            return
        with contextlib.suppress(RuntimeError):  # its loop is closed: nobody to wake
            self.loop.call_soon_threadsafe(self._settle)

    def _settle(self) -> None:
        future = self.future
        if future is None or future.done():  # the coroutine was cancelled meanwhile
            return
        if self.error is not None:
            future.set_exception(self.error)
        else:
            future.set_result(self.result)  # type: ignore[arg-type]


class GroupCommit:
    """The queue of one store. ``write`` opens the store's write transaction; ``lock`` is
    the store's thread lock, held while a group runs."""

    def __init__(
        self,
        write: Callable[[], contextlib.AbstractContextManager[Ledger]],
        lock: threading.RLock,
    ) -> None:
        self._write = write
        self._lock = lock
        self._turn = threading.Lock()
        self._leading = False
        self._queue: list[_Op[Any]] = []
        self._leader: ThreadPoolExecutor | None = None  # leads for coroutines (arun)

    @property
    def busy(self) -> bool:
        """Whether a thread is running a group now."""
        return self._leading

    @property
    def queued(self) -> int:
        """How many calls wait for the next group."""
        return len(self._queue)

    def run(
        self,
        fn: Callable[[Ledger], T],
        *,
        keys: Sequence[tuple[str, str]] = (),
        reservation_ids: Sequence[str] = (),
    ) -> T:
        """Run ``fn(ledger)`` in a write transaction shared with other threads' calls.

        Group commit: calls waiting for the lock queue up, and whichever thread gets it
        runs every queued call, in order, in one transaction, so one ``BEGIN IMMEDIATE``
        and one commit serve them all. Each call still sees everything the earlier ones
        wrote: the serial order is exactly the queue's.

        ``fn`` may raise an :class:`EscrowKitError` only before it writes (it is handed
        back to its caller and the others go on). Any other exception rolls the batch
        back, and each call is then run again alone, so only the faulty one fails.

        ``keys`` and ``reservation_ids`` name the (agent, idempotency key) pairs ``fn`` will
        look up and
        the reservations it will move: a group reads them all in one query each
        (:meth:`Ledger.prefetch`). They are hints; ``fn`` is right without them.
        """
        op: _Op[T] = _Op(fn, keys, reservation_ids)
        if not self._enqueue(op):
            # Another thread is running a group: it runs ours next, or hands us the lead.
            op.wake.acquire()
        if not op.done:
            self._lead(op)
        if op.error is not None:
            raise op.error
        return op.result  # type: ignore[return-value]

    async def arun(
        self,
        fn: Callable[[Ledger], T],
        *,
        keys: Sequence[tuple[str, str]] = (),
        reservation_ids: Sequence[str] = (),
    ) -> T:
        """:meth:`run` for a coroutine: the call joins the same queue; when no group is
        running, the store's leader thread leads one. Cancelling the coroutine does not
        take the call back (as with a thread, it may already be written)."""
        loop = asyncio.get_running_loop()
        op: _Op[T] = _Op(fn, keys, reservation_ids, loop)
        if self._enqueue(op):
            self._hand_lead(op)
        assert op.future is not None
        return await op.future

    def _enqueue(self, op: _Op[Any]) -> bool:
        """Queue ``op``; whether its caller must lead (no group is running)."""
        with self._turn:
            self._queue.append(op)
            leading = not self._leading
            self._leading = True
        return leading

    def _lead(self, own: _Op[Any]) -> None:
        """Run everything queued as one group, then wake its callers; while calls queued
        meanwhile, pass the lead on (see :meth:`_next_leader`)."""
        while True:
            nxt = self._lead_once(own)
            if nxt is None:
                return
            own = nxt

    def _lead_once(self, own: _Op[Any]) -> _Op[Any] | None:
        with self._turn:
            batch, self._queue = self._queue, []
        try:
            with self._lock:
                self._run_batch(batch, own)
        except BaseException as exc:
            if own.loop is not None and not own.done:  # nobody else would hear of it
                own.error, own.done = exc, True
            raise
        finally:
            with self._turn:
                for op in batch:
                    if op.done and (op is not own or op.loop is not None):
                        op.resume()
                nxt = self._next_leader(own)
        return nxt

    def _next_leader(self, own: _Op[Any]) -> _Op[Any] | None:
        """Who leads the calls queued meanwhile (called holding ``_turn``): a queued
        thread's call (its thread takes the whole queue; only its own thread may lead it);
        else, with only coroutines' calls queued, this thread goes on when it is the
        store's leader thread (the returned call), or hands them to that thread."""
        if not self._queue:
            self._leading = False
            return None
        waiting = next((op for op in self._queue if op.loop is None), None)
        if waiting is not None:
            waiting.wake.release()
            return None
        head = self._queue[0]
        if own.loop is not None:
            return head
        self._hand_lead(head)
        return None

    def _hand_lead(self, head: _Op[Any]) -> None:
        """The store's leader thread leads the next group, from a coroutine's call. Its
        own thread, not the loop's executor: the handing over never waits for a loop to
        run (one that stopped would leave the queue without a leader)."""
        if self._leader is None:
            self._leader = ThreadPoolExecutor(1, thread_name_prefix="escrowkit-ledger")
        self._leader.submit(self._lead, head)

    def close(self) -> None:
        """Let the leader thread go once it is idle."""
        leader, self._leader = self._leader, None
        if leader is not None:
            leader.shutdown(wait=False)

    def _run_batch(self, batch: list[_Op[Any]], own: _Op[Any]) -> None:
        """One transaction for ``batch``; if it fails unexpectedly, each call alone."""
        try:
            self._run_group(batch)
        except Exception as exc:
            if len(batch) == 1:
                batch[0].error, batch[0].done = exc, True
                return
            logger.warning("a grouped write failed (%s); running each call alone", exc)
            for index, op in enumerate(batch):
                try:
                    self._run_batch([op], own)
                except BaseException:
                    self._requeue(batch[index:], own)
                    raise
        except BaseException:
            self._requeue(batch, own)
            raise

    def _run_group(self, batch: list[_Op[Any]]) -> None:
        for op in batch:
            op.result, op.error = None, None
        with self._write() as ledger:
            if len(batch) > 1:  # alone, a call's own queries cost the same or less
                ledger.prefetch(
                    [key for op in batch for key in op.keys],
                    [rid for op in batch for rid in op.reservation_ids],
                )
            for op in batch:
                try:
                    op.result = op.fn(ledger)
                except EscrowKitError as exc:
                    op.error = exc
        for op in batch:
            op.done = True

    def _requeue(self, ops: list[_Op[Any]], own: _Op[Any]) -> None:
        """After a KeyboardInterrupt (or the like) in this thread: its own call ends with
        it; the others go back to the head of the queue for the next leader."""
        with self._turn:
            self._queue[:0] = [op for op in ops if op is not own and not op.done]
