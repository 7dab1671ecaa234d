"""Live events for ``/v1/events``: one poller per process reads the ledger's outbox and
hands each new event to every open stream.

A stream first catches up from the ledger (the events after its ``Last-Event-ID``), then
follows the poller; it subscribes before it catches up, so nothing falls between the two
(an event the poller has not seen yet comes through the subscription, and duplicates are
dropped by id). Event ids are the outbox's, one sequence for every process on the
ledger, so a client can resume on any of them. A stream that falls too far behind is
closed (its client reconnects with ``Last-Event-ID`` and catches up from the ledger).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from escrowkit.coordinator import ApiKey, Event
from escrowkit.service.backend import Backend

__all__ = ["EventHub", "Subscription"]

logger = logging.getLogger(__name__)

#: Events read from the ledger at a time.
BATCH = 500


class Subscription:
    """One open stream: its queue of live events (only its agent's, for agent keys)."""

    def __init__(self, agent_id: str | None, depth: int) -> None:
        self.agent_id = agent_id
        self.queue: asyncio.Queue[Event | None] = asyncio.Queue(depth)
        self.overflowed = False

    def offer(self, event: Event) -> None:
        if self.overflowed or (self.agent_id is not None and event.agent_id != self.agent_id):
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.overflowed = True
            self.queue.get_nowait()
            self.queue.put_nowait(None)  # the stream ends; its client resumes from the ledger


class EventHub:
    """Polls the outbox every ``poll`` seconds and fans new events out (with no stream
    open, it reads only the head: under load that was a read of 500 events every poll)."""

    def __init__(self, backend: Backend, *, poll: float = 0.2, depth: int = 10_000) -> None:
        self.backend = backend
        self.poll = poll
        self.depth = depth
        self.last = 0
        self.subscriptions: set[Subscription] = set()
        self._started = asyncio.Event()

    async def run(self) -> None:
        """Until cancelled: read what is new, hand it out, wait."""
        outbox = self.backend.coordinator.outbox
        self.last = await self.backend.call(outbox.head)
        self._started.set()
        while True:
            try:
                if not self.subscriptions:
                    await self._follow_head()
                    await asyncio.sleep(self.poll)
                    continue
                events = await self.backend.call(outbox.after, self.last, limit=BATCH)
            except Exception as exc:  # the database away for a moment: try again
                logger.warning("reading the outbox failed: %s", type(exc).__name__)
                events = []
            for event in events:
                for subscription in list(self.subscriptions):
                    subscription.offer(event)
                self.last = event.id
            if len(events) < BATCH:
                await asyncio.sleep(self.poll)

    async def _follow_head(self) -> None:
        """With no stream open, move on to the outbox's head without reading the events
        (a stream that opens catches up from the ledger). Not if one opened meanwhile: it
        may have started from the old position, so the events from there are handed out."""
        head = await self.backend.call(self.backend.coordinator.outbox.head)
        if not self.subscriptions:
            self.last = max(self.last, head)

    def subscribe(self, key: ApiKey) -> Subscription:
        subscription = Subscription(key.agent_id if key.role == "agent" else None, self.depth)
        self.subscriptions.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self.subscriptions.discard(subscription)

    async def stream(
        self, key: ApiKey, after: int | None, *, recheck: float = 1.0
    ) -> AsyncIterator[Event]:
        """The events after ``after`` (None: from now on), then live ones, while ``key``
        stays live (it is checked again every ``recheck`` seconds)."""
        await self._started.wait()
        subscription = self.subscribe(key)
        try:
            cursor = self.last if after is None else after
            outbox = self.backend.coordinator.outbox
            while True:  # catch up from the ledger
                backlog = await self.backend.call(
                    outbox.after, cursor, agent_id=subscription.agent_id, limit=BATCH
                )
                for old in backlog:
                    yield old
                    cursor = old.id
                if len(backlog) < BATCH:
                    break
            while True:
                try:
                    live = await asyncio.wait_for(subscription.queue.get(), recheck)
                except TimeoutError:
                    if not await self._live(key):
                        return
                    continue
                if live is None:
                    return
                if live.id > cursor:
                    yield live
                    cursor = live.id
        finally:
            self.unsubscribe(subscription)

    async def _live(self, key: ApiKey) -> bool:
        current = await self.backend.call(self.backend.coordinator.api_keys.get, key.id)
        return not current.revoked
