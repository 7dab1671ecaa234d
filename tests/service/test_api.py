"""The HTTP API in-process (DESIGN.md section 9): spends, approvals, keys and roles, the
error model, idempotency, lists, reads and administration."""

from __future__ import annotations

import logging
import threading

import pytest
from fastapi.testclient import TestClient
from service_helpers import PROVIDER, GatedExecutor, Keys, U, bearer, error_code, spend_body

from escrowkit.coordinator import BudgetCoordinator


def test_an_agent_spends_as_itself_and_a_denial_is_a_decision(
    client: TestClient, keys: Keys, coordinator: BudgetCoordinator
) -> None:
    ok = client.post("/v1/spends", json=spend_body(), headers=bearer(keys.research))
    assert ok.status_code == 200
    body = ok.json()
    assert body["status"] == "APPROVED" and body["code"] is None
    assert body["remaining_daily"] == str(275 * U) and body["remaining_total"] == str(975 * U)
    assert set(body) == {
        "status", "code", "reason", "reservation_id", "escrow_id", "approval_id",
        "remaining_daily", "remaining_total", "tx_hashes", "error",
    }  # fmt: skip
    assert coordinator.reservation(body["reservation_id"]).agent_id == "research"
    # As a string of base units too; a denial is a 200 whose code names the check.
    denied = client.post("/v1/spends", json=spend_body("500000000"), headers=bearer(keys.research))
    assert denied.status_code == 200
    assert (denied.json()["status"], denied.json()["code"]) == ("DENIED", "per_transaction_limit")


@pytest.mark.parametrize(
    "body",
    [
        spend_body(agent_id="data"),  # the agent comes from the key, never the body
        spend_body(1.5),
        spend_body("25.5"),
        spend_body(True),
        spend_body("-1"),
        spend_body(0),
        spend_body(2**96),
        spend_body(provider="0x70997970C51812dc3A010C7d01b50e0d17dc79c8"),  # bad checksum
        {"amount": 1, "provider": PROVIDER},
        [1, 2],
    ],
)
def test_malformed_spends_are_400_and_change_nothing(
    client: TestClient, keys: Keys, coordinator: BudgetCoordinator, body: object
) -> None:
    response = client.post("/v1/spends", json=body, headers=bearer(keys.research))
    assert response.status_code == 400, response.text
    assert error_code(response) == "invalid_request"
    assert coordinator.reservations() == []
    assert coordinator.outbox.after(0) == []


def test_bodies_that_are_not_json_or_not_unicode_are_400(client: TestClient, keys: Keys) -> None:
    headers = {**bearer(keys.research), "content-type": "application/json"}
    for raw in (b"{", b'{"amount": 1, "provider": "\\ud800", "purpose": "x"}', b"\xff"):
        response = client.post("/v1/spends", content=raw, headers=headers)
        assert response.status_code == 400 and error_code(response) == "invalid_request"


def test_keys_and_roles(client: TestClient, keys: Keys, coordinator: BudgetCoordinator) -> None:
    assert error_code(client.get("/v1/report")) == "unauthenticated"
    assert client.get("/v1/report", headers=bearer("ek_agent_nope")).status_code == 401
    assert client.get("/v1/report", headers={"Authorization": keys.admin}).status_code == 401
    # Only an agent key spends (the body cannot name an agent, so nobody spends for one).
    for key in (keys.approver, keys.admin):
        response = client.post("/v1/spends", json=spend_body(), headers=bearer(key))
        assert response.status_code == 403 and error_code(response) == "forbidden"
    # An agent key neither approves nor administers.
    assert (
        client.post("/v1/approvals/apr_x/approve", headers=bearer(keys.research)).status_code == 403
    )
    assert (
        client.post("/v1/freeze", json={"reason": "x"}, headers=bearer(keys.approver)).status_code
        == 403
    )
    assert client.get("/metrics", headers=bearer(keys.approver)).status_code == 403
    metrics = client.get("/metrics", headers=bearer(keys.admin)).text
    assert 'escrowkit_decisions_total{code="",status="APPROVED"}' not in metrics  # none yet
    client.post("/v1/spends", json=spend_body(), headers=bearer(keys.research))
    metrics = client.get("/metrics", headers=bearer(keys.admin)).text
    assert 'escrowkit_decisions_total{code="",status="APPROVED"} 1.0' in metrics
    assert 'route="/v1/spends",status="200"' in metrics
    client.post("/v1/spends", json=spend_body(), headers=bearer(keys.data))
    metrics = client.get("/metrics", headers=bearer(keys.admin)).text
    assert 'escrowkit_decisions_total{code="",status="APPROVED"} 2.0' in metrics
    assert 'method="POST",route="/v1/spends",status="200"} 2.0' in metrics
    # Every answer of the route is timed, the two 403s above included.
    assert 'escrowkit_http_request_seconds_count{route="/v1/spends"} 4.0' in metrics
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/openapi.json").status_code == 200


