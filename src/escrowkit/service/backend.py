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
"""

from __future__ import annotations

import asyncio
import functools
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
        return await self.call(self.coordinator.api_keys.authenticate, secret)

    def close(self, *, wait: bool = True) -> None:
        """Let the worker threads go (calls in progress finish first; ``wait=False``
        returns at once, for the loop that adopted the pool: a worker cannot join
        itself)."""
        self.pool.shutdown(wait=wait)
