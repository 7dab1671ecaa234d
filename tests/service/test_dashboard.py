"""The dashboard's server side, in-process: the key login (a wrong key and an agent key
refused with a code), the session cookie's flags, CSRF on actions, logout, that every
figure of its document is ``report()``'s, the escrow rules, and that the key never
reaches a URL, a log line or a page. (The page itself: test_dashboard_browser.py.)"""

from __future__ import annotations

import logging
from importlib import resources

import pytest
from fastapi.testclient import TestClient
from service_helpers import Keys, U, bearer, spend_body

from escrowkit.coordinator import BudgetCoordinator
from escrowkit.service.dashboard.sessions import COOKIE, CSRF_HEADER


def login(client: TestClient, key: str) -> str:
    """Sign in; the page's CSRF token."""
    response = client.post("/login", data={"key": key}, follow_redirects=False)
    assert response.status_code == 303, response.text
    page = client.get("/")
    assert 'name="csrf-token"' in page.text
    return page.text.split('name="csrf-token" content="')[1].split('"')[0]


def test_the_login_form_refuses_wrong_and_agent_keys_with_a_code(
    client: TestClient, keys: Keys
) -> None:
    first = client.get("/")
    assert first.status_code == 200 and 'type="password"' in first.text
    assert 'method="post" action="/login"' in first.text
    for key, status, code, words in (
        ("", 400, "key_missing", "Enter an approver or admin key"),
        ("ek_admin_not-a-real-key", 401, "key_unknown", "not a live key"),
        (keys.research, 403, "agent_key_refused", "An agent key cannot sign in"),
    ):
        response = client.post("/login", data={"key": key})
        assert response.status_code == status
        assert response.headers["X-Escrowkit-Code"] == code
        assert f'data-code="{code}"' in response.text and words in response.text
        assert 'type="password"' in response.text  # the form again
        assert COOKIE not in response.headers.get("set-cookie", "")
        assert not key or key not in response.text


