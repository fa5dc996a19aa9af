"""Routes whose plain requests skip FastAPI's per-request dependency solving.

FastAPI answers a request by resolving the route's dependency tree afresh each time: for
decide, three nested ``solve_dependencies`` calls that look for query, header and cookie
parameters the route does not have, then the body through a generic field. That machinery
cost about as much CPU as planning the decision. A hot route here declares a *lean handler*
beside its endpoint: given the request, it either answers it or returns ``None``, and then
FastAPI's own handler answers instead.

The rule that keeps the two paths indistinguishable to clients: a lean handler has no side
effect before it has checked that FastAPI would accept the request as it stands (JSON content
type, a body that parses and validates, valid path parameters); whatever it does not
recognise (another content type, bad JSON, any validation error) goes to FastAPI untouched,
so every error keeps FastAPI's order and this service's bodies. The body read here is cached
on the request, so FastAPI reads the same bytes. Once accepted, the lean handler runs the
route's own checks (authentication) and then does what the endpoint does.

FastAPI's documented extension point for this is a custom :class:`~fastapi.routing.APIRoute`
whose ``get_route_handler`` returns a different handler; the route keeps its path, its
OpenAPI description and everything else.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from fastapi import Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel

__all__ = ["LeanHandler", "json_body", "lean_route"]

#: Answers a request, or returns None to leave it to FastAPI's own handler.
LeanHandler = Callable[[Request], Awaitable[Response | None]]

_Model = TypeVar("_Model", bound=BaseModel)


def lean_route(handler: LeanHandler) -> type[APIRoute]:
    """An :class:`APIRoute` class that tries ``handler`` first (``route_class_override``)."""

    class LeanRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Any]:
            general = super().get_route_handler()

            async def answer(request: Request) -> Response:
                if not request.app.dependency_overrides:  # overrides: FastAPI resolves them
                    lean = await handler(request)
                    if lean is not None:
                        return lean
                return await general(request)

            return answer

    LeanRoute.__qualname__ = LeanRoute.__name__ = f"LeanRoute[{handler.__name__}]"
    return LeanRoute


async def json_body(request: Request, model: type[_Model]) -> _Model | None:
    """The request's body as ``model`` when it is plain JSON that validates, else None.

    Only ``Content-Type: application/json`` is taken; FastAPI also parses ``+json`` types and
    answers every other case, errors included. The body is parsed by ``json.loads`` and
    validated from Python objects, as FastAPI does, so what is accepted here validates to the
    same model there.
    """
    if request.headers.get("content-type") != "application/json":
        return None
    body = await request.body()
    if not body:
        return None
    try:
        return model.model_validate(json.loads(body))
    except Exception:  # bad JSON or bytes, too deep, invalid: FastAPI says which, in its words
        return None
