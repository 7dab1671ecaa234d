"""The Model Context Protocol door: an LLM agent spends through tools.

The tools act as one agent only, the one whose key is presented: on stdio
(``escrowkit mcp``) the key in ``ESCROWKIT_AGENT_KEY``, over HTTP (``/mcp`` on the
service) the request's bearer key. Either is checked against the ledger on every call,
so a revoked key stops at once. Results are structured (the HTTP API's shapes, with
``code``); a denial or a wait for approval is a normal result, not a tool error;
malformed input is a tool error whose text names the field. There is no tool that
approves: approvals belong to people (HTTP, dashboard, CLI), so an agent cannot approve
its own spend.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from escrowkit.coordinator import ApiKey
from escrowkit.core.units import parse_units
from escrowkit.errors import EscrowKitError, InvalidRequest
from escrowkit.service import models as m
from escrowkit.service import queries, wire
from escrowkit.service.backend import Backend
from escrowkit.service.errors import ApiError, for_exception
from escrowkit.service.routes.spends import spend_request

__all__ = ["INSTRUCTIONS", "TOOLS", "AgentTools", "WhoAsks", "build_mcp"]

T = TypeVar("T")

#: How a tool call learns its agent's key (None: no live agent key).
WhoAsks = Callable[[Context], Awaitable[ApiKey | None]]

INSTRUCTIONS = (
    "Spend from a shared treasury as one agent. request_spending asks to pay a provider; "
    "the answer's status is APPROVED (an escrow is funded on-chain), DENIED (code names "
    "the limit), PENDING_APPROVAL (a person must approve; poll get_spend or list_my_spends "
    'later) or FAILED. Amounts you send are token units ("25.50"); amounts in results are '
    "base units (strings). Use an idempotency_key when you may retry."
)


def _refusal(exc: Exception, field: str | None = None) -> ToolError:
    """A tool error the model can act on (the HTTP code first, then the sentence)."""
    error = exc if isinstance(exc, ApiError) else for_exception(exc)
    where = f"{field}: " if field and isinstance(exc, InvalidRequest) else ""
    return ToolError(f"{error.code}: {where}{error.message}")


def build_mcp(backend: Backend, who: WhoAsks) -> MCPServer:
    """An MCP server whose tools act as the agent ``who`` names for each call."""
    # MCPServer configures the root logger when nothing has (logging.basicConfig at INFO,
    # with a rich handler): a library must leave the application's logging alone.
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    server: MCPServer = MCPServer("escrowkit", instructions=INSTRUCTIONS, log_level="WARNING")
    root.handlers[:], root.level = handlers, level
    tools = AgentTools(backend, who)
    for name in TOOLS:
        server.add_tool(getattr(tools, name))
    return server


#: The tools, in the order they are listed. None approves.
TOOLS = (
    "request_spending",
    "get_spend",
    "my_budget",
    "list_my_spends",
    "settle_escrow",
    "cancel_escrow",
)


class AgentTools:
    """The tools' bodies: each learns its agent from the key, never from its arguments."""

    def __init__(self, backend: Backend, who: WhoAsks) -> None:
        self.backend = backend
        self.who = who

    async def _key(self, ctx: Context) -> ApiKey:
        key = await self.who(ctx)
        if key is None or key.role != "agent" or key.agent_id is None:
            raise ToolError("unauthenticated: this server needs a live agent key")
        return key

    async def _run(self, ctx: Context, call: Callable[[ApiKey], Awaitable[T]]) -> T:
        key = await self._key(ctx)
        try:
            return await call(key)
        except ToolError:
            raise
        except (EscrowKitError, ApiError) as exc:
            raise _refusal(exc) from None

    async def request_spending(
        self,
        amount: str,
        provider: str,
        purpose: str,
        ctx: Context,
        category: str | None = None,
        workflow: str | None = None,
        idempotency_key: str | None = None,
    ) -> m.SpendResultOut:
        """Ask to pay ``provider`` (a checksummed 0x address) ``amount`` token units (a
        decimal string such as "25.50") for ``purpose``. ``category`` and ``workflow``
        charge those budgets too. The same ``idempotency_key`` with the same request
        returns the first answer, never a second payment. A denial is a result with
        status DENIED and a ``code``, not an error."""
        key = await self._key(ctx)
        try:
            units = parse_units(amount, self.backend.coordinator.units.decimals)
        except InvalidRequest as exc:
            raise _refusal(exc, "amount") from None
        assert key.agent_id is not None
        try:
            request = spend_request(
                key.agent_id, units, provider, purpose, category, workflow, idempotency_key
            )
            result = await self.backend.spend(request)
        except (EscrowKitError, ApiError) as exc:
            raise _refusal(exc) from None
        return wire.spend_result(result)

    async def get_spend(self, reservation_id: str, ctx: Context) -> m.SpendOut:
        """One of your spends by its reservation_id (from request_spending)."""

        async def one(key: ApiKey) -> m.SpendOut:
            return wire.spend(await queries.own_spend(self.backend, key, reservation_id))

        return await self._run(ctx, one)

    async def my_budget(self, ctx: Context) -> m.MeOut:
        """Your limits and what you have used today and this hour (base units)."""
        return await self._run(ctx, lambda key: queries.me(self.backend, key))

    async def list_my_spends(self, ctx: Context, limit: int = 20) -> m.SpendList:
        """Your spends, newest first (at most 100)."""

        async def page(key: ApiKey) -> m.SpendList:
            spends = self.backend.coordinator.spends
            found = await self.backend.call(spends, agent_id=key.agent_id, limit=limit)
            return m.SpendList(data=[wire.spend(r) for r in found.data], next=found.next)

        return await self._run(ctx, page)

    async def settle_escrow(self, escrow_id: str, ctx: Context) -> m.SpendOut:
        """Release one of your funded escrows to its provider (you got what you paid for)."""

        async def settle(key: ApiKey) -> m.SpendOut:
            row = await queries.own_escrow(self.backend, key, escrow_id)
            coordinator = self.backend.coordinator
            return wire.spend(await self.backend.call(coordinator.settle, row.escrow_id))

        return await self._run(ctx, settle)

    async def cancel_escrow(self, escrow_id: str, ctx: Context) -> m.SpendOut:
        """Cancel one of your escrows: an unfunded one at any time, a funded one only
        between its deadline and the end of its dispute window (the money comes back)."""

        async def cancel(key: ApiKey) -> m.SpendOut:
            row = await queries.own_escrow(self.backend, key, escrow_id)
            coordinator = self.backend.coordinator
            return wire.spend(await self.backend.call(coordinator.cancel, row.escrow_id))

        return await self._run(ctx, cancel)
