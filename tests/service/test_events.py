"""``/v1/events``: server-sent events with the outbox's ids, resumed by Last-Event-ID;
agent keys receive only their own; a revoked key's stream ends."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from service_helpers import (
    PROVIDER,
    Keys,
    LiveServer,
    U,
    bearer,
    read_events,
    spend_body,
    wait_for_new_stream,
)

from escrowkit.coordinator import BudgetCoordinator, Event, SpendRequest
from escrowkit.service.app import create_app
from escrowkit.service.backend import Backend
from escrowkit.service.events import EventHub, Subscription


def test_events_stream_live_and_resume_by_last_event_id(
    coordinator: BudgetCoordinator, keys: Keys
) -> None:
    app = create_app(coordinator, events_poll=0.02)
    with LiveServer(app) as url, httpx.Client(base_url=url) as http:
        # Before anything happened: the history comes from the ledger (after=0).
        http.post("/v1/spends", json=spend_body(), headers=bearer(keys.research))
        history = read_events(f"{url}/v1/events?after=0", keys.admin, 1)
        assert history[0]["event"] == "decision"
        assert history[0]["data"]["data"]["status"] == "APPROVED"
        assert "research spent 25.00 USDC" in history[0]["data"]["text"]
        # Live: a stream opened now sees what happens next, as it happens.
        got: list[dict[str, object]] = []
        reader = threading.Thread(
            target=lambda: got.extend(read_events(f"{url}/v1/events", keys.admin, 3))
        )
        before = set(app.state.hub.subscriptions)
        reader.start()
        wait_for_new_stream(app, before)
        http.post("/v1/spends", json=spend_body(80 * U), headers=bearer(keys.research))  # waits
        http.post("/v1/spends", json=spend_body(500 * U), headers=bearer(keys.data))  # denied
        reader.join(10)
        assert [e["event"] for e in got] == ["approval", "decision", "decision"]
        ids = [int(str(e["id"])) for e in got]
        assert ids == sorted(ids) and ids[0] > int(history[0]["id"])
        # Resume: after the first of them, the rest, from the ledger.
        resumed = read_events(
            f"{url}/v1/events", keys.admin, 2, headers={"Last-Event-ID": str(ids[0])}
        )
        assert [int(e["id"]) for e in resumed] == ids[1:]


def test_agent_keys_receive_only_their_own_and_revocation_ends_the_stream(
    coordinator: BudgetCoordinator, keys: Keys
) -> None:
    app = create_app(coordinator, events_poll=0.02)
    with LiveServer(app) as url, httpx.Client(base_url=url) as http:
        http.post("/v1/spends", json=spend_body(), headers=bearer(keys.data))
        http.post("/v1/spends", json=spend_body(), headers=bearer(keys.research))
        mine = read_events(f"{url}/v1/events?after=0", keys.research, 1)
        assert mine[0]["data"]["agent_id"] == "research"
        key = coordinator.api_keys.authenticate(keys.research)
        assert key is not None
        finished = threading.Event()

        def follow() -> None:
            read_events(f"{url}/v1/events", keys.research, 100, timeout=30)
            finished.set()

        before = set(app.state.hub.subscriptions)
        threading.Thread(target=follow, daemon=True).start()
        wait_for_new_stream(app, before)
        coordinator.api_keys.revoke(key.id)
        assert finished.wait(5), "the revoked key's stream did not end"
        assert http.get("/v1/events", headers=bearer(keys.research)).status_code == 401


def test_a_bad_last_event_id_is_400(client: TestClient, keys: Keys) -> None:
    response = client.get("/v1/events", headers={**bearer(keys.admin), "Last-Event-ID": "soon"})
    assert response.status_code == 400


def _spend(coordinator: BudgetCoordinator, amount: int) -> None:
    coordinator.request_spending(SpendRequest("research", amount, PROVIDER, "dataset"))


def test_with_no_stream_open_the_hub_reads_only_the_head(
    coordinator: BudgetCoordinator, keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    outbox = coordinator.outbox
    reads: list[int] = []
    real_after, real_head = outbox.after, outbox.head

    def recorded_after(cursor: int, **options: Any) -> list[Event]:
        reads.append(cursor)
        return real_after(cursor, **options)

    monkeypatch.setattr(outbox, "after", recorded_after)
    backend = Backend(coordinator, threads=2)
    hub = EventHub(backend, poll=0.01)
    key = coordinator.api_keys.authenticate(keys.admin)
    assert key is not None
    opened: list[Subscription] = []
    skipped = [0]

    def head_while_a_stream_opens() -> int:
        # A stream opens while the hub reads the head: the hub must not skip past the
        # events it started before, which this stream counts on.
        head = real_head()
        if head > skipped[0] and not opened:  # the new event is in
            opened.append(hub.subscribe(key))
        return head

    async def scenario() -> None:
        runner = asyncio.create_task(hub.run())
        await asyncio.sleep(0.05)
        for amount in (1, 2, 3):
            await asyncio.to_thread(_spend, coordinator, amount * U)
        await asyncio.sleep(0.05)
        assert reads == [] and hub.last == real_head()  # nobody listens: no events read
        skipped_to = skipped[0] = hub.last
        monkeypatch.setattr(outbox, "head", head_while_a_stream_opens)
        await asyncio.to_thread(_spend, coordinator, 4 * U)
        while not opened:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        assert reads and reads[0] == skipped_to  # read from where it was, not the head
        live = opened[0].queue.get_nowait()
        assert live is not None and live.id == skipped_to + 1 and live.type == "decision"
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)

    try:
        asyncio.run(scenario())
    finally:
        backend.close()
