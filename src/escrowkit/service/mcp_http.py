"""``/mcp``: the MCP server over streamable HTTP, for agent keys (``Authorization:
Bearer ek_agent_…``), checked on every HTTP request.

Stateless (each request stands alone, answered as JSON), so that any of several service
processes behind one address can answer any request.
"""

from __future__ import annotations

from typing import Any

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import ASGIApp, Receive, Scope, Send

from escrowkit.coordinator import ApiKey
from escrowkit.service.backend import Backend
from escrowkit.service.errors import error_response
from escrowkit.service.mcp_server import build_mcp

__all__ = ["McpEndpoint", "key_of_request"]

_STATE_KEY = "escrowkit_key"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


async def key_of_request(ctx: Context) -> ApiKey | None:
    """The key :class:`McpEndpoint` checked for the HTTP request carrying this call."""
    request: Any = ctx.request_context.request
    state = getattr(request, "scope", {}).get("state", {})
    key = state.get(_STATE_KEY)
    return key if isinstance(key, ApiKey) else None


class McpEndpoint:
    """An ASGI app: checks the bearer key, then hands the request to the MCP transport."""

    def __init__(self, backend: Backend, *, host: str = "127.0.0.1") -> None:
        self.backend = backend
        self.server: MCPServer = build_mcp(backend, key_of_request)
        # DNS-rebinding protection where the service listens on loopback: a web page's
        # script cannot reach it through a name that resolves to 127.0.0.1.
        security = TransportSecuritySettings(
            enable_dns_rebinding_protection=host in LOOPBACK,
            allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*", "127.0.0.1", "localhost"],
            allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"],
        )
        self.app: ASGIApp = self.server.streamable_http_app(
            streamable_http_path="/mcp",
            stateless_http=True,
            json_response=True,
            transport_security=security,
        )

    def lifespan(self) -> Any:
        """The transport's task group: entered by the service's lifespan."""
        return self.server.session_manager.run()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope.get("headers") or [])
        scheme, _, secret = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
        key = None
        if scheme.lower() == "bearer" and secret:
            key = await self.backend.authenticate(secret.strip())
        if key is None:
            response = error_response(
                401,
                "unauthenticated",
                "send Authorization: Bearer <agent key>",
                {"WWW-Authenticate": "Bearer"},
            )
            await response(scope, receive, send)
            return
        if key.role != "agent":
            response = error_response(403, "forbidden", "MCP is for agent keys")
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})[_STATE_KEY] = key
        # The transport binds a session to its credential by this user.
        token = AccessToken(token=key.id, client_id=key.id, scopes=["agent"])
        scope["user"] = AuthenticatedUser(token)
        await self.app(scope, receive, send)
