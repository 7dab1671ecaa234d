"""Webhooks from the outbox: signed, retried with backoff until a 2xx, in order, and only
the kinds an endpoint asked for; the endpoint's URL never shows in logs."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from service_helpers import Keys, Receiver, U, bearer, spend_body, verify_signature

from escrowkit.config.settings import WebhookSettings
from escrowkit.coordinator import BudgetCoordinator
from escrowkit.service.app import create_app
from escrowkit.service.webhooks import Retry, endpoint_id

SECRET = "whsec_test"
FAST = Retry(base=0.05, cap=0.2, poll=0.02)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver(fail_first=2)
    yield made
    made.close()


def wait_for(check: object, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_deliveries_are_signed_retried_in_order_and_once(
    coordinator: BudgetCoordinator,
    keys: Keys,
    receiver: Receiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    hooks = (WebhookSettings(receiver.url, SECRET),)
    app = create_app(coordinator, webhooks=hooks, retry=FAST, events_poll=0.02)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        # The endpoint's cursor starts at the head: it gets events from then on.
        wait_for(lambda: coordinator.outbox.cursor(endpoint_id(receiver.url)) is not None)
        for amount in (10 * U, 80 * U, 500 * U):
            client.post("/v1/spends", json=spend_body(amount), headers=bearer(keys.research))
        expected = [e.id for e in coordinator.outbox.after(0)]
        assert len(expected) == 4  # decision, approval, decision, decision
        wait_for(lambda: len(receiver.delivered()) == len(expected))
        time.sleep(0.2)  # nothing more comes
    delivered = receiver.delivered()
    assert [d["id"] for d in delivered] == expected  # each once, in order
    assert [status for *_, status in receiver.attempts[:3]] == [500, 500, 200]
    assert len(receiver.attempts) == len(expected) + 2
    for headers, body, _ in receiver.attempts:
        assert verify_signature(SECRET, headers, body)
        assert headers["X-Escrowkit-Event-Id"] == str(__import__("json").loads(body)["id"])
    assert delivered[0]["text"].startswith("research spent 10.00 USDC")
    assert delivered[0]["data"]["status"] == "APPROVED"
    cursor = coordinator.outbox.cursor(endpoint_id(receiver.url))
    assert cursor is not None and cursor.delivered_through == expected[-1]
    assert "s3cr3t-path" not in caplog.text and SECRET not in caplog.text


def test_an_endpoint_gets_only_the_kinds_it_asked_for(
    coordinator: BudgetCoordinator, keys: Keys
) -> None:
    receiver = Receiver()
    hooks = (WebhookSettings(receiver.url, SECRET, events=("approval",)),)
    app = create_app(coordinator, webhooks=hooks, retry=FAST, events_poll=0.02)
    try:
        with TestClient(app, base_url="http://127.0.0.1") as client:
            wait_for(lambda: coordinator.outbox.cursor(endpoint_id(receiver.url)) is not None)
            client.post("/v1/spends", json=spend_body(10 * U), headers=bearer(keys.research))
            client.post("/v1/spends", json=spend_body(80 * U), headers=bearer(keys.research))
            wait_for(lambda: len(receiver.delivered()) == 1)
            head = coordinator.outbox.head()
            wait_for(
                lambda: (
                    (c := coordinator.outbox.cursor(endpoint_id(receiver.url))) is not None
                    and c.delivered_through == head
                )
            )
        assert [d["type"] for d in receiver.delivered()] == ["approval"]
    finally:
        receiver.close()
