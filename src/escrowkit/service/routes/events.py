"""``/v1/events``: server-sent events (``decision``, ``approval``, ``alert``,
``escrow``), each with its outbox id; ``Last-Event-ID`` (or ``?after=``) resumes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from sse_starlette import EventSourceResponse, ServerSentEvent

from escrowkit.service import wire
from escrowkit.service.auth import Caller, backend
from escrowkit.service.backend import Backend
from escrowkit.service.errors import ApiError, responses
from escrowkit.service.events import EventHub
from escrowkit.service.openapi import StrictJsonRoute

__all__ = ["router"]

router = APIRouter(tags=["events"], route_class=StrictJsonRoute)

_STREAM: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "A text/event-stream: each message has ``id`` (the outbox id), "
        "``event`` (decision, approval, alert, escrow) and ``data``: an EventOut "
        "(#/components/schemas/EventOut) as JSON, the same body webhooks receive.",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    }
}


def _cursor(header: str | None, query: int | None) -> int | None:
    if header is None:
        return query
    if not header.isascii() or not header.isdigit() or len(header) > 18:
        raise ApiError(400, "invalid_request", "Last-Event-ID must be an event id (digits)")
    return int(header)


@router.get(
    "/v1/events",
    operation_id="stream_events",
    summary="Server-sent events (agent keys: their own)",
    response_class=EventSourceResponse,
    responses={**_STREAM, **responses(400, 401, 503)},
)
async def stream_events(
    request: Request,
    key: Caller,
    service: Annotated[Backend, Depends(backend)],
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    after: Annotated[
        int | None,
        Query(
            ge=0,
            le=2**62,
            description="Resume after this id (EventSource clients that cannot set Last-Event-ID).",
        ),
    ] = None,
) -> EventSourceResponse:
    hub: EventHub = request.app.state.hub
    cursor = _cursor(last_event_id, after)
    units = service.coordinator.units
    metrics = request.app.state.metrics

    async def messages() -> AsyncIterator[ServerSentEvent]:
        metrics.subscribers.inc()
        try:
            async for event in hub.stream(key, cursor):
                body = wire.event(event, units).model_dump_json()
                yield ServerSentEvent(data=body, event=event.type, id=str(event.id))
        finally:
            metrics.subscribers.dec()

    return EventSourceResponse(messages(), ping=10, send_timeout=30)
