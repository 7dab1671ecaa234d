"""One code path for blocking callers and asyncio callers.

escrowkit writes each operation that waits on the chain once, as a coroutine, and offers it
twice: ``await x.aname(...)`` on an event loop, and ``x.name(...)``, which is
:func:`run_sync` of the same coroutine. The coroutine reaches the outside world only
through two helpers that know which of the two is driving it:

- :func:`offload` runs blocking work (a JSON-RPC round trip, a ledger transaction): inline
  under :func:`run_sync`; in the event loop's default thread pool under asyncio, so the loop
  keeps serving other coroutines;
- :func:`wait_for` waits for a ``concurrent.futures.Future`` that another thread resolves
  (a receipt from the chain's receipt watcher): the blocking caller's thread sleeps on it;
  a coroutine waits without holding any thread.

Where a coroutine hands over to another object's operation it goes through :func:`either`:
the object's blocking method when blocking (so that whatever a caller or a test wrapped
around that method applies, as it always did), its coroutine otherwise.

A coroutine that never waits (the embedded chain mines as it sends) is run by
:func:`run_sync` in a few microseconds, without an event loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import functools
from collections.abc import Awaitable, Callable, Coroutine, Generator
from typing import Any, TypeVar

__all__ = ["blocking", "either", "offload", "run_sync", "wait_for"]

T = TypeVar("T")

#: True while :func:`run_sync` drives the current coroutine.
_blocking: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "escrowkit_blocking", default=False
)


class _Wait:
    """What a coroutine driven by :func:`run_sync` yields: a future to sleep on."""

    __slots__ = ("future", "timeout")

    def __init__(self, future: concurrent.futures.Future[Any], timeout: float | None) -> None:
        self.future = future
        self.timeout = timeout

    def __await__(self) -> Generator[_Wait, None, None]:
        yield self


def run_sync(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` to its end in this thread, blocking where it waits."""
    token = _blocking.set(True)
    try:
        while True:
            try:
                step = coroutine.send(None)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            if not isinstance(step, _Wait):
                raise RuntimeError(
                    "awaited something that only an event loop can wait for: "
                    "call the async method from a coroutine instead"
                )
            # The coroutine reads the result (or learns of the timeout) when it resumes.
            concurrent.futures.wait([step.future], timeout=step.timeout)
    finally:
        _blocking.reset(token)
        coroutine.close()


def blocking() -> bool:
    """Whether :func:`run_sync` drives the running coroutine."""
    return _blocking.get()


async def either(
    blocking_call: Callable[..., T],
    async_call: Callable[..., Awaitable[T]],
    *args: Any,
    **kwargs: Any,
) -> T:
    """``blocking_call(*args, **kwargs)`` under :func:`run_sync`, else ``await
    async_call(*args, **kwargs)`` (see the module)."""
    if _blocking.get():
        return blocking_call(*args, **kwargs)
    return await async_call(*args, **kwargs)


async def offload(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)``: inline when blocking, else in the loop's default thread pool."""
    if _blocking.get():
        return fn(*args)
    loop = asyncio.get_running_loop()
    context = contextvars.copy_context()
    return await loop.run_in_executor(None, functools.partial(context.run, fn, *args))


async def wait_for(future: concurrent.futures.Future[T], timeout: float | None = None) -> T:
    """The result of ``future``; ``TimeoutError`` when it is not done within ``timeout``
    seconds (the future itself is left alone: it may still finish)."""
    if not future.done():
        if _blocking.get():
            await _Wait(future, timeout)
            if not future.done():
                raise TimeoutError
        else:
            waiting = asyncio.wrap_future(future)
            await asyncio.wait_for(asyncio.shield(waiting), timeout)
    return future.result()
