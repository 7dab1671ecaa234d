"""The service's one way to the coordinator, from the event loop.

The coordinator's calls block (the ledger's lock, the chain's receipts), so they run in a
bounded pool of worker threads and the event loop never waits on them. A spend uses
``BudgetCoordinator.arequest_spending`` when the coordinator has it (many spends in
flight, no thread held while a receipt is awaited); otherwise ``request_spending`` in
the pool, where at most ``threads`` spends (and reads) run at once and the rest wait
their turn.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import anyio.to_thread

if TYPE_CHECKING:
    from escrowkit.coordinator import ApiKey, BudgetCoordinator, SpendRequest, SpendResult

__all__ = ["Backend"]

T = TypeVar("T")


class Backend:
    """A coordinator, called from async code."""

    def __init__(self, coordinator: BudgetCoordinator, *, threads: int = 64) -> None:
        self.coordinator = coordinator
        self.threads = threads
        self._limiter: anyio.CapacityLimiter | None = None

    @property
    def limiter(self) -> anyio.CapacityLimiter:
        # Made on first use, inside the event loop that uses it.
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self.threads)
        return self._limiter

    @property
    def has_async_spend(self) -> bool:
        """Whether spends go through ``arequest_spending`` (no thread per spend)."""
        return callable(getattr(self.coordinator, "arequest_spending", None))

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` in a worker thread."""
        call = functools.partial(fn, *args, **kwargs)
        return await anyio.to_thread.run_sync(call, limiter=self.limiter)

    async def spend(self, request: SpendRequest) -> SpendResult:
        if self.has_async_spend:
            result: SpendResult = await self.coordinator.arequest_spending(request)  # type: ignore[attr-defined]
            return result
        return await self.call(self.coordinator.request_spending, request)

    async def authenticate(self, secret: str) -> ApiKey | None:
        return await self.call(self.coordinator.api_keys.authenticate, secret)
