"""The service's ASGI app (FastAPI) over one coordinator: every endpoint of DESIGN.md
section 9, the event hub behind ``/v1/events``, the webhook deliveries, ``/mcp`` and the
dashboard at ``/`` (section 10).

``create_app(coordinator)`` builds it; the caller owns the coordinator (opens and closes
it). Run it with uvicorn (``escrowkit serve`` does), or in-process with httpx's
``ASGITransport`` or FastAPI's ``TestClient``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.routing import Route

from escrowkit.service import fast_spends
from escrowkit.service.backend import Backend
from escrowkit.service.dashboard import install_dashboard
from escrowkit.service.errors import install_error_handlers
from escrowkit.service.events import EventHub
from escrowkit.service.mcp_http import McpEndpoint
from escrowkit.service.metrics import Metrics, MetricsMiddleware
from escrowkit.service.models import EventOut
from escrowkit.service.openapi import install_openapi
from escrowkit.service.routes import admin, approvals, escrows, events, reads, spends, system
from escrowkit.service.strict import SingleQueryValues
from escrowkit.service.webhooks import Retry, WebhookDeliverer

if TYPE_CHECKING:
    from escrowkit.config.settings import WebhookSettings
    from escrowkit.coordinator import BudgetCoordinator

__all__ = ["create_app"]

DESCRIPTION = """\
Agents in any language spend from one treasury through this API, each with its own key
(`Authorization: Bearer ek_agent_…`). A denial is a decision, not an error: `POST
/v1/spends` answers 200 with `status` and `code`. Amounts are strings of base units in
responses and a JSON integer or a string of base units in requests; times are UTC
seconds. Lists are `{"data": [...], "next": cursor}` (pass `after=<cursor>`). Errors are
`{"error": {"type", "code", "message"}}`. Events stream from `/v1/events`; the Model
Context Protocol is served at `/mcp` (streamable HTTP, agent keys).
"""


def create_app(
    coordinator: BudgetCoordinator,
    *,
    webhooks: Sequence[WebhookSettings] = (),
    host: str = "127.0.0.1",
    retry: Retry | None = None,
    events_poll: float = 0.2,
    threads: int = 64,
) -> FastAPI:
    """The service over ``coordinator``. ``webhooks``: the settings' endpoints;
    ``host``: where it listens (loopback turns on MCP's DNS-rebinding protection);
    ``retry``: webhook backoff; ``threads``: coordinator calls at once."""
    metrics = Metrics()
    backend = Backend(coordinator, threads=threads, on_decision=metrics.decided)
    hub = EventHub(backend, poll=events_poll)
    mcp = McpEndpoint(backend, host=host)
    deliverer = WebhookDeliverer(backend, tuple(webhooks), metrics, retry=retry)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with mcp.lifespan():
            backend.adopt(asyncio.get_running_loop())
            tasks = [asyncio.create_task(hub.run(), name="escrowkit-events")]
            if webhooks:
                tasks.append(asyncio.create_task(deliverer.run(), name="escrowkit-webhooks"))
            try:
                yield
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                backend.close(wait=False)

    app = FastAPI(
        title="escrowkit",
        version=_version(),
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.backend, app.state.metrics, app.state.hub = backend, metrics, hub
    app.state.mcp, app.state.deliverer = mcp, deliverer
    install_error_handlers(app)
    for module in (spends, approvals, escrows, reads, admin, events, system):
        app.include_router(module.router)
    install_dashboard(app, backend)
    app.router.routes.append(Route("/mcp", endpoint=mcp, methods=["GET", "POST", "DELETE"]))
    install_openapi(app, extra=(EventOut,))
    spend_route = next(
        r
        for r in spends.router.routes
        if isinstance(r, APIRoute) and r.path == fast_spends.PATH and "POST" in (r.methods or ())
    )
    app.add_middleware(fast_spends.FastSpends, backend=backend, route=spend_route)
    app.add_middleware(SingleQueryValues)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app


def _version() -> str:
    import escrowkit

    return str(escrowkit.__version__)


def routes_of(app: FastAPI) -> list[Any]:
    """The API's routes (for tests and the OpenAPI document)."""
    return [route for route in app.routes if isinstance(route, APIRoute)]
