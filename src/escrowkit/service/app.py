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
import gc
from collections.abc import AsyncIterator, Callable, Sequence
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

__all__ = ["create_app", "freeze_startup_heap"]

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
    freeze_heap: bool = False,
) -> FastAPI:
    """The service over ``coordinator``. ``webhooks``: the settings' endpoints;
    ``host``: where it listens (loopback turns on MCP's DNS-rebinding protection);
    ``retry``: webhook backoff; ``threads``: coordinator calls at once;
    ``freeze_heap``: for a process that runs only this app (``escrowkit serve``), see
    :func:`freeze_startup_heap`."""
    metrics = Metrics()
    backend = Backend(coordinator, threads=threads, on_decision=metrics.decided)
    hub = EventHub(backend, poll=events_poll)
    mcp = McpEndpoint(backend, host=host)
    deliverer = WebhookDeliverer(backend, tuple(webhooks), metrics, retry=retry)

    app = FastAPI(
        title="escrowkit",
        version=_version(),
        description=DESCRIPTION,
        lifespan=_lifespan(
            backend, hub, mcp, deliverer, webhooks=bool(webhooks), freeze_heap=freeze_heap
        ),
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


def _lifespan(
    backend: Backend,
    hub: EventHub,
    mcp: McpEndpoint,
    deliverer: WebhookDeliverer,
    *,
    webhooks: bool,
    freeze_heap: bool,
) -> Callable[[FastAPI], contextlib.AbstractAsyncContextManager[None]]:
    """The app's lifespan: the MCP transport, the pool as the loop's executor, the event
    hub and (with ``webhooks``) the deliveries run while it serves."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with mcp.lifespan():
            backend.adopt(asyncio.get_running_loop())
            tasks = [asyncio.create_task(hub.run(), name="escrowkit-events")]
            if webhooks:
                tasks.append(asyncio.create_task(deliverer.run(), name="escrowkit-webhooks"))
            if freeze_heap:
                freeze_startup_heap()
            try:
                yield
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                backend.close(wait=False)

    return lifespan


def freeze_startup_heap() -> None:
    """Move every object alive now out of the garbage collector's sight (``gc.freeze``,
    after a collection so that no garbage is kept).

    Once the service has started, about 170,000 objects (the classes, functions and
    schemas of FastAPI, pydantic, SQLAlchemy, web3 and MCP) live until the process
    ends, and each full collection walked all of them: 55 ms on a 2-core machine, about
    every 1,500 decisions under load, a pause that every request in flight waited out
    (it was the whole of the service's p99). Frozen, a full collection walks only what
    the requests allocate. The cost: a reference cycle among the frozen objects that
    becomes garbage later is never collected (objects without cycles are still freed)."""
    gc.collect()
    gc.freeze()


def _version() -> str:
    import escrowkit

    return str(escrowkit.__version__)


def routes_of(app: FastAPI) -> list[Any]:
    """The API's routes (for tests and the OpenAPI document)."""
    return [route for route in app.routes if isinstance(route, APIRoute)]
