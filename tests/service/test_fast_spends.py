"""``POST /v1/spends`` answered by the fast layer (service/fast_spends.py) is answered
exactly as the FastAPI route answers it: the same requests, sent to an app with the layer
and to one without it (each over its own, identically set-up ledger), get the same
statuses, headers that matter and bodies; the plain ones are answered by the layer, the
rest by the route."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from service_helpers import AGENT_A, AGENT_B, PROVIDER, Keys, U, bearer, spend_body

from escrowkit.coordinator import AgentConfig, BudgetCoordinator, NoopExecutor
from escrowkit.service import fast_spends
from escrowkit.service.app import create_app

# Ids differ between the two ledgers; everything else must not.
VOLATILE = ("reservation_id", "escrow_id", "approval_id", "tx_hashes")


def _world(folder: Path) -> tuple[BudgetCoordinator, Keys]:
    coordinator = BudgetCoordinator(
        None,
        total_budget=1_000 * U,
        store=f"sqlite:///{folder / 'ledger.db'}",
        executor=NoopExecutor(),
    )
    coordinator.register_agent(
        AgentConfig("research", "Research", AGENT_A, 100 * U, 300 * U, 50 * U)
    )
    coordinator.register_agent(AgentConfig("data", "Data", AGENT_B, 200 * U, 500 * U, 100 * U))
    create = coordinator.api_keys.create
    keys = Keys(
        research=create("agent", agent_id="research")[1],
        data=create("agent", agent_id="data")[1],
        approver=create("approver", name="ops@example.com")[1],
        admin=create("admin")[1],
    )
    return coordinator, keys


class Side:
    """One app over its own ledger; ``answered`` counts the requests the layer answered."""

    def __init__(self, folder: Path, *, layer: bool, monkeypatch: pytest.MonkeyPatch) -> None:
        folder.mkdir()
        self.coordinator, self.keys = _world(folder)
        app = create_app(self.coordinator, events_poll=0.05)
        if not layer:
            app.user_middleware = [
                mw for mw in app.user_middleware if mw.cls is not fast_spends.FastSpends
            ]
        self.client = TestClient(app, base_url="http://127.0.0.1")
        self.answered = 0

    def post(self, key: str | None, body: Any, **headers: str) -> Any:
        sent = dict(headers)
        if key is not None:
            sent.setdefault("Authorization", f"Bearer {getattr(self.keys, key, key)}")
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        sent.setdefault("Content-Type", "application/json")
        return self.client.post("/v1/spends", content=content, headers=sent)


@pytest.fixture
def sides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Side, Side]]:
    fast = Side(tmp_path / "fast", layer=True, monkeypatch=monkeypatch)
    route = Side(tmp_path / "route", layer=False, monkeypatch=monkeypatch)
    answer = fast_spends.FastSpends._answer

    async def counted(self: fast_spends.FastSpends, *args: Any) -> Any:
        response = await answer(self, *args)
        if response is not None and self.backend is fast.client.app.state.backend:
            fast.answered += 1
        return response

    monkeypatch.setattr(fast_spends.FastSpends, "_answer", counted)
    with fast.client, route.client:
        yield fast, route
    fast.coordinator.close()
    route.coordinator.close()


def _comparable(response: Any) -> tuple[int, str, str | None, Any]:
    body = response.json()
    for field in VOLATILE:
        if isinstance(body, dict) and body.get(field):
            body[field] = "<set>"
    return (
        response.status_code,
        response.headers["content-type"],
        response.headers.get("retry-after"),
        body,
    )


# (name, key, body, extra headers, answered by the layer)
CASES: list[tuple[str, str | None, Any, dict[str, str], bool]] = [
    ("approved", "research", spend_body(10 * U), {"Idempotency-Key": "k1"}, True),
    ("replayed", "research", spend_body(10 * U), {"Idempotency-Key": "k1"}, True),
    ("key reused, other body", "research", spend_body(11 * U), {"Idempotency-Key": "k1"}, True),
    ("amount as a string", "data", spend_body(str(20 * U), category="compute"), {}, True),
    ("denied over the per-spend limit", "research", spend_body(150 * U), {}, True),
    ("waits for approval", "research", spend_body(60 * U), {}, True),
    ("lower-case scheme", None, spend_body(1 * U), {"Authorization": "bearer {research}"}, True),
    (
        "charset in the content type",
        "data",
        spend_body(2 * U),
        {"Content-Type": "application/json; charset=utf-8"},
        True,
    ),
    ("unknown field", "research", spend_body(1 * U, agent_id="data"), {}, False),
    ("not JSON", "research", b"{amount: 1", {}, False),
    ("NaN", "research", b'{"amount": NaN, "provider": "x", "purpose": "p"}', {}, False),
    ("a float amount", "research", spend_body(1.5), {}, False),
    ("not an address", "research", spend_body(1 * U) | {"provider": "0x12"}, {}, False),
    (
        "lower-case address",
        "research",
        spend_body(1 * U) | {"provider": PROVIDER.lower()},
        {},
        True,
    ),
    ("text/plain", "research", spend_body(1 * U), {"Content-Type": "text/plain"}, False),
    ("no key", None, spend_body(1 * U), {}, False),
    ("unknown key", "ek_agent_nope", spend_body(1 * U), {}, False),
    ("approver key", "approver", spend_body(1 * U), {}, False),
    ("basic auth", None, spend_body(1 * U), {"Authorization": "Basic dXNlcjpwdw=="}, False),
]


def test_the_layer_answers_as_the_route_does(sides: tuple[Side, Side]) -> None:
    fast, route = sides
    expected_fast = 0
    for name, key, body, headers, by_layer in CASES:
        answers = []
        for side in (fast, route):
            sent = {k: v.format(research=side.keys.research) for k, v in headers.items()}
            answers.append(_comparable(side.post(key, body, **sent)))
        assert answers[0] == answers[1], name
        expected_fast += by_layer
        assert fast.answered == expected_fast, f"{name}: answered by the layer: {not by_layer}"
    # Both ledgers hold the same decisions.
    assert fast.coordinator.report().total_spent == route.coordinator.report().total_spent


def test_a_query_string_or_a_repeated_header_goes_to_the_route(sides: tuple[Side, Side]) -> None:
    fast, _ = sides
    auth = bearer(fast.keys.research)
    response = fast.client.post("/v1/spends?dry=1", json=spend_body(1 * U), headers=auth)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"
    twice = [("Authorization", auth["Authorization"]), ("Idempotency-Key", "a"),
             ("Idempotency-Key", "b"), ("Content-Type", "application/json")]  # fmt: skip
    response = fast.client.post(
        "/v1/spends", content=json.dumps(spend_body(1 * U)).encode(), headers=twice
    )
    assert response.status_code == 200
    assert fast.answered == 0


def test_the_metrics_label_the_layers_answers_by_route(sides: tuple[Side, Side]) -> None:
    fast, _ = sides
    assert fast.post("research", spend_body(1 * U)).json()["status"] == "APPROVED"
    assert fast.answered == 1
    metrics = fast.client.get("/metrics", headers=bearer(fast.keys.admin)).text
    assert 'route="/v1/spends",status="200"' in metrics
