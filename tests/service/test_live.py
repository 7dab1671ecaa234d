"""Real service processes on loopback ports over a real anvil: two agents spend at once
over HTTP, an approver approves, and the report matches the chain; the same with two
service processes on one PostgreSQL ledger; MCP end to end through ``escrowkit mcp`` on
stdio; webhooks across a restart of the service."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from live_helpers import Project, Service, assert_report_matches_chain, cli, make_project
from service_helpers import Receiver, bearer, verify_signature

from escrowkit.evm.chain import Chain
from escrowkit.ledger import Store, metadata

pytestmark = pytest.mark.anvil

U = 10**6
PG_URL = os.environ.get("ESCROWKIT_TEST_POSTGRES_URL")


@pytest.fixture(scope="module")
def node() -> Iterator[Chain]:
    with Chain.anvil(mining="auto") as chain:  # other processes send: automine
        yield chain


def new_key(project: Project, *args: str) -> str:
    return str(json.loads(cli(project, "keys", "create", *args, "--json"))["key"])


def spend_many(
    url: str, key: str, provider: str, amounts: list[int], batch: str = "a"
) -> list[dict[str, Any]]:
    with httpx.Client(base_url=url, headers=bearer(key), timeout=60) as http:
        return [
            http.post(
                "/v1/spends",
                json={"amount": amount, "provider": provider, "purpose": f"n{n}"},
                headers={"Idempotency-Key": f"{batch}-{n}"},
            ).json()
            for n, amount in enumerate(amounts)
        ]


def two_agents_and_an_approver(project: Project, urls: list[str]) -> None:
    """research and data spend at once (through ``urls`` in turn), each asks once above
    its threshold; the approver approves one and rejects the other (through the last
    url); the report of every url equals the chain."""
    accounts = project.chain.accounts
    provider = accounts[6]
    research = new_key(project, "--agent", "research")
    data = new_key(project, "--agent", "data")
    approver = new_key(project, "--role", "approver", "--name", "ops")
    amounts = [10 * U, 20 * U, 5 * U, 60 * U, 15 * U, 25 * U]
    with ThreadPoolExecutor(2) as pool:
        results = list(
            pool.map(
                lambda job: spend_many(urls[job[0] % len(urls)], job[1], provider, amounts),
                enumerate((research, data)),
            )
        )
    for outcome in results:
        assert [r["status"] for r in outcome] == ["APPROVED"] * 3 + ["PENDING_APPROVAL"] + [
            "APPROVED"
        ] * 2, outcome
    with httpx.Client(base_url=urls[-1], headers=bearer(approver), timeout=60) as http:
        pending = http.get("/v1/approvals?status=pending").json()["data"]
        assert len(pending) == 2
        first, second = sorted(pending, key=lambda a: a["agent_id"])
        approved = http.post(f"/v1/approvals/{first['approval_id']}/approve").json()
        assert approved["status"] == "APPROVED" and approved["escrow_id"]
        rejected = http.post(
            f"/v1/approvals/{second['approval_id']}/reject", json={"reason": "no"}
        ).json()
        assert rejected["status"] == "REJECTED" and rejected["decided_by"] == "ops"
        spends = http.get("/v1/spends?limit=100").json()["data"]
    assert len(spends) == 11
    for url in urls:
        with httpx.Client(base_url=url, headers=bearer(approver)) as http:
            report = http.get("/v1/report").json()
        assert_report_matches_chain(report, spends, project.stack)
        assert int(report["by_agent"]["research"]["spent"]) + int(
            report["by_agent"]["data"]["spent"]
        ) == int(report["total_spent"])


def test_two_agents_spend_over_http_and_the_report_matches_the_chain(
    node: Chain, tmp_path: Path
) -> None:
    project = make_project(tmp_path, node, f"sqlite:///{tmp_path / 'ledger.db'}")
    service = Service(project)
    try:
        two_agents_and_an_approver(project, [service.url])
    finally:
        log = service.stop()
    assert "ek_agent_" not in log and "ek_approver_" not in log


@pytest.mark.skipif(not PG_URL, reason="set ESCROWKIT_TEST_POSTGRES_URL")
def test_two_service_processes_on_one_postgresql_ledger(node: Chain, tmp_path: Path) -> None:
    assert PG_URL is not None
    store = Store(PG_URL)
    with store.engine.begin() as conn:  # a clean slate
        metadata.drop_all(conn)
        conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
    store.close()
    node.nonces.resync()
    project = make_project(tmp_path, node, PG_URL)
    accounts = node.accounts
    first = Service(project, project.settings_for("one", treasury=accounts[0]))
    second = Service(project, project.settings_for("two", treasury=accounts[1]))
    try:
        two_agents_and_an_approver(project, [first.url, second.url])
        # A key revoked through the CLI fails at once on both processes.
        admin = new_key(project, "--role", "admin")
        keys = json.loads(cli(project, "keys", "list", "--json"))
        admin_id = next(k["id"] for k in keys if k["role"] == "admin")
        assert httpx.get(f"{second.url}/v1/report", headers=bearer(admin)).status_code == 200
        cli(project, "keys", "revoke", admin_id)
        for service in (first, second):
            assert httpx.get(f"{service.url}/v1/report", headers=bearer(admin)).status_code == 401
    finally:
        first.stop()
        second.stop()


def test_mcp_on_stdio_end_to_end(node: Chain, tmp_path: Path) -> None:
    import anyio
    from mcp.client import Client
    from mcp.client.stdio import StdioServerParameters

    node.nonces.resync()
    project = make_project(tmp_path, node, f"sqlite:///{tmp_path / 'ledger.db'}")
    key = new_key(project, "--agent", "research")
    provider = node.accounts[6]
    env = {k: v for k, v in os.environ.items() if k != "ESCROWKIT_CONFIG"}
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "escrowkit.cli", "--config", str(project.config), "mcp"],
        env={**env, "ESCROWKIT_AGENT_KEY": key},
    )

    async def session() -> tuple[set[str], dict[str, Any], dict[str, Any]]:
        async with Client(params) as client:
            names = {t.name for t in (await client.list_tools()).tools}
            spent = await client.call_tool(
                "request_spending", {"amount": "12.5", "provider": provider, "purpose": "mcp"}
            )
            denied = await client.call_tool(
                "request_spending", {"amount": "150", "provider": provider, "purpose": "big"}
            )
            return names, spent.structured_content or {}, denied.structured_content or {}

    names, spent, denied = anyio.run(session)
    assert "approve_spending" not in names and "request_spending" in names
    assert spent["status"] == "APPROVED"
    record = project.stack.escrow.get(spent["escrow_id"])
    assert (record.amount, record.provider) == (12_500_000, provider)
    assert (denied["status"], denied["code"]) == ("DENIED", "per_transaction_limit")


@pytest.mark.slow  # about 25 s: two service starts and a backoff
def test_webhooks_across_a_restart_lose_nothing_and_repeat_nothing(
    node: Chain, tmp_path: Path
) -> None:
    node.nonces.resync()
    receiver = Receiver()
    hook = f'\n[[service.webhooks]]\nurl = "{receiver.url}"\nsecret = "whsec_live"\n'
    project = make_project(tmp_path, node, f"sqlite:///{tmp_path / 'ledger.db'}", hook)
    key = new_key(project, "--agent", "research")
    provider = node.accounts[6]
    try:
        service = Service(project)
        time.sleep(1.0)  # the endpoint's cursor starts where the outbox is now
        spend_many(service.url, key, provider, [1 * U, 2 * U])
        wait_until(lambda: len(receiver.delivered()) == 2)
        receiver.failing = True  # the endpoint goes down: what follows stays queued
        spend_many(service.url, key, provider, [3 * U, 4 * U], batch="b")
        wait_until(lambda: len(receiver.attempts) >= 3)
        service.stop()
        receiver.failing = False
        service = Service(project)  # a new process picks up from the ledger's cursor
        try:
            wait_until(lambda: len(receiver.delivered()) == 4, timeout=30)
            time.sleep(1.0)
        finally:
            service.stop()
    finally:
        receiver.close()
    delivered = receiver.delivered()
    assert [d["data"]["amount"] for d in delivered] == [str(n * U) for n in (1, 2, 3, 4)]
    ids = [d["id"] for d in delivered]
    assert ids == sorted(set(ids))  # each once, in order, across the restart
    for headers, body, _ in receiver.attempts:
        assert verify_signature("whsec_live", headers, body)


def wait_until(check: Any, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
