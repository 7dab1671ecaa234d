"""Running the service: ``escrowkit serve`` (uvicorn) and ``escrowkit mcp`` (stdio)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from escrowkit.errors import ConfigurationError

if TYPE_CHECKING:
    from mcp.server.mcpserver import Context

    from escrowkit.config.settings import WebhookSettings
    from escrowkit.coordinator import ApiKey, BudgetCoordinator

__all__ = ["AGENT_KEY_VARIABLE", "serve", "serve_mcp_stdio"]

logger = logging.getLogger(__name__)

#: Where ``escrowkit mcp`` finds its agent's key (never on the command line, where any
#: user of the machine can read it).
AGENT_KEY_VARIABLE = "ESCROWKIT_AGENT_KEY"


def serve(
    coordinator: BudgetCoordinator,
    *,
    host: str,
    port: int,
    webhooks: tuple[WebhookSettings, ...] = (),
    access_log: bool = False,
) -> None:
    """Serve the HTTP API on ``host:port`` until SIGINT or SIGTERM (the process is the
    service's: its startup heap is frozen, see ``create_app``)."""
    import uvicorn

    from escrowkit.service.app import create_app

    app = create_app(coordinator, webhooks=webhooks, host=host, freeze_heap=True)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=access_log,
        lifespan="on",
        timeout_graceful_shutdown=5,
    )
    uvicorn.Server(config).run()


def serve_mcp_stdio(coordinator: BudgetCoordinator, secret: str | None) -> None:
    """Serve MCP on stdin/stdout as the agent whose key ``secret`` is."""
    import anyio

    from escrowkit.service.backend import Backend
    from escrowkit.service.mcp_server import build_mcp

    if not secret:
        raise ConfigurationError(
            f"set {AGENT_KEY_VARIABLE} to the agent's key (escrowkit keys create --agent ID)"
        )
    key = coordinator.api_keys.authenticate(secret)
    if key is None or key.role != "agent":
        raise ConfigurationError(f"{AGENT_KEY_VARIABLE} is not a live agent key")
    backend = Backend(coordinator)

    async def who(_: Context) -> ApiKey | None:
        # Checked on every call: a key revoked meanwhile stops the tools at once.
        return await backend.authenticate(secret)

    server = build_mcp(backend, who)
    logger.info("MCP on stdio for agent %s (key %s)", key.agent_id, key.id)
    anyio.run(server.run_stdio_async)
