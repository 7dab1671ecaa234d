"""Dashboard sessions: a person signs in with an approver or admin key once, and the
browser then holds an HTTP-only, SameSite=Strict cookie instead of the key.

A session is a random token (the cookie's value) that stands for a key's public id, kept
in this process's memory with a CSRF token of its own. Every request through a session
reads the key again (a key revoked meanwhile ends its sessions at once), and every
state-changing one must carry the CSRF token in ``X-CSRF-Token`` (or the form's
``csrf`` field for logout). The key itself is never stored, logged or put in a URL.
Sessions are per process: behind several service processes, sign in on each (or keep a
browser on one).
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Request

from escrowkit.coordinator import ApiKey
from escrowkit.service.backend import Backend
from escrowkit.service.errors import ApiError

__all__ = ["COOKIE", "CSRF_HEADER", "Session", "Sessions"]

#: The session cookie's name.
COOKIE = "escrowkit_session"
#: The header that carries a session's CSRF token on POST, PUT and DELETE.
CSRF_HEADER = "X-CSRF-Token"
#: A session ends this long after its last use (seconds).
IDLE = 8 * 3600
#: The roles that may sign in (agents use their keys directly).
ROLES = ("approver", "admin")
_SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


@dataclass
class Session:
    key_id: str
    csrf: str
    last_used: float


class Sessions:
    """The open sessions of one process."""

    def __init__(self, backend: Backend, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.backend = backend
        self.clock = clock
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def open(self, key: ApiKey) -> tuple[str, Session]:
        """A new session for ``key``: its token (the cookie) and the session."""
        token = secrets.token_urlsafe(32)
        session = Session(key.id, secrets.token_urlsafe(24), self.clock())
        with self._lock:
            self._expire()
            self._sessions[token] = session
        return token, session

    def close(self, token: str | None) -> None:
        if token:
            with self._lock:
                self._sessions.pop(token, None)

    def get(self, token: str | None) -> Session | None:
        """The live session of ``token`` (its idle time restarts), else None."""
        if not token:
            return None
        now = self.clock()
        with self._lock:
            session = self._sessions.get(token)
            if session is None or now - session.last_used > IDLE:
                self._sessions.pop(token, None)
                return None
            session.last_used = now
            return session

    def _expire(self) -> None:
        now = self.clock()
        for token in [t for t, s in self._sessions.items() if now - s.last_used > IDLE]:
            del self._sessions[token]

    async def key_of(self, request: Request) -> tuple[ApiKey, Session] | None:
        """The live key and session of ``request``'s cookie, else None."""
        session = self.get(request.cookies.get(COOKIE))
        if session is None:
            return None
        coordinator = self.backend.coordinator
        try:
            key = await self.backend.call(coordinator.api_keys.get, session.key_id)
        except Exception:  # a key that is gone (NotFound) or a ledger away: no session
            return None
        if key.revoked or key.role not in ROLES:
            self.close(request.cookies.get(COOKIE))
            return None
        return key, session

    async def __call__(self, request: Request) -> ApiKey | None:
        """The key a request's session stands for (the hook of :mod:`..auth`); a
        state-changing request without the session's CSRF token is refused."""
        found = await self.key_of(request)
        if found is None:
            return None
        key, session = found
        if request.method not in _SAFE_METHODS:
            sent = request.headers.get(CSRF_HEADER, "")
            if not hmac.compare_digest(sent.encode(), session.csrf.encode()):
                raise ApiError(
                    403,
                    "csrf_token_invalid",
                    f"a dashboard action needs its session's {CSRF_HEADER} header; reload the page",
                )
        return key
