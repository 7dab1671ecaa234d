"""The doors for agents in other processes: ``serve`` (HTTP API, webhooks, MCP at /mcp)
and ``mcp`` (MCP on stdio for one agent). The service is imported only here, so that
``escrowkit --help`` stays fast."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from escrowkit.cli.options import open_chain, open_settings
from escrowkit.cli.render import err_console


def serve(
    host: Annotated[
        str | None,
        typer.Option(help="Address to listen on (default 127.0.0.1, or [service].host)."),
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Port (default 8700, or [service].port).")
    ] = None,
    access_log: Annotated[bool, typer.Option(help="Log every request (path and status).")] = False,
) -> None:
    """Serve the HTTP API for agents' keys (OpenAPI at /openapi.json, MCP at /mcp)."""
    from escrowkit.config import bootstrap
    from escrowkit.service.runner import serve as run

    settings = open_settings()
    chain = open_chain(settings)
    coordinator = bootstrap.open_coordinator(settings, chain)
    host = host or settings.service.host
    port = port or settings.service.port
    hooks = settings.service.webhooks
    err_console.print(
        f"escrowkit service on http://{host}:{port} ({coordinator.mode} mode, "
        f"{len(hooks)} webhook{'s' if len(hooks) != 1 else ''}); Ctrl-C stops",
        highlight=False,
    )
    with coordinator:
        run(coordinator, host=host, port=port, webhooks=hooks, access_log=access_log)


def mcp() -> None:
    """Serve MCP on stdio for the agent whose key is in ESCROWKIT_AGENT_KEY."""
    from escrowkit.config import bootstrap
    from escrowkit.core.errors import ConfigurationError
    from escrowkit.service.runner import AGENT_KEY_VARIABLE, serve_mcp_stdio

    settings = open_settings()
    if settings.keystore is not None and not os.environ.get("ESCROWKIT_KEYSTORE_PASSWORD"):
        # stdin is the protocol's: there is no prompt to ask on.
        raise ConfigurationError("set ESCROWKIT_KEYSTORE_PASSWORD: `escrowkit mcp` cannot prompt")
    chain = bootstrap.open_chain(settings, password=os.environ.get("ESCROWKIT_KEYSTORE_PASSWORD"))
    coordinator = bootstrap.open_coordinator(settings, chain)
    with coordinator:
        serve_mcp_stdio(coordinator, os.environ.get(AGENT_KEY_VARIABLE))
