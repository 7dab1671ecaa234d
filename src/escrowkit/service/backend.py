"""The service's one way to the coordinator, from the event loop.

The coordinator's calls block (the ledger's lock, the chain's receipts), so they run in a
bounded pool of worker threads and the event loop never waits on them. A spend uses
``BudgetCoordinator.arequest_spending`` when the coordinator has it (many spends in
flight, no thread held while a receipt is awaited); otherwise ``request_spending`` in
the pool, where at most ``threads`` spends (and reads) run at once and the rest wait
their turn. The service's loop takes the pool as its default executor (:meth:`adopt`),
for the blocking work ``arequest_spending`` still hands to it (an executor's ``fund``
without ``afund``, the resolution of a failed funding, alert callbacks); its ledger
steps hold no thread while they wait (``Store.arun``).

Key checks come with every request, so the checks of concurrent requests share one read
of the ledger (:meth:`Backend.authenticate`): while one read runs in the pool, the keys
that arrive wait and go together in the next. Each request's key is still read after
the request came, so a revoked key fails at once.
"""

from __future__ import annotations

import asyncio
import functools
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from escrowkit.coordinator import ApiKey, BudgetCoordinator, SpendRequest, SpendResult

__all__ = ["Backend"]

T = TypeVar("T")


class Backend:
    """A coordinator, called from async code."""

    def __init__(
        self,
        coordinator: BudgetCoordinator,
        *,
        threads: int = 64,
        on_decision: Callable[[SpendResult], None] | None = None,
    ) -> None:
        self.coordinator = coordinator
        self.threads = threads
        self.on_decision = on_decision
        # Its own pool (not the event loop's default one, nor anyio's): the coordinator's
        # calls never queue behind other blocking work, and a hop costs less.
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="escrowkit-service")
        self._key_checks = _KeyChecks(self)

    @property
    def has_async_spend(self) -> bool:
        """Whether spends go through ``arequest_spending`` (no thread per spend)."""
        return callable(getattr(self.coordinator, "arequest_spending", None))

    def adopt(self, loop: asyncio.AbstractEventLoop) -> None:
        """Make the pool ``loop``'s default executor (see the module)."""
        loop.set_default_executor(self.pool)

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` in a worker thread."""
        loop = asyncio.get_running_loop()
        if kwargs:
            return await loop.run_in_executor(self.pool, functools.partial(fn, *args, **kwargs))
        return await loop.run_in_executor(self.pool, fn, *args)

    async def spend(self, request: SpendRequest) -> SpendResult:
        """The decision (``on_decision`` hears of each, for the metrics)."""
        result: SpendResult
        if self.has_async_spend:
            result = await self.coordinator.arequest_spending(request)
        else:
            result = await self.call(self.coordinator.request_spending, request)
        if self.on_decision is not None:
            self.on_decision(result)
        return result

    async def authenticate(self, secret: str) -> ApiKey | None:
        """The live key that ``secret`` is, or None (read with the concurrent checks: see
        the module)."""
        return await self._key_checks.check(secret)

    def close(self, *, wait: bool = True) -> None:
        """Let the worker threads go (calls in progress finish first; ``wait=False``
        returns at once, for the loop that adopted the pool: a worker cannot join
        itself)."""
        self.pool.shutdown(wait=wait)


class _KeyChecks:
    """Key checks batched per event loop: a check waits for its loop's read in progress
    (if any) to end, then goes with every check that arrived meanwhile in one
    ``ApiKeys.authenticate_many`` in the backend's pool."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        # Per loop (tests run an app on several); each is touched by its loop's thread.
        self._batches: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Batch] = (
            weakref.WeakKeyDictionary()
        )

    async def check(self, secret: str) -> ApiKey | None:
        loop = asyncio.get_running_loop()
        batch = self._batches.get(loop)
        if batch is None:
            batch = self._batches.setdefault(loop, _Batch())
        found: asyncio.Future[ApiKey | None] = loop.create_future()
        batch.waiting.append((secret, found))
        if batch.reader is None:
            batch.reader = loop.create_task(self._read(batch), name="escrowkit-key-checks")
        return await found

    async def _read(self, batch: _Batch) -> None:
        try:
            while batch.waiting:
                checks, batch.waiting = batch.waiting, []
                try:
                    keys = await self.backend.call(
                        self.backend.coordinator.api_keys.authenticate_many,
                        [secret for secret, _ in checks],
                    )
                except Exception as exc:  # the ledger failed: each check of these fails
                    for _, found in checks:
                        if not found.done():
                            found.set_exception(exc)
                    continue
                except BaseException:  # cancelled (the loop ends): so are the checks
                    for _, found in checks + batch.waiting:
                        found.cancel()
                    batch.waiting = []
                    raise
                for (_, found), key in zip(checks, keys, strict=True):
                    if not found.done():  # its request may have gone (a disconnect)
                        found.set_result(key)
        finally:
            batch.reader = None


class _Batch:
    """One loop's key checks: those waiting for the next read, and the task reading."""

    __slots__ = ("reader", "waiting")

    def __init__(self) -> None:
        self.waiting: list[tuple[str, asyncio.Future[ApiKey | None]]] = []
        self.reader: asyncio.Task[None] | None = None