def test_a_session_is_an_httponly_strict_cookie_and_logout_ends_it(
    client: TestClient, keys: Keys
) -> None:
    response = client.post("/login", data={"key": keys.approver}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=") and keys.approver not in cookie
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    page = client.get("/")
    assert "dashboard.js" in page.text and "ops@example.com" in page.text
    assert page.headers["Cache-Control"] == "no-store"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert client.get("/dashboard/state").status_code == 200
    csrf = page.text.split('name="csrf-token" content="')[1].split('"')[0]
    assert client.post("/logout", data={"csrf": csrf}, follow_redirects=False).status_code == 303
    assert client.get("/dashboard/state").status_code == 401
    assert 'action="/login"' in client.get("/").text


def test_actions_need_the_sessions_csrf_token(
    client: TestClient, keys: Keys, coordinator: BudgetCoordinator
) -> None:
    pending = client.post("/v1/spends", json=spend_body(80 * U), headers=bearer(keys.research))
    approval_id = pending.json()["approval_id"]
    csrf = login(client, keys.approver)
    path = f"/v1/approvals/{approval_id}/approve"
    refused = client.post(path, json={})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "csrf_token_invalid"
    wrong = client.post(path, json={}, headers={CSRF_HEADER: "x" + csrf})
    assert wrong.status_code == 403
    assert coordinator.report().pending_approvals  # nothing happened
    done = client.post(path, json={}, headers={CSRF_HEADER: csrf})
    assert done.status_code == 200 and done.json()["status"] == "APPROVED"
    # An approver's session may not settle (admin only), with the API's code.
    escrow = done.json()["escrow_id"]
    settle = client.post(f"/v1/escrows/{escrow}/settle", headers={CSRF_HEADER: csrf})
    assert settle.status_code == 403 and settle.json()["error"]["code"] == "forbidden"


def test_a_revoked_key_ends_its_sessions(
    client: TestClient, keys: Keys, coordinator: BudgetCoordinator
) -> None:
    login(client, keys.admin)
    assert client.get("/dashboard/state").status_code == 200
    key = coordinator.api_keys.authenticate(keys.admin)
    assert key is not None
    coordinator.api_keys.revoke(key.id)
    assert client.get("/dashboard/state").status_code == 401
    assert 'action="/login"' in client.get("/").text


def test_every_figure_is_the_reports(
    client: TestClient, keys: Keys, coordinator: BudgetCoordinator
) -> None:
    coordinator.set_category_budget("data", 40 * U)
    for agent, amount, category in (
        (keys.research, 25 * U, None),
        (keys.research, 1_234_567, "data"),
        (keys.data, 80 * U, None),
        (keys.data, 150 * U, None),  # waits for approval
    ):
        body = spend_body(amount, **({"category": category} if category else {}))
        client.post("/v1/spends", json=body, headers=bearer(agent))
    login(client, keys.admin)
    state = client.get("/dashboard/state").json()
    report, units = coordinator.report(), coordinator.units

    def shown(value: int) -> dict[str, str]:
        return {"value": str(value), "text": units.format(value)}

    assert state["budget"]["total"] == shown(report.total_budget)
    assert state["budget"]["spent"] == shown(report.total_spent)
    assert state["budget"]["reserved"] == shown(report.reserved)
    assert state["budget"]["remaining"] == shown(report.remaining)
    assert state["budget"]["spent"]["text"] == "106.234567 USDC"  # exact, never rounded
    for row in state["agents"]:
        agent = report.by_agent[row["agent_id"]]
        assert row["spent_today"] == shown(agent.spent_today)
        assert row["daily_limit"] == shown(agent.daily_limit)
        assert row["remaining_today"] == shown(agent.remaining_today)
        assert row["spent"] == shown(agent.spent)
    assert {c["category"]: c["spent"] for c in state["categories"]} == {
        name: shown(c.spent) for name, c in report.by_category.items()
    }
    assert [a["approval_id"] for a in state["approvals"]] == list(report.pending_approvals)
    assert state["scopes"][0]["scope"] == "" and state["scopes"][0]["allocated"] == shown(
        report.total_budget
    )
    assert [d["status"] for d in state["decisions"]] == [
        "PENDING_APPROVAL",
        "APPROVED",
        "APPROVED",
        "APPROVED",
    ]
    assert sum(int(b["value"]) for b in state["chart"]["24h"]) == report.total_spent
    assert sum(int(b["value"]) for b in state["chart"]["7d"]) == report.total_spent


def test_escrow_buttons_follow_the_rules_and_the_role(
    client: TestClient, keys: Keys, coordinator: BudgetCoordinator
) -> None:
    funded = client.post("/v1/spends", json=spend_body(), headers=bearer(keys.research)).json()
    settled = client.post("/v1/spends", json=spend_body(), headers=bearer(keys.research)).json()
    coordinator.settle(settled["escrow_id"])
    login(client, keys.admin)
    rows = {e["escrow_id"]: e for e in client.get("/dashboard/state").json()["escrows"]}
    open_row, closed = rows[funded["escrow_id"]], rows[settled["escrow_id"]]
    assert open_row["chain_state"] == "FUNDED" and open_row["status"] == "funded"
    assert open_row["settle"] == {"allowed": True, "reason": None}
    assert closed["chain_state"] == "SETTLED" and closed["settle"]["allowed"] is False
    assert closed["settle"]["reason"] == "the spend is settled"
    client.cookies.clear()
    login(client, keys.approver)
    rows = {e["escrow_id"]: e for e in client.get("/dashboard/state").json()["escrows"]}
    assert rows[funded["escrow_id"]]["settle"] == {
        "allowed": False,
        "reason": "needs an admin key",
    }


def test_the_key_never_reaches_a_log_or_a_page(
    client: TestClient, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    pages = [client.post("/login", data={"key": keys.research})]
    login(client, keys.admin)
    pages += [client.get("/"), client.get("/dashboard/state")]
    for secret in (keys.research, keys.admin):
        assert secret not in caplog.text
        assert all(secret not in page.text for page in pages)
    # The key is read from a POST body only: in a query string it is not even looked at.
    client.cookies.clear()
    assert 'action="/login"' in client.get(f"/?key={keys.admin}").text


def test_the_pages_files_are_package_data(client: TestClient) -> None:
    static = resources.files("escrowkit.service.dashboard").joinpath("static")
    for name, kind in (("dashboard.js", "javascript"), ("dashboard.css", "css")):
        assert static.joinpath(name).is_file()
        response = client.get(f"/dashboard/static/{name}")
        assert response.status_code == 200 and kind in response.headers["content-type"]
    assert client.get("/dashboard/static/..%2Fsessions.py").status_code == 404
    assert "/dashboard/state" not in client.get("/openapi.json").json()["paths"]


def test_a_login_or_logout_from_another_site_is_refused(client: TestClient, keys: Keys) -> None:
    for headers in ({"Origin": "http://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
        response = client.post("/login", data={"key": keys.admin}, headers=headers)
        assert response.status_code == 403
        assert response.headers["X-Escrowkit-Code"] == "cross_site_request"
        assert COOKIE not in response.headers.get("set-cookie", "")
    same = {"Origin": "http://127.0.0.1", "Sec-Fetch-Site": "same-origin"}
    response = client.post("/login", data={"key": keys.admin}, headers=same, follow_redirects=False)
    assert response.status_code == 303
    csrf = client.get("/").text.split('name="csrf-token" content="')[1].split('"')[0]
    client.post("/logout", data={"csrf": csrf}, headers={"Sec-Fetch-Site": "cross-site"})
    client.cookies.set(COOKIE, response.cookies[COOKIE])
    assert client.get("/dashboard/state").status_code == 200  # that logout did nothing


def test_a_session_ends_after_8_idle_hours(coordinator: BudgetCoordinator, keys: Keys) -> None:
    from escrowkit.service.backend import Backend
    from escrowkit.service.dashboard.sessions import IDLE, Sessions

    now = [0.0]
    sessions = Sessions(Backend(coordinator, threads=1), clock=lambda: now[0])
    key = coordinator.api_keys.authenticate(keys.approver)
    assert key is not None
    token, _ = sessions.open(key)
    now[0] = IDLE - 1
    assert sessions.get(token) is not None  # used: its idle time restarts
    now[0] += IDLE - 1
    assert sessions.get(token) is not None
    now[0] += IDLE + 1
    assert sessions.get(token) is None
    sessions.backend.close()
