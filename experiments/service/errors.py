"""How the service answers errors: always JSON ``{"error": {"field": ..., "message": ...}}``.

400 (body is not parseable JSON), 401/403 (key), 404, 409, 413 (body too large), 415 (body not
sent as ``application/json``), 422 (invalid field), 429 (rate), 500 (a bug: logged without the
request's data) and 503 (database down, with Retry-After). :func:`errors_doc` documents them
per route in the OpenAPI schema; :func:`install_error_handlers` maps exceptions to them.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from experiments.errors import EngineError
from experiments.service.schemas import ErrorOut

logger = logging.getLogger("engage.service")

_ERROR_MEANINGS = {
    400: "The body is not parseable JSON (syntax, encoding, nesting).",
    401: "Missing, malformed, unknown or revoked API key.",
    403: "The API key lacks the scope this operation needs.",
    404: "Unknown experiment or decision.",
    409: "Conflicts with the current state (duplicate key, experiment not running).",
    413: "The body is larger than the server's limit.",
    415: "The body was not sent as application/json.",
    422: "A field is invalid; error.field names it.",
    429: "The API key is over its rate limit; see Retry-After.",
    503: "The database is unavailable; see Retry-After.",
}
#: Errors any authenticated operation can answer.
AUTHENTICATED = (401, 403, 429, 503)
#: Errors of operations that read a JSON body.
WITH_BODY = (400, 413, 415, 422)


def errors_doc(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route: each error status documented with the error body."""
    return {
        code: {"model": ErrorOut, "description": _ERROR_MEANINGS[code]} for code in sorted(codes)
    }


def _printable(text: str) -> str:
    """``text`` with lone surrogates escaped, so an error echoing input can be encoded."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def error_response(
    status: int, field: str, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        status_code=status,
        content={"error": {"field": _printable(field), "message": _printable(message)}},
        headers=headers,
    )


def _unparseable_body(cause: BaseException | None) -> str:
    """What was wrong with a body the JSON parser refused (FastAPI only says that it did)."""
    if isinstance(cause, UnicodeDecodeError):
        return f"body is not valid UTF-8 (byte {cause.start})"
    if isinstance(cause, RecursionError):
        return "body is not valid JSON: nested too deeply"
    if isinstance(cause, ValueError):
        return f"body is not valid JSON: {cause}"
    return "body is not valid JSON"


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


class JsonServerErrors:
    """ASGI middleware: an unexpected exception becomes a JSON 500, logged without request data.

    Starlette's own handler answers in plain text and re-raises, so uvicorn logs the exception
    with its message, and database errors carry the statement's parameters (customer ids,
    context values) in theirs. Here only the exception type and the traceback's frames are
    logged.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked_send)
        except Exception as error:
            frames = "".join(traceback.format_tb(error.__traceback__))
            logger.error(
                "unhandled %s in %s %s\n%s",
                type(error).__name__,
                scope.get("method", ""),
                scope.get("path", ""),
                frames,
            )
            if started:
                return  # too late for a status; the server closes the connection
            response = error_response(500, "", "internal error (logged by the server)")
            await response(scope, receive, send)


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error the app can raise as JSON with the right status (see above)."""

    @app.exception_handler(EngineError)
    async def engine_error(_: Request, error: EngineError) -> JSONResponse:
        return error_response(error.status_code, error.field, str(error))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, error: StarletteHTTPException) -> JSONResponse:
        detail = error.detail
        if isinstance(detail, dict):
            field, message = str(detail.get("field", "")), str(detail.get("message", ""))
        elif error.status_code == 400 and error.__cause__ is not None:
            # FastAPI's "There was an error parsing the body": say what was wrong with it.
            field, message = "body", _unparseable_body(error.__cause__)
        else:
            field, message = "", str(detail)
        return error_response(error.status_code, field, message, headers=error.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        errors = error.errors()
        first: Mapping[str, Any] = errors[0] if errors else {"loc": (), "msg": "invalid request"}
        loc = tuple(first.get("loc", ()))
        if first.get("type") == "json_invalid":
            reason = (first.get("ctx") or {}).get("error", "")
            position = f" at character {loc[1]}" if len(loc) > 1 else ""
            return error_response(400, "body", f"body is not valid JSON: {reason}{position}")
        if loc == ("body",):
            content_type = request.headers.get("content-type", "")
            if content_type and not _is_json(content_type):
                message = f"send the body as application/json; got content type {content_type!r}"
                return error_response(415, "content-type", message)
            if not content_type and first.get("type") != "missing":
                message = "send the body as application/json; the content type is missing"
                return error_response(415, "content-type", message)
        # ("body", "outcomes", 0, "value") -> "outcomes.0.value"; ("path", "key") -> "key"
        if len(loc) > 1 and loc[0] in ("body", "path", "query", "header"):
            loc = loc[1:]
        field = ".".join(str(part) for part in loc)
        message = str(first.get("msg", "invalid request"))
        if first.get("type") == "value_error":  # our validators' words, without "Value error, "
            message = str((first.get("ctx") or {}).get("error", message))
        return error_response(422, field, message)

    async def database_down(_: Request, error: Exception) -> JSONResponse:
        """The database is unreachable, silent or out of connections: 503, try again shortly.

        OperationalError: refused, reset, timed out (psycopg's timeouts, the server's
        statement_timeout, the engine's deadline). InterfaceError: a connection closed under a
        statement. PoolTimeoutError: no pooled connection came free in time (SQLAlchemy's own,
        not a DBAPIError). Other database errors are bugs: 500.
        """
        logger.warning("database unavailable: %s", type(error).__name__)
        return error_response(503, "database", "database unavailable", headers={"Retry-After": "1"})

    for database_error in (OperationalError, InterfaceError, PoolTimeoutError):
        app.add_exception_handler(database_error, database_down)
