"""``create_app(settings)``: the versioned HTTP API over the decision engine (FastAPI).

Nothing happens at import: the database engine, the decision engine and the learner are
built in the application's lifespan from the settings passed in.

Every answer is JSON, errors included: ``{"error": {"field": ..., "message": ...}}`` with
400 (body is not parseable JSON), 401/403 (key), 404, 409, 413 (body too large), 415 (body
not sent as ``application/json``), 422 (invalid field), 429 (rate), 500 (a bug: logged
without the request's data) and 503 (database down).
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import AfterValidator
from sqlalchemy import text
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlmodel import Session
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from experiments.clock import Clock
from experiments.engine import (
    PAUSED,
    RUNNING,
    STOPPED,
    DecisionEngine,
    DecisionRequest,
    DecisionResult,
    OutcomeInput,
)
from experiments.errors import EngineError, InvalidInputError
from experiments.learner import Learner
from experiments.report import lift_dict, reward_lift
from experiments.service.auth import VerifiedKeyCache, require_scope
from experiments.service.limits import BodySizeLimit
from experiments.service.ratelimit import RateLimiter
from experiments.service.schemas import (
    DecisionIn,
    DecisionOut,
    ErrorOut,
    ExperimentOut,
    ExperimentPatch,
    OutcomesIn,
    OutcomesOut,
    first_text_problem,
    storable,
)
from experiments.settings import Settings
from experiments.store import check_schema, make_engine, queries

logger = logging.getLogger("engage.service")

#: Outcomes said to occur before the Unix epoch are zero or negative timestamps, not events.
EARLIEST_OCCURRED_AT = datetime(1970, 1, 1, tzinfo=UTC)
#: How far past the server's clock ``occurred_at`` may be: client clocks drift and events are
#: backfilled, but an outcome years ahead is a unit or year error (9999-12-31, ms for s).
MAX_OCCURRED_AHEAD = timedelta(days=366)

ExperimentKey = Annotated[str, Path(min_length=1, max_length=64), AfterValidator(storable)]
DecisionId = Annotated[str, Path(min_length=1, max_length=64), AfterValidator(storable)]


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
_AUTHENTICATED = (401, 403, 429, 503)
#: Errors of operations that read a JSON body.
_WITH_BODY = (400, 413, 415, 422)


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route: each error status documented with the error body."""
    return {
        code: {"model": ErrorOut, "description": _ERROR_MEANINGS[code]} for code in sorted(codes)
    }


def _printable(text: str) -> str:
    """``text`` with lone surrogates escaped, so an error echoing input can be encoded."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _error(
    status: int, field: str, message: str, headers: dict[str, str] | None = None
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
            response = _error(500, "", "internal error (logged by the server)")
            await response(scope, receive, send)


def _experiment_out(row: Any) -> ExperimentOut:
    return ExperimentOut(
        key=row.key,
        description=row.description,
        status=row.status,
        exploration_floor=row.exploration_floor,
        apprentice=row.apprentice,
        created_at=row.created_at,
        updated_at=row.updated_at,
        spec=row.spec,
    )


def _decision_out(result: DecisionResult) -> DecisionOut:
    return DecisionOut(
        decision_id=result.decision_id,
        action=result.action,
        propensity=result.propensity,
        group=result.group,
        policy_version=result.policy_version,
        deferred=result.deferred,
        suppressed=result.suppressed_reason,
    )


def _check_occurred_at(body: OutcomesIn, now: datetime) -> None:
    """Refuse outcomes dated before the epoch or more than ``MAX_OCCURRED_AHEAD`` after ``now``.

    Such instants are client bugs, and storing them would corrupt attribution windows (and
    some, like 9999-12-31T23:59-23:59, cannot even be converted to UTC).
    """
    latest = now + MAX_OCCURRED_AHEAD
    for index, item in enumerate(body.outcomes):
        if not EARLIEST_OCCURRED_AT <= item.occurred_at <= latest:
            raise InvalidInputError(
                f"must lie between {EARLIEST_OCCURRED_AT.isoformat()} and "
                f"{MAX_OCCURRED_AHEAD.days} days after the server's clock "
                f"({latest.isoformat(timespec='seconds')}); got {item.occurred_at.isoformat()}",
                field=f"outcomes.{index}.occurred_at",
            )


def engine_of(request: Request) -> DecisionEngine:
    """The application's decision engine (built in the lifespan)."""
    return request.app.state.engine


EngineDep = Annotated[DecisionEngine, Depends(engine_of)]


