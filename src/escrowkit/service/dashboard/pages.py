"""The dashboard's routes (DESIGN.md section 10): the page at ``/`` (the login form when
there is no session), ``POST /login`` and ``POST /logout``, the page's own assets, and
``GET /dashboard/state``, the one document the page draws from.

The key goes in a POST body only, never a URL; a wrong key and an agent key are refused
with a message and a machine-readable code (``data-code`` on the message, and the
``X-Escrowkit-Code`` header); the session cookie is HttpOnly and SameSite=Strict. The
page's actions are the API's own endpoints (``/v1/approvals/…``, ``/v1/escrows/…``),
called with the session cookie and its CSRF token.
"""

from __future__ import annotations

import html
from importlib import resources
from typing import Annotated, Any
from urllib.parse import parse_qs, urlsplit

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from escrowkit.coordinator import ApiKey
from escrowkit.service import queries
from escrowkit.service.auth import require
from escrowkit.service.backend import Backend
from escrowkit.service.dashboard.sessions import COOKIE, ROLES, Sessions
from escrowkit.service.dashboard.state import build_state

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

#: The page's own files (package data), and their types.
ASSETS = {
    "dashboard.css": "text/css; charset=utf-8",
    "dashboard.js": "text/javascript; charset=utf-8",
}
#: Nothing but the page's own files; no framing; no referrer to other sites.
HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
#: Login outcomes: (status, code, message).
KEY_MISSING = (400, "key_missing", "Enter an approver or admin key.")
KEY_UNKNOWN = (401, "key_unknown", "That key is not a live key of this ledger (wrong or revoked).")
AGENT_REFUSED = (
    403,
    "agent_key_refused",
    "An agent key cannot sign in here: use an approver or admin key "
    "(escrowkit keys create --role approver).",
)
CROSS_SITE = (403, "cross_site_request", "This form must be sent from the dashboard itself.")
MAX_FORM = 4_096


def _asset(name: str) -> str:
    return resources.files(__package__).joinpath("static", name).read_text("utf-8")


def _page(name: str, values: dict[str, str], status: int = 200, code: str = "") -> Response:
    text = _asset(name)
    for field, value in values.items():
        text = text.replace("{{" + field + "}}", html.escape(value, quote=True))
    headers = dict(HEADERS)
    if code:
        headers["X-Escrowkit-Code"] = code
    return Response(text, status, headers=headers, media_type="text/html; charset=utf-8")


def _login(outcome: tuple[int, str, str] | None = None) -> Response:
    status, code, message = outcome or (200, "", "")
    return _page("login.html", {"message": message, "code": code}, status, code)


def _sessions(request: Request) -> Sessions:
    found: Sessions = request.app.state.session_key
    return found


def _backend(request: Request) -> Backend:
    found: Backend = request.app.state.backend
    return found


def _same_origin(request: Request) -> bool:
    """A form post from another site is refused (the browser says where it came from:
    ``Sec-Fetch-Site``, else ``Origin``; a client that sends neither is no browser)."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site in ("same-origin", "none")
    origin = request.headers.get("origin")
    if origin is None:
        return True
    return urlsplit(origin).netloc == request.headers.get("host", "")


async def _form(request: Request) -> dict[str, str]:
    body = await request.body()
    if len(body) > MAX_FORM:
        return {}
    fields = parse_qs(body.decode("utf-8", "replace"), max_num_fields=10)
    return {name: values[0] for name, values in fields.items()}


@router.get("/")
async def index(request: Request) -> Response:
    found = await _sessions(request).key_of(request)
    if found is None:
        return _login()
    key, session = found
    values = {"csrf": session.csrf, "name": key.label, "role": key.role}
    return _page("dashboard.html", values)


@router.post("/login")
async def login(request: Request) -> Response:
    if not _same_origin(request):
        return _login(CROSS_SITE)
    secret = (await _form(request)).get("key", "").strip()
    if not secret:
        return _login(KEY_MISSING)
    key = await _backend(request).authenticate(secret)
    if key is None:
        return _login(KEY_UNKNOWN)
    if key.role not in ROLES:
        return _login(AGENT_REFUSED)
    sessions = _sessions(request)
    sessions.close(request.cookies.get(COOKIE))  # a new session, never the old one again
    token, _ = sessions.open(key)
    response = RedirectResponse("/", status_code=303, headers=HEADERS)
    response.set_cookie(
        COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    sessions = _sessions(request)
    found = await sessions.key_of(request)
    form = await _form(request)
    if found is not None and _same_origin(request) and form.get("csrf") == found[1].csrf:
        sessions.close(request.cookies.get(COOKIE))
    response = RedirectResponse("/", status_code=303, headers=HEADERS)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response


@router.get("/dashboard/static/{name}")
async def asset(name: str) -> Response:
    if name not in ASSETS:
        return JSONResponse(
            {"error": {"type": "invalid_request_error", "code": "not_found", "message": name}},
            404,
        )
    headers = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
    return Response(_asset(name), headers=headers, media_type=ASSETS[name])


@router.get("/dashboard/state")
async def state(request: Request, key: Annotated[ApiKey, Depends(require(*ROLES))]) -> JSONResponse:
    """The page's document (approver and admin keys, or their sessions)."""
    backend = _backend(request)
    scopes = await queries.balances(backend, key)
    document: dict[str, Any] = await backend.call(build_state, backend.coordinator, key, scopes)
    return JSONResponse(document, headers={"Cache-Control": "no-store"})
