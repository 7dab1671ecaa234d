"""Webhook deliveries from the ledger's outbox (``[[service.webhooks]]`` in the settings).

Each endpoint gets every event of the kinds it asked for, in id order, as a POST of an
:class:`~escrowkit.service.models.EventOut` (its ``text`` shows as a message in Slack or
Discord), signed ``X-Escrowkit-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "t.body">``
with the endpoint's secret. A delivery that is not answered 2xx is tried again with
exponential backoff, and nothing after it goes out until it is delivered (so order
holds). Where an endpoint stands is kept in the ledger (its cursor: the last event
answered 2xx), so nothing is lost across restarts and nothing answered 2xx is sent again.
Several processes on one ledger share the work through a lease on each cursor: one
delivers, the others wait until its lease runs out.

At least once, exactly once in the usual case: a process that dies between a 2xx and
recording it sends that event again when the next one takes over. Receivers that must
never see one twice drop repeats by the event's id (``X-Escrowkit-Event-Id``).

The URL of an endpoint may itself be a secret (a Slack incoming webhook): the ledger
keeps only its SHA-256, and logs and errors never show it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import random
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx

from escrowkit.errors import redact_secrets
from escrowkit.service import wire
from escrowkit.service.backend import Backend

if TYPE_CHECKING:
    from escrowkit.config.settings import WebhookSettings
    from escrowkit.coordinator import Event
    from escrowkit.service.metrics import Metrics

__all__ = ["RedactUrls", "Retry", "WebhookDeliverer", "endpoint_id", "sign"]

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Escrowkit-Signature"
#: Events read from the outbox at a time.
BATCH = 100


@dataclass(frozen=True)
class Retry:
    """Backoff after a failed delivery: ``base * 2**(attempts - 1)`` seconds, at most
    ``cap``, plus up to 10 % jitter. ``lease``: how long a process holds an endpoint's
    cursor without renewing it (longer than ``timeout``, a request's limit)."""

    base: float = 1.0
    cap: float = 300.0
    timeout: float = 10.0
    lease: float = 30.0
    poll: float = 0.5

    def delay(self, attempts: int) -> float:
        delay: float = min(self.base * 2 ** max(attempts - 1, 0), self.cap)
        return delay + random.uniform(0, delay / 10)


class RedactUrls(logging.Filter):
    """httpx logs every request's URL at INFO ("HTTP Request: POST https://…"): cut each
    to its scheme and host, since a webhook URL may be the secret that lets anyone post."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                redact_secrets(str(arg)) if isinstance(arg, httpx.URL) else arg
                for arg in record.args
            )
        return True


def _redact_httpx_logs() -> None:
    httpx_logger = logging.getLogger("httpx")
    if not any(isinstance(f, RedactUrls) for f in httpx_logger.filters):
        httpx_logger.addFilter(RedactUrls())


def endpoint_id(url: str) -> str:
    """What the ledger knows an endpoint by: the SHA-256 of its URL, never the URL."""
    return hashlib.sha256(url.encode()).hexdigest()


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The signature header's value: ``t=<unix>,v1=<hex HMAC-SHA256 of "t.body">``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


class WebhookDeliverer:
    """One task per endpoint, for the life of the app."""

    def __init__(
        self,
        backend: Backend,
        hooks: tuple[WebhookSettings, ...],
        metrics: Metrics,
        *,
        retry: Retry | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.backend = backend
        self.hooks = hooks
        self.metrics = metrics
        self.retry = retry or Retry()
        self.owner = f"{secrets.token_hex(8)}"  # this process, for the leases
        self.client = client

    async def run(self) -> None:
        """Deliver until cancelled; give the leases back on the way out."""
        _redact_httpx_logs()
        client = self.client or httpx.AsyncClient(timeout=self.retry.timeout)
        try:
            async with asyncio.TaskGroup() as group:
                for hook in self.hooks:
                    group.create_task(self._endpoint(client, hook))
        finally:
            if self.client is None:
                await client.aclose()
            outbox = self.backend.coordinator.outbox
            for hook in self.hooks:
                with contextlib.suppress(Exception):  # shutting down anyway
                    await asyncio.shield(
                        self.backend.call(outbox.release, endpoint_id(hook.url), self.owner)
                    )

    async def _endpoint(self, client: httpx.AsyncClient, hook: WebhookSettings) -> None:
        while True:
            try:
                busy = await self.deliver(client, hook)
            except Exception as exc:  # the ledger away for a moment: try again later
                logger.warning("webhook deliveries paused: %s", type(exc).__name__)
                busy = False
            if not busy:
                await asyncio.sleep(self.retry.poll)

    async def deliver(self, client: httpx.AsyncClient, hook: WebhookSettings) -> bool:
        """One round: take the lease, send what is due, in order; True when there may be
        more to send right away."""
        outbox, endpoint = self.backend.coordinator.outbox, endpoint_id(hook.url)
        cursor = await self.backend.call(outbox.cursor, endpoint)
        if cursor is not None:
            now = time.time()
            if cursor.next_attempt_at > now:
                return False
            if cursor.lease_owner not in (None, self.owner) and cursor.lease_until > now:
                return False
            head = await self.backend.call(outbox.head)
            if head <= cursor.delivered_through:
                return False
        claimed = await self.backend.call(outbox.claim, endpoint, self.owner, self.retry.lease)
        if claimed is None:
            return False
        events = await self.backend.call(outbox.after, claimed.delivered_through, limit=BATCH)
        recorded, attempts = claimed.delivered_through, claimed.attempts
        through = recorded  # events up to here need no (more) delivery
        for event in events:
            if event.type in hook.events:
                if through > recorded and not await self._record(endpoint, through):
                    return False
                recorded = through
                error = await self._post(client, hook, event)
                if error is not None:
                    delay = self.retry.delay(attempts + 1)
                    await self.backend.call(outbox.failed, endpoint, self.owner, delay, error)
                    logger.warning(
                        "webhook delivery of event %d failed (%s); attempt %d, next in %.1fs",
                        event.id,
                        error,
                        attempts + 1,
                        delay,
                    )
                    return False
                # Recorded at once: a restart must not send a 2xx'd event again.
                if not await self._record(endpoint, event.id):
                    return False
                recorded, attempts = event.id, 0
            through = event.id
        if through > recorded and not await self._record(endpoint, through):
            return False
        return len(events) == BATCH

    async def _record(self, endpoint: str, through: int) -> bool:
        """The cursor moves to ``through``; False when this process lost the lease (another
        one delivers now)."""
        outbox = self.backend.coordinator.outbox
        return await self.backend.call(
            outbox.delivered, endpoint, self.owner, through, self.retry.lease
        )

    async def _post(
        self, client: httpx.AsyncClient, hook: WebhookSettings, event: Event
    ) -> str | None:
        """POST one event; None when answered 2xx, else what went wrong (no URL in it)."""
        body = wire.event(event, self.backend.coordinator.units).model_dump_json().encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "escrowkit-webhooks/1",
            "X-Escrowkit-Event-Id": str(event.id),
            SIGNATURE_HEADER: sign(hook.secret, body, int(time.time())),
        }
        try:
            response = await client.post(hook.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            self.metrics.webhooks.labels("failed").inc()
            return type(exc).__name__
        if 200 <= response.status_code < 300:
            self.metrics.webhooks.labels("delivered").inc()
            return None
        self.metrics.webhooks.labels("failed").inc()
        return f"HTTP {response.status_code}"
