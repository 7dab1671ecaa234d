"""One error object for every refusal: ``{"error": {"type", "code", "message"}}``.

The library's exceptions map to statuses here, in one place (DESIGN.md section 9): 400
``invalid_request``, 401 ``unauthenticated``, 403 ``forbidden``, 404 ``not_found``, 409
``idempotency_key_mismatch`` / ``idempotency_key_in_use`` (with ``Retry-After``) /
``approval_closed`` / ``contract_revert``, 503 ``unavailable``. Anything else is a 500
``internal_error`` whose message says nothing of the cause (it goes to the log).
Messages never hold a key: the ``Authorization`` header is never echoed, and validation
errors name the field without repeating its value.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from escrowkit.errors import (
    ApprovalClosed,
    ChainError,
    ContractRevert,
    EscrowKitError,
    IdempotencyKeyInUse,
    IdempotencyKeyMismatch,
    InvalidRequest,
    NotFound,
    redact_secrets,
)

__all__ = [
    "ERROR_STATUSES",
    "ApiError",
    "error_response",
    "for_exception",
    "install_error_handlers",
    "responses",
]

logger = logging.getLogger(__name__)

#: Seconds a client should wait before retrying a request whose first is in flight.
RETRY_AFTER = "1"

_TYPES = {
    "unauthenticated": "authentication_error",
    "forbidden": "permission_error",
    "idempotency_key_mismatch": "idempotency_error",
    "idempotency_key_in_use": "idempotency_error",
    "unavailable": "api_error",
    "internal_error": "api_error",
}

#: Every status an endpoint may answer with, and what it means (for the OpenAPI document).
ERROR_STATUSES = {
    400: "invalid_request: malformed input (an unknown field, a wrong type, a bad address)",
    401: "unauthenticated: no key, or an unknown or revoked one",
    403: "forbidden: the key's role may not do this",
    404: "not_found: no such thing (or another agent's)",
    409: "idempotency_key_mismatch, idempotency_key_in_use (Retry-After), approval_closed, "
    "contract_revert",
    503: "unavailable: the chain or the database cannot be reached; retry",
}


class ApiError(Exception):
    """A refusal with its status and code."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = {
        "error": {
            "type": _TYPES.get(code, "invalid_request_error"),
            "code": code,
            "message": redact_secrets(message),
        }
    }
    return JSONResponse(body, status_code=status, headers=headers)


def for_exception(exc: BaseException) -> ApiError:
    """The refusal a library exception stands for."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, IdempotencyKeyMismatch):
        return ApiError(409, "idempotency_key_mismatch", str(exc))
    if isinstance(exc, IdempotencyKeyInUse):
        return ApiError(409, "idempotency_key_in_use", str(exc), {"Retry-After": RETRY_AFTER})
    if isinstance(exc, ApprovalClosed):
        return ApiError(409, "approval_closed", str(exc))
    if isinstance(exc, ContractRevert):
        return ApiError(409, "contract_revert", f"the escrow refused: {exc}")
    if isinstance(exc, NotFound):
        return ApiError(404, "not_found", str(exc))
    if isinstance(exc, InvalidRequest):
        return ApiError(400, "invalid_request", str(exc))
    if isinstance(exc, ChainError):
        return ApiError(503, "unavailable", f"the chain cannot be reached: {exc}")
    if type(exc).__name__ == "OperationalError":  # SQLAlchemy: the database is away or busy
        return ApiError(503, "unavailable", "the ledger's database cannot be reached; retry")
    if isinstance(exc, EscrowKitError):
        logger.error("refused with %s: %s", type(exc).__name__, exc)
        return ApiError(503, "unavailable", f"{type(exc).__name__}: {exc}")
    logger.error("internal error", exc_info=exc)
    return ApiError(500, "internal_error", "internal error (see the service's log)")


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def install_error_handlers(app: FastAPI) -> None:
    """Every refusal of ``app`` as the one error object."""

    async def on_error(request: Request, exc: Exception) -> JSONResponse:
        error = for_exception(exc)
        return error_response(error.status, error.code, error.message, error.headers)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        problems = [
            "the body is not valid JSON"
            if e.get("type") == "json_invalid"
            else f"{_field(tuple(e['loc']))}: {e['msg']}"
            for e in exc.errors()[:5]
        ]
        return error_response(400, "invalid_request", "; ".join(problems) or "invalid request")

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        codes = {401: "unauthenticated", 403: "forbidden", 404: "not_found"}
        code = codes.get(exc.status_code, "invalid_request")
        if exc.status_code == 405:
            code = "method_not_allowed"
        message = exc.detail if isinstance(exc.detail, str) else "refused"
        return error_response(exc.status_code, code, message, dict(exc.headers or {}) or None)

    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    # The library's refusals are answered where they are raised; only the rest (a bug, a
    # database that went away) reaches the outermost handler, which logs them.
    app.add_exception_handler(ApiError, on_error)
    app.add_exception_handler(EscrowKitError, on_error)
    app.add_exception_handler(Exception, on_error)


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` of a route that may refuse with ``statuses``."""
    from escrowkit.service.models import ErrorOut

    return {
        status: {"model": ErrorOut, "description": ERROR_STATUSES[status]} for status in statuses
    }
