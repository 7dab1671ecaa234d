"""MCP in-process, through the SDK's own client: the tools of DESIGN.md section 9 act as
the key's agent only; a denial is a structured result with its code; malformed input is
a tool error naming the field; there is no approve tool; over HTTP, ``/mcp`` takes
agent keys only."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from mcp.client import Client
from mcp.server.mcpserver import Context
from service_helpers import PROVIDER, Keys, LiveServer, bearer

from escrowkit.coordinator import ApiKey, BudgetCoordinator
from escrowkit.service.app import create_app
from escrowkit.service.backend import Backend
from escrowkit.service.mcp_server import build_mcp

pytestmark = pytest.mark.anyio

TOOLS = {
    "request_spending",
    "get_spend",
    "my_budget",
    "list_my_spends",
    "settle_escrow",
    "cancel_escrow",
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def server_for(coordinator: BudgetCoordinator, secret: str) -> Any:
    backend = Backend(coordinator)

    async def who(_: Context) -> ApiKey | None:
        return await backend.authenticate(secret)

    return build_mcp(backend, who)


def structured(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content
    data: dict[str, Any] = result.structured_content
    return data


def error_text(result: Any) -> str:
    assert result.is_error, result
    return " ".join(getattr(c, "text", "") for c in result.content)


async def test_the_tools_spend_as_the_keys_agent(
    coordinator: BudgetCoordinator, keys: Keys
) -> None:
    async with Client(server_for(coordinator, keys.research)) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert names == TOOLS  # no tool approves
        spent = structured(
            await client.call_tool(
                "request_spending",
                {"amount": "25.50", "provider": PROVIDER, "purpose": "dataset"},
            )
        )
        assert spent["status"] == "APPROVED" and spent["code"] is None
        row = coordinator.reservation(spent["reservation_id"])
        assert (row.agent_id, row.amount) == ("research", 25_500_000)
        denied = structured(
            await client.call_tool(
                "request_spending", {"amount": "500", "provider": PROVIDER, "purpose": "big"}
            )
        )
        assert (denied["status"], denied["code"]) == ("DENIED", "per_transaction_limit")
        waiting = structured(
            await client.call_tool(
                "request_spending", {"amount": "80", "provider": PROVIDER, "purpose": "more"}
            )
        )
        assert (waiting["status"], waiting["code"]) == ("PENDING_APPROVAL", "approval_required")
        budget = structured(await client.call_tool("my_budget", {}))
        assert budget["agent_id"] == "research" and budget["spent_today"] == "25500000"
        listed = structured(await client.call_tool("list_my_spends", {"limit": 5}))
        assert [s["reservation_id"] for s in listed["data"]] == [spent["reservation_id"]]
        one = structured(
            await client.call_tool("get_spend", {"reservation_id": spent["reservation_id"]})
        )
        assert one["status"] == "COMMITTED"
        settled = structured(
            await client.call_tool("settle_escrow", {"escrow_id": spent["escrow_id"]})
        )
        assert settled["status"] == "SETTLED"


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"amount": "25,5", "provider": PROVIDER, "purpose": "x"}, "amount"),
        ({"amount": "-1", "provider": PROVIDER, "purpose": "x"}, "amount"),
        ({"amount": "1", "provider": "0xnope", "purpose": "x"}, "provider"),
        ({"amount": "1", "provider": PROVIDER}, "purpose"),
        ({"amount": 25, "provider": PROVIDER, "purpose": "x"}, "amount"),
    ],
)
async def test_malformed_input_is_a_tool_error_naming_the_field(
    coordinator: BudgetCoordinator, keys: Keys, arguments: dict[str, Any], field: str
) -> None:
    async with Client(server_for(coordinator, keys.research)) as client:
        text = error_text(await client.call_tool("request_spending", arguments))
        assert field in text, text
    assert coordinator.reservations() == []


async def test_another_agents_spend_and_a_revoked_key(
    coordinator: BudgetCoordinator, keys: Keys
) -> None:
    async with Client(server_for(coordinator, keys.data)) as client:
        theirs = structured(
            await client.call_tool(
                "request_spending", {"amount": "5", "provider": PROVIDER, "purpose": "x"}
            )
        )
    async with Client(server_for(coordinator, keys.research)) as client:
        missing = await client.call_tool("get_spend", {"reservation_id": theirs["reservation_id"]})
        assert "not_found" in error_text(missing)
        steal = await client.call_tool("settle_escrow", {"escrow_id": theirs["escrow_id"]})
        assert "not_found" in error_text(steal)
        key = coordinator.api_keys.authenticate(keys.research)
        assert key is not None
        coordinator.api_keys.revoke(key.id)
        gone = await client.call_tool("my_budget", {})
        assert "unauthenticated" in error_text(gone)


@pytest.fixture
def live_url(coordinator: BudgetCoordinator, keys: Keys) -> Iterator[str]:
    with LiveServer(create_app(coordinator)) as url:
        yield url


async def test_mcp_over_http_takes_agent_keys_only(live_url: str, keys: Keys) -> None:
    headers = bearer(keys.research)
    async with (
        httpx2.AsyncClient(headers=headers) as http,
        Client(streamable_http_transport(f"{live_url}/mcp", http)) as client,
    ):
        spent = structured(
            await client.call_tool(
                "request_spending", {"amount": "1", "provider": PROVIDER, "purpose": "http"}
            )
        )
        assert spent["status"] == "APPROVED"
    async with httpx2.AsyncClient() as http:
        for key, status in ((None, 401), (keys.admin, 403), ("ek_agent_x", 401)):
            sent = {} if key is None else bearer(key)
            response = await http.post(f"{live_url}/mcp", json={}, headers=sent)
            assert response.status_code == status


def streamable_http_transport(url: str, http: Any) -> Any:
    from mcp.client.streamable_http import streamable_http_client

    return streamable_http_client(url, http_client=http)