def test_a_revoked_key_fails_at_once(
    client: TestClient, keys: Keys, coordinator: BudgetCoordinator
) -> None:
    headers = bearer(keys.research)
    assert client.get("/v1/me", headers=headers).status_code == 200
    key = coordinator.api_keys.authenticate(keys.research)
    assert key is not None
    coordinator.api_keys.revoke(key.id)
    assert client.get("/v1/me", headers=headers).status_code == 401
    assert client.post("/v1/spends", json=spend_body(), headers=headers).status_code == 401


def test_an_agent_sees_only_its_own(client: TestClient, keys: Keys) -> None:
    mine = client.post("/v1/spends", json=spend_body(), headers=bearer(keys.research)).json()
    theirs = client.post("/v1/spends", json=spend_body(), headers=bearer(keys.data)).json()
    rid = theirs["reservation_id"]
    assert client.get(f"/v1/spends/{rid}", headers=bearer(keys.research)).status_code == 404
    assert client.get(f"/v1/spends/{rid}", headers=bearer(keys.data)).status_code == 200
    assert client.get(f"/v1/spends/{rid}", headers=bearer(keys.approver)).status_code == 200
    listed = client.get("/v1/spends", headers=bearer(keys.research)).json()
    assert [s["reservation_id"] for s in listed["data"]] == [mine["reservation_id"]]
    other = client.get("/v1/spends?agent=data", headers=bearer(keys.research))
    assert other.status_code == 404 and error_code(other) == "not_found"
    everyone = client.get("/v1/spends", headers=bearer(keys.admin)).json()["data"]
    assert {s["agent_id"] for s in everyone} == {"research", "data"}
    escrow = theirs["escrow_id"]
    settle = client.post(f"/v1/escrows/{escrow}/settle", headers=bearer(keys.research))
    assert settle.status_code == 404
    report = client.get("/v1/report", headers=bearer(keys.research)).json()
    assert set(report["by_agent"]) == {"research"}
    assert report["total_spent"] == str(50 * U)  # the treasury's figure: it spends from it
    audit = client.get("/v1/audit?limit=100", headers=bearer(keys.research)).json()["data"]
    assert audit and {e["agent_id"] for e in audit} == {"research"}


def test_an_approver_approves_and_rejects(
    client: TestClient, keys: Keys, coordinator: BudgetCoordinator
) -> None:
    agent = bearer(keys.research)
    first = client.post("/v1/spends", json=spend_body(80 * U), headers=agent).json()
    second = client.post("/v1/spends", json=spend_body(60 * U), headers=agent).json()
    assert first["status"] == second["status"] == "PENDING_APPROVAL"
    assert first["code"] == "approval_required"
    pending = client.get("/v1/approvals?status=pending", headers=bearer(keys.approver)).json()
    assert {a["approval_id"] for a in pending["data"]} == {
        first["approval_id"],
        second["approval_id"],
    }
    approved = client.post(
        f"/v1/approvals/{first['approval_id']}/approve",
        json={"note": "ticket 7"},
        headers=bearer(keys.approver),
    )
    assert approved.status_code == 200 and approved.json()["status"] == "APPROVED"
    again = client.post(f"/v1/approvals/{first['approval_id']}/approve", headers=bearer(keys.admin))
    assert again.json() == approved.json()  # a replay: the same escrow
    assert coordinator.approval(first["approval_id"]).decided_by == "ops@example.com"
    rejected = client.post(
        f"/v1/approvals/{second['approval_id']}/reject",
        json={"reason": "too much"},
        headers=bearer(keys.admin),
    )
    assert rejected.status_code == 200
    assert (rejected.json()["status"], rejected.json()["reason"]) == ("REJECTED", "too much")
    assert rejected.json()["decided_by"].startswith("key:key_")  # a key without a name
    closed = client.post(
        f"/v1/approvals/{second['approval_id']}/reject",
        json={"reason": "again"},
        headers=bearer(keys.admin),
    )
    assert closed.status_code == 409 and error_code(closed) == "approval_closed"
    missing = client.post("/v1/approvals/apr_nope/approve", headers=bearer(keys.admin))
    assert missing.status_code == 404


