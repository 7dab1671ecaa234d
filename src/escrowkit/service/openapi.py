"""The OpenAPI document says exactly what the service does, and request bodies are read
strictly.

FastAPI would document a 422 on every route, and answer malformed input with it; this
service answers 400 ``invalid_request`` with the one error object, so the 422s and their
schemas leave the document and each route lists the error statuses it can answer.
Bodies are parsed by pydantic's JSON parser, which refuses what Python's ``json`` lets
through (lone surrogates, which no database can store; ``NaN``). Unknown query
parameters are refused like unknown body fields.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

import pydantic_core
from fastapi import FastAPI, Request, Response
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from pydantic import BaseModel

__all__ = ["StrictJsonRoute", "install_openapi"]


class StrictJsonRequest(Request):
    """A request whose JSON body is parsed strictly."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            try:
                self._json = pydantic_core.from_json(body, allow_inf_nan=False)
            except ValueError as exc:
                raise json.JSONDecodeError(str(exc), body.decode("utf-8", "replace"), 0) from None
        return self._json


def _query_names(dependant: Any) -> set[str]:
    """The query parameters a route and its dependencies declare."""
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


class StrictJsonRoute(APIRoute):
    """A route that reads its body with :class:`StrictJsonRequest` and refuses query
    parameters it does not declare (as it refuses unknown body fields: a misspelt
    ``?stauts=pending`` must not quietly list everything)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        from escrowkit.service.errors import error_response

        handler = super().get_route_handler()
        known = _query_names(self.dependant)

        async def strict(request: Request) -> Response:
            unknown = sorted(set(request.query_params) - known)
            if unknown:
                names = ", ".join(repr(name) for name in unknown[:5])
                return error_response(400, "invalid_request", f"unknown query parameter {names}")
            return await handler(StrictJsonRequest(request.scope, request.receive))

        return strict


def install_openapi(app: FastAPI, extra: tuple[type[BaseModel], ...] = ()) -> None:
    """``app.openapi()`` (and ``/openapi.json``) without FastAPI's 422s; ``extra``: models
    no JSON response names but the document should define (an event stream's data, a
    webhook's body)."""

    def document() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            for path in schema.get("paths", {}).values():
                for operation in path.values():
                    operation.get("responses", {}).pop("422", None)
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for name in ("HTTPValidationError", "ValidationError"):
                components.pop(name, None)
            for model in extra:
                found = model.model_json_schema(
                    ref_template="#/components/schemas/{model}", mode="serialization"
                )
                components.update(found.pop("$defs", {}))
                components[model.__name__] = found
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = document  # type: ignore[method-assign]