def create_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    start_learner: bool | None = None,
) -> FastAPI:
    """Build the application; the database must already be at the known schema."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        database = make_engine(settings.database_url, timeout=settings.database_timeout_seconds)
        check_schema(database)
        engine = DecisionEngine(database, clock=clock)
        app.state.engine = engine
        learner = None
        if settings.learner if start_learner is None else start_learner:
            learner = Learner(engine, poll_seconds=settings.learner_poll_seconds)
            learner.start()
        app.state.learner = learner
        try:
            yield
        finally:
            if learner is not None:
                learner.stop()
            database.dispose()

    app = FastAPI(
        title="engage decision service",
        version="1",
        description="Decide, report outcomes, read lift against a randomized holdout.",
        lifespan=lifespan,
    )
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(JsonServerErrors)
    app.state.settings = settings
    app.state.key_cache = VerifiedKeyCache(ttl=settings.api_key_cache_seconds)
    app.state.rate_limiter = RateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst)

    @app.exception_handler(EngineError)
    async def engine_error(_: Request, error: EngineError) -> JSONResponse:
        return _error(error.status_code, error.field, str(error))

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
        return _error(error.status_code, field, message, headers=error.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0] if error.errors() else {"loc": (), "msg": "invalid request"}
        loc = tuple(first.get("loc", ()))
        if first.get("type") == "json_invalid":
            reason = (first.get("ctx") or {}).get("error", "")
            position = f" at character {loc[1]}" if len(loc) > 1 else ""
            return _error(400, "body", f"body is not valid JSON: {reason}{position}")
        if loc == ("body",):
            content_type = request.headers.get("content-type", "")
            if content_type and not _is_json(content_type):
                message = f"send the body as application/json; got content type {content_type!r}"
                return _error(415, "content-type", message)
            if not content_type and first.get("type") != "missing":
                message = "send the body as application/json; the content type is missing"
                return _error(415, "content-type", message)
        # ("body", "outcomes", 0, "value") -> "outcomes.0.value"; ("path", "key") -> "key"
        if len(loc) > 1 and loc[0] in ("body", "path", "query", "header"):
            loc = loc[1:]
        field = ".".join(str(part) for part in loc)
        message = str(first.get("msg", "invalid request"))
        if first.get("type") == "value_error":  # our validators' words, without "Value error, "
            message = str((first.get("ctx") or {}).get("error", message))
        return _error(422, field, message)

    async def database_down(_: Request, error: Exception) -> JSONResponse:
        """The database is unreachable, silent or out of connections: 503, try again shortly.

        OperationalError: refused, reset, timed out (psycopg's timeouts, the server's
        statement_timeout, the engine's deadline). InterfaceError: a connection closed under a
        statement. PoolTimeoutError: no pooled connection came free in time (SQLAlchemy's own,
        not a DBAPIError). Other database errors are bugs: 500.
        """
        logger.warning("database unavailable: %s", type(error).__name__)
        return _error(503, "database", "database unavailable", headers={"Retry-After": "1"})

    for database_error in (OperationalError, InterfaceError, PoolTimeoutError):
        app.add_exception_handler(database_error, database_down)

    @app.get("/livez", tags=["health"])
    async def livez() -> dict[str, bool]:
        """Liveness only: no database, no auth (the benchmark's trivial-endpoint ceiling)."""
        return {"ok": True}

    @app.get("/healthz", tags=["health"], responses={503: {"description": "Database down."}})
    def healthz(request: Request) -> JSONResponse:
        engine: DecisionEngine = request.app.state.engine
        database = "ok"
        try:
            with engine.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception:
            database = "down"
        learner = request.app.state.learner
        learner_status: dict[str, Any] = {"running": False}
        if learner is not None:
            status = learner.status
            learner_status = {
                "running": status.running,
                "leader": status.leader,
                "last_error": status.last_error,
                "published": status.published,
            }
        healthy = database == "ok" and not learner_status.get("last_error")
        return JSONResponse(
            status_code=200 if database == "ok" else 503,
            content={
                "status": "ok" if healthy else "degraded",
                "database": database,
                "learner": learner_status,
            },
        )

    @app.post(
        "/v1/experiments",
        status_code=201,
        dependencies=[Depends(require_scope("admin"))],
        tags=["experiments"],
        responses=_errors(*_AUTHENTICATED, *_WITH_BODY, 409),
    )
    def create_experiment(spec: dict[str, Any], engine: EngineDep) -> ExperimentOut:
        problem = first_text_problem(spec)
        if problem is not None:
            raise InvalidInputError(problem[1], field=problem[0])
        return _experiment_out(engine.create_experiment(spec))

    @app.get(
        "/v1/experiments",
        dependencies=[Depends(require_scope("read"))],
        tags=["experiments"],
        responses=_errors(*_AUTHENTICATED),
    )
    def list_experiments(engine: EngineDep) -> list[ExperimentOut]:
        return [_experiment_out(row) for row in engine.list_experiments()]

    @app.get(
        "/v1/experiments/{key}",
        dependencies=[Depends(require_scope("read"))],
        tags=["experiments"],
        responses=_errors(*_AUTHENTICATED, 404, 422),
    )
    def get_experiment(key: ExperimentKey, engine: EngineDep) -> ExperimentOut:
        return _experiment_out(engine.get_experiment(key))

    def status_route(status: str) -> Callable[[str, DecisionEngine], ExperimentOut]:
        def change(key: ExperimentKey, engine: EngineDep) -> ExperimentOut:
            return _experiment_out(engine.set_status(key, status))

        return change

    for verb, status in (("pause", PAUSED), ("resume", RUNNING), ("stop", STOPPED)):
        app.post(
            f"/v1/experiments/{{key}}/{verb}",
            dependencies=[Depends(require_scope("admin"))],
            tags=["experiments"],
            name=f"{verb}_experiment",
            responses=_errors(*_AUTHENTICATED, 404, 409, 422),
        )(status_route(status))

    @app.patch(
        "/v1/experiments/{key}",
        dependencies=[Depends(require_scope("admin"))],
        tags=["experiments"],
        responses=_errors(*_AUTHENTICATED, *_WITH_BODY, 404),
    )
    def update_experiment(
        key: ExperimentKey, body: ExperimentPatch, engine: EngineDep
    ) -> ExperimentOut:
        """Change the exploration floor or switch apprentice mode."""
        row = engine.get_experiment(key)
        if body.exploration_floor is not None:
            row = engine.set_exploration_floor(key, body.exploration_floor)
        if body.apprentice is not None:
            row = engine.set_apprentice(key, body.apprentice)
        return _experiment_out(row)

    @app.post(
        "/v1/experiments/{key}/decisions",
        dependencies=[Depends(require_scope("decide"))],
        tags=["decisions"],
        responses=_errors(*_AUTHENTICATED, *_WITH_BODY, 404, 409),
    )
    def decide(key: ExperimentKey, body: DecisionIn, engine: EngineDep) -> DecisionOut:
        result = engine.decide(
            key,
            DecisionRequest(
                customer_id=body.customer_id,
                context=body.context,
                exclude=body.exclude or (),
                request_id=body.request_id,
                defer=body.defer,
            ),
        )
        return _decision_out(result)

    @app.post(
        "/v1/decisions/{decision_id}/activate",
        dependencies=[Depends(require_scope("decide"))],
        tags=["decisions"],
        responses=_errors(*_AUTHENTICATED, 404, 409, 422),
    )
    def activate(decision_id: DecisionId, engine: EngineDep) -> DecisionOut:
        result = engine.activate(decision_id)
        return _decision_out(result)

    @app.post(
        "/v1/outcomes",
        status_code=202,
        dependencies=[Depends(require_scope("decide"))],
        tags=["outcomes"],
        responses=_errors(*_AUTHENTICATED, *_WITH_BODY),
    )
    def outcomes(body: OutcomesIn, engine: EngineDep) -> OutcomesOut:
        _check_occurred_at(body, engine.clock.now())
        result = engine.record(
            OutcomeInput(
                outcome_id=item.outcome_id,
                event=item.event,
                value=item.value,
                occurred_at=item.occurred_at,
                decision_id=item.decision_id,
                experiment=item.experiment,
                customer_id=item.customer_id,
            )
            for item in body.outcomes
        )
        return OutcomesOut(accepted=result.accepted, duplicates=result.duplicates)

    @app.get(
        "/v1/experiments/{key}/report",
        dependencies=[Depends(require_scope("read"))],
        tags=["reports"],
        responses=_errors(*_AUTHENTICATED, 404, 422),
    )
    def report(key: ExperimentKey, engine: EngineDep) -> dict[str, Any]:
        experiment = engine.get_experiment(key)
        loaded = engine.loaded_policy(key)
        with Session(engine.engine) as session:
            groups, lift = reward_lift(session, experiment_key=key)
            counts = queries.experiment_counts(session, experiment_key=key)
        return {
            "experiment": key,
            "status": experiment.status,
            "policy_version": loaded.version,
            **counts,
            "kpi": loaded.spec.reward.kind + ":" + loaded.spec.reward.event,
            "groups": [group.__dict__ for group in groups],
            "lift": lift_dict(lift),
        }

    return app