def test_idempotency_key_retry_mismatch_and_in_flight(
    client: TestClient, keys: Keys, coordinator: BudgetCoordinator, executor: GatedExecutor
) -> None:
    headers = {**bearer(keys.research), "Idempotency-Key": "order-1"}
    first = client.post("/v1/spends", json=spend_body(), headers=headers)
    assert client.post("/v1/spends", json=spend_body(), headers=headers).json() == first.json()
    mismatch = client.post("/v1/spends", json=spend_body(26 * U), headers=headers)
    assert mismatch.status_code == 409 and error_code(mismatch) == "idempotency_key_mismatch"
    # Another agent's "order-1" is its own.
    theirs = {**bearer(keys.data), "Idempotency-Key": "order-1"}
    assert client.post("/v1/spends", json=spend_body(26 * U), headers=theirs).status_code == 200

    held = {**bearer(keys.research), "Idempotency-Key": "order-2"}
    answers: list[object] = []
    worker = threading.Thread(
        target=lambda: answers.append(
            client.post("/v1/spends", json=spend_body(executor.gated), headers=held)
        )
    )
    worker.start()
    assert executor.entered.wait(10)
    busy = client.post("/v1/spends", json=spend_body(executor.gated), headers=held)
    assert busy.status_code == 409 and error_code(busy) == "idempotency_key_in_use"
    assert busy.headers["Retry-After"] == "1"
    executor.gate.set()
    worker.join(10)
    done = answers[0]
    assert done.status_code == 200  # type: ignore[attr-defined]
    assert client.post("/v1/spends", json=spend_body(executor.gated), headers=held).json() == (
        done.json()  # type: ignore[attr-defined]
    )
    assert len(coordinator.reservations()) == 3


def test_lists_are_pages_with_a_cursor(client: TestClient, keys: Keys) -> None:
    ids = [
        client.post("/v1/spends", json=spend_body(U), headers=bearer(keys.research)).json()[
            "reservation_id"
        ]
        for _ in range(5)
    ]
    seen: list[str] = []
    url = "/v1/spends?limit=2"
    while url:
        page = client.get(url, headers=bearer(keys.admin)).json()
        assert set(page) == {"data", "next"}
        seen += [s["reservation_id"] for s in page["data"]]
        url = f"/v1/spends?limit=2&after={page['next']}" if page["next"] else ""
    assert seen == ids[::-1]
    assert client.get("/v1/spends?limit=0", headers=bearer(keys.admin)).status_code == 400
    assert client.get("/v1/spends?status=nope", headers=bearer(keys.admin)).status_code == 400
    committed = client.get("/v1/spends?status=committed", headers=bearer(keys.admin)).json()
    assert len(committed["data"]) == 5


def test_a_repeated_query_parameter_is_refused(client: TestClient, keys: Keys) -> None:
    # Starlette would keep the last value: ?agent=a&agent=b would answer for b alone.
    admin = bearer(keys.admin)
    for url in (
        "/v1/approvals?agent=research&agent=data",
        "/v1/spends?limit=2&limit=3",
        "/v1/spends?status=committed&status=",
    ):
        refused = client.get(url, headers=admin)
        assert refused.status_code == 400, url
        assert error_code(refused) == "invalid_request"
        assert refused.json()["error"]["message"].endswith("give each query parameter once")
    assert client.get("/v1/approvals?agent=research", headers=admin).status_code == 200


def test_me_report_balances(client: TestClient, keys: Keys, coordinator: BudgetCoordinator) -> None:
    client.post("/v1/spends", json=spend_body(30 * U), headers=bearer(keys.research))
    me = client.get("/v1/me", headers=bearer(keys.research)).json()
    assert me["agent_id"] == "research" and me["daily_limit"] == str(300 * U)
    assert (me["spent_today"], me["remaining_today"]) == (str(30 * U), str(270 * U))
    assert me["used_this_hour"] == str(30 * U) and me["remaining_this_hour"] is None
    assert me["scopes"][0]["scope"] == ""
    assert client.get("/v1/me", headers=bearer(keys.admin)).status_code == 403
    report = client.get("/v1/report", headers=bearer(keys.approver)).json()
    expected = coordinator.report()
    assert report["total_spent"] == str(expected.total_spent)
    assert report["remaining"] == str(expected.remaining)
    assert set(report["by_agent"]) == set(expected.by_agent)
    balances = client.get("/v1/balances", headers=bearer(keys.approver)).json()
    assert balances["data"][0]["remaining"] == str(expected.remaining)


