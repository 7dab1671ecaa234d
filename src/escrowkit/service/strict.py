"""Refuse an API request that repeats a query parameter.

Every query parameter of ``/v1/`` takes one value. Starlette keeps the last of repeated
ones (``?agent=a&agent=b`` reads as ``b``), so a client that meant a list would get an
answer to another question; the API refuses it instead, with the one error object.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send

from escrowkit.service.errors import error_response

__all__ = ["SingleQueryValues"]


class SingleQueryValues:
    """ASGI middleware: 400 ``invalid_request`` when a ``/v1/`` query repeats a name."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/v1/"):
            repeated = _repeated(scope.get("query_string", b""))
            if repeated:
                message = f"{repeated}: give each query parameter once"
                await error_response(400, "invalid_request", message)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _repeated(query: bytes) -> str | None:
    """The first name that ``query`` gives more than once, else None."""
    seen: set[str] = set()
    for name, _ in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        if name in seen:
            return name
        seen.add(name)
    return None
