"""Who is asking: the ``Authorization: Bearer <key>`` of every request but ``/healthz``,
``/openapi.json`` and the dashboard's page and login, checked against the ledger each
time, so that a revoked key fails at once, in every process.

The role rules of DESIGN.md section 9 are dependencies: :func:`caller` (any live key),
:func:`require` (one of some roles). An agent key acts only as its agent: routes take
the agent id from the key (``key.agent_id``), never from the request.

The dashboard signs people in with a session cookie instead: it sets
``app.state.session_key``, an async callable that returns the key a request's session
stands for (or None); it is asked only when there is no ``Authorization`` header.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from escrowkit.coordinator import ApiKey
from escrowkit.service.backend import Backend
from escrowkit.service.errors import ApiError

__all__ = ["Caller", "backend", "caller", "require"]

_bearer = HTTPBearer(
    auto_error=False,
    description="An API key made by `escrowkit keys create` (ek_agent_…, ek_approver_…, "
    "ek_admin_…).",
)

SessionKey = Callable[[Request], Awaitable[ApiKey | None]]


def backend(request: Request) -> Backend:
    """The app's :class:`~escrowkit.service.backend.Backend`."""
    found: Backend = request.app.state.backend
    return found


async def caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> ApiKey:
    """The live key of this request, else 401 (never saying which part was wrong)."""
    key: ApiKey | None = None
    if credentials is not None:
        key = await backend(request).authenticate(credentials.credentials)
    elif request.headers.get("authorization") is None:
        session: SessionKey | None = getattr(request.app.state, "session_key", None)
        if session is not None:
            key = await session(request)
    if key is None:
        raise ApiError(
            401,
            "unauthenticated",
            "send Authorization: Bearer <key> with a live API key (escrowkit keys create)",
            {"WWW-Authenticate": "Bearer"},
        )
    request.state.key = key
    return key


#: A route's parameter for the caller's key.
Caller = Annotated[ApiKey, Depends(caller)]


def require(*roles: str) -> Callable[[ApiKey], Awaitable[ApiKey]]:
    """A dependency that lets only keys of ``roles`` through (403 otherwise)."""
    allowed = ", ".join(roles)

    async def check(key: Caller) -> ApiKey:
        if key.role not in roles:
            raise ApiError(403, "forbidden", f"this needs a key of role {allowed}, not {key.role}")
        return key

    return check


def own_agent(key: ApiKey, agent_id: str | None) -> str | None:
    """The agent a listing may show: an agent key's own (asking for another's is a 404,
    as if it did not exist), else the one asked for (None: all)."""
    if key.role != "agent":
        return agent_id
    if agent_id is not None and agent_id != key.agent_id:
        raise ApiError(404, "not_found", f"no agent {agent_id!r} for this key")
    return key.agent_id