def test_administration(client: TestClient, keys: Keys, coordinator: BudgetCoordinator) -> None:
    admin = bearer(keys.admin)
    frozen = client.post("/v1/freeze", json={"reason": "audit"}, headers=admin)
    assert frozen.json() == {"frozen": True, "reason": "audit"}
    denied = client.post("/v1/spends", json=spend_body(), headers=bearer(keys.research)).json()
    assert denied["code"] == "frozen"
    assert client.post("/v1/unfreeze", headers=admin).json() == {"frozen": False, "reason": None}
    agent = {
        "id": "new-agent",
        "address": "0x70997970C51812dc3A010C7d01b50e0d17dc79c8",
        "spending_limit": 10 * U,
        "daily_limit": "20000000",
        "requires_approval": 0,
    }
    bad = client.post("/v1/agents", json=agent, headers=admin)
    assert bad.status_code == 400  # not checksummed
    agent["address"] = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
    made = client.post("/v1/agents", json=agent, headers=admin).json()
    assert made["daily_limit"] == str(20 * U) and made["name"] == "new-agent"
    assert "new-agent" in coordinator.agents
    total = client.put("/v1/budgets/total", json={"amount": 2_000 * U}, headers=admin)
    assert total.json() == {"scope": "total", "amount": str(2_000 * U)}
    assert coordinator.total_budget == 2_000 * U
    client.put("/v1/budgets/category:compute", json={"amount": "5"}, headers=admin)
    assert coordinator.report().by_category["compute"].budget == 5
    assert client.put("/v1/budgets/total", json={"amount": None}, headers=admin).status_code == 400


def test_scopes_over_http(client: TestClient, keys: Keys, coordinator: BudgetCoordinator) -> None:
    """Agents placed in a scope and spawned under a parent, scope budgets, a workflow's
    spend, balances and removal (DESIGN.md section 8 through section 9's endpoints)."""
    admin = bearer(keys.admin)
    put = client.put("/v1/budgets/workflow:t1", json={"amount": 40 * U}, headers=admin)
    assert put.json() == {"scope": "workflow:t1", "amount": str(40 * U)}
    assert (
        client.put("/v1/budgets/workflow:t1/", json={"amount": 1}, headers=admin).status_code == 400
    )
    research = coordinator.agents["research"]
    child = {
        "id": "helper",
        "address": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
        "spending_limit": 10 * U,
        "daily_limit": 20 * U,
        "requires_approval": 0,
        "parent": "research",
    }
    made = client.post("/v1/agents", json=child, headers=admin).json()
    assert (made["scope"], made["path"]) == (research.path, f"{research.path}/agent:helper")
    wider = client.post(
        "/v1/agents", json={**child, "spending_limit": research.spending_limit + 1}, headers=admin
    )
    assert wider.status_code == 400 and wider.json()["error"]["code"] == "invalid_request"
    body = {**spend_body(30 * U), "workflow": "t1"}
    assert client.post("/v1/spends", json=body, headers=bearer(keys.research)).json()["status"] in (
        "APPROVED",
        "PENDING_APPROVAL",
    )
    over = client.post(
        "/v1/spends", json={**spend_body(20 * U), "workflow": "t1"}, headers=bearer(keys.research)
    ).json()
    assert over["code"] == "scope_budget" and "workflow:t1" in over["reason"]
    rows = client.get("/v1/balances?prefix=workflow:t1", headers=admin).json()["data"]
    assert [(r["scope"], r["remaining"]) for r in rows] == [("workflow:t1", str(10 * U))]
    report = client.get("/v1/report", headers=admin).json()
    assert [s["scope"] for s in report["scopes"]] == ["", "workflow:t1"]
    removed = client.delete("/v1/agents/research", headers=admin).json()
    assert sorted(removed["removed"]) == ["helper", "research"]
    gone = client.post("/v1/spends", json=spend_body(), headers=bearer(keys.research)).json()
    assert gone["code"] == "unknown_agent"
    assert client.delete("/v1/agents/nobody", headers=admin).status_code == 404


def test_keys_never_reach_logs_or_messages(
    client: TestClient, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    revoked_like = keys.research[:-2] + "xx"
    responses = [
        client.get("/v1/me", headers=bearer(revoked_like)),
        client.post(
            "/v1/spends", json=spend_body(agent_id=keys.research), headers=bearer(keys.research)
        ),
        client.post("/v1/spends", json=spend_body(), headers=bearer(keys.research)),
        client.get("/metrics", headers=bearer(keys.admin)),
    ]
    for secret in (keys.research, keys.admin, revoked_like):
        assert secret not in caplog.text
        assert all(secret not in r.text for r in responses)


def test_the_openapi_document_is_exact(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    for path, item in document["paths"].items():
        for method, operation in item.items():
            assert "422" not in operation["responses"], (path, method)
            if path not in ("/healthz", "/openapi.json"):
                assert "401" in operation["responses"], (path, method)
    # Every field of a response is always present (required, null when empty).
    for name in ("SpendResultOut", "SpendOut", "ApprovalOut", "ReportOut", "MeOut", "EventOut"):
        schema = schemas[name]
        assert set(schema["required"]) == set(schema["properties"]), name
        assert schema["additionalProperties"] is False
    assert schemas["SpendIn"]["additionalProperties"] is False
