"""``POST /v1/spends`` without FastAPI's per-request machinery, for the common case.

An agent's spend is the one request the service answers thousands of times a second.
Through FastAPI it costs about twice what the decision costs: routing, resolving the
dependencies (the key, the backend, the header), validating the body and the response
model again. This ASGI layer answers the plain case directly, with the same functions
the route uses (:func:`~escrowkit.service.routes.spends.spend_request`,
:func:`~escrowkit.service.wire.spend_result`, the key check, the error mapping), and
hands everything else to the app unchanged, body included: a query string, a missing or
non-bearer ``Authorization``, a repeated header, a body that is not JSON or not a
:class:`~escrowkit.service.models.SpendIn`, a key that is unknown, revoked or not an
agent's, a request the library refuses before deciding. So every refusal is written by
the route and its handlers, exactly as without this layer; only decisions (and the
library's refusals of a decision, mapped by :func:`~escrowkit.service.errors.for_exception`)
are answered here. The OpenAPI document still describes the route.
"""

from __future__ import annotations

from typing import Any

import pydantic_core
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from escrowkit.core.errors import EscrowKitError
from escrowkit.service import models as m
from escrowkit.service import wire
from escrowkit.service.backend import Backend
from escrowkit.service.errors import ApiError, error_response, for_exception
from escrowkit.service.routes.spends import spend_request

__all__ = ["PATH", "FastSpends"]

PATH = "/v1/spends"
_WANTED = {b"authorization", b"content-type", b"idempotency-key"}


class FastSpends:
    """ASGI middleware: the plain ``POST /v1/spends`` (see the module). ``route`` is the
    app's route for it, set in the scope as the router would (the metrics label by it)."""

    def __init__(self, app: ASGIApp, backend: Backend, route: Any) -> None:
        self.app = app
        self.backend = backend
        self.route = route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"] != PATH
            or scope["method"] != "POST"
            or scope.get("query_string")
        ):
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        messages = await _read_body(receive)
        last = messages[-1]
        if headers is not None and last["type"] == "http.request":
            body = b"".join(message.get("body", b"") for message in messages)
            response = await self._answer(scope, headers, body)
            if response is not None:
                await response(scope, receive, send)
                return
        await self.app(scope, _replay(messages, receive), send)

    async def _answer(
        self, scope: Scope, headers: dict[bytes, bytes], body: bytes
    ) -> Response | None:
        """The response, or None to leave the request to the route."""
        scheme, _, secret = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
        content_type = headers.get(b"content-type", b"").decode("latin-1")
        if scheme.lower() != "bearer" or not secret or not _is_json(content_type):
            return None
        try:
            parsed = m.SpendIn.model_validate(pydantic_core.from_json(body, allow_inf_nan=False))
        except ValueError:  # not JSON, or not a SpendIn (pydantic's errors are ValueErrors)
            return None
        key = await self.backend.authenticate(secret)
        if key is None or key.role != "agent" or key.agent_id is None:
            return None
        idempotency_key = headers.get(b"idempotency-key")
        try:
            request = spend_request(
                key.agent_id,
                parsed.amount,
                parsed.provider,
                parsed.purpose,
                parsed.category,
                parsed.workflow,
                None if idempotency_key is None else idempotency_key.decode("latin-1"),
            )
        except EscrowKitError:
            return None  # the route refuses it the same way
        scope["route"] = self.route
        try:
            result = await self.backend.spend(request)
        except (ApiError, EscrowKitError) as exc:
            error = for_exception(exc)
            return error_response(error.status, error.code, error.message, error.headers)
        out = wire.spend_result(result)
        return Response(out.model_dump_json(by_alias=True), media_type="application/json")


def _headers(scope: Scope) -> dict[bytes, bytes] | None:
    """The headers this layer reads, lower-cased; None when one of them is repeated."""
    found: dict[bytes, bytes] = {}
    for name, value in scope["headers"]:
        name = name.lower()
        if name in _WANTED:
            if name in found:
                return None
            found[name] = value
    return found


def _is_json(content_type: str) -> bool:
    return content_type.partition(";")[0].strip().lower() == "application/json"


async def _read_body(receive: Receive) -> list[Message]:
    """The client's messages up to the body's end (or the first that is not part of the
    body, a disconnect: the app then gets it too)."""
    messages = [await receive()]
    while messages[-1]["type"] == "http.request" and messages[-1].get("more_body", False):
        messages.append(await receive())
    return messages


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """``receive`` for the app: the messages already read, then the client's own."""
    queued = list(messages)

    async def replay() -> Message:
        if queued:
            return queued.pop(0)
        return await receive()

    return replay
