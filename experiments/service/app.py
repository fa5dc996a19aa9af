"""``create_app(settings)``: the versioned HTTP API over the decision engine (FastAPI).

Nothing happens at import: the database engine, the decision engine and the learner are
built in the application's lifespan from the settings passed in.

Every answer is JSON, errors included (see :mod:`experiments.service.errors`).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import AfterValidator, BaseModel

from experiments.analysis.promotions import PromotionRecord, read_promotions
from experiments.analysis.report import LiveReport, build_live_report
from experiments.engine import DecisionEngine
from experiments.engine.clock import Clock
from experiments.engine.learner import Learner
from experiments.errors import InvalidInputError
from experiments.service.auth import VerifiedKeyCache, require_scope
from experiments.service.errors import (
    AUTHENTICATED,
    WITH_BODY,
    JsonServerErrors,
    errors_doc,
    install_error_handlers,
)
from experiments.service.limits import BodySizeLimit
from experiments.service.ratelimit import RateLimiter
from experiments.service.schemas import (
    DecisionIn,
    DecisionOut,
    ExperimentDetail,
    ExperimentOut,
    ExperimentPatch,
    OutcomesIn,
    OutcomesOut,
    storable,
)
from experiments.settings import Settings
from experiments.store.database import open_database
from experiments.vocabulary import ExperimentStatus, Scope

__all__ = ["EARLIEST_OCCURRED_AT", "MAX_OCCURRED_AHEAD", "create_app", "engine_of"]

logger = logging.getLogger("engage.service")

#: Outcomes said to occur before the Unix epoch are zero or negative timestamps, not events.
EARLIEST_OCCURRED_AT = datetime(1970, 1, 1, tzinfo=UTC)
#: How far past the server's clock ``occurred_at`` may be: client clocks drift and events are
#: backfilled, but an outcome years ahead is a unit or year error (9999-12-31, ms for s).
MAX_OCCURRED_AHEAD = timedelta(days=366)

ExperimentKey = Annotated[str, Path(min_length=1, max_length=64), AfterValidator(storable)]
DecisionId = Annotated[str, Path(min_length=1, max_length=64), AfterValidator(storable)]


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


async def engine_of(request: Request) -> DecisionEngine:
    """The application's decision engine (built in the lifespan); asynchronous so that FastAPI
    calls it on the event loop instead of in its thread pool."""
    return request.app.state.engine


EngineDep = Annotated[DecisionEngine, Depends(engine_of)]


def _json_response(answer: BaseModel, status_code: int = 200) -> Response:
    """``answer`` as a JSON response, serialised by pydantic in one step.

    For the hot routes: a returned model goes through FastAPI's response field (validated
    again, dumped to Python objects, then encoded by ``json.dumps``); the route declares
    ``response_model`` for the OpenAPI schema and returns this instead.
    """
    return Response(answer.model_dump_json(), status_code, media_type="application/json")


def create_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    start_learner: bool | None = None,
) -> FastAPI:
    """Build the application; the database must already be at the known schema."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        database = open_database(settings.database_url, timeout=settings.database_timeout_seconds)
        database.check_schema()
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

    install_error_handlers(app)

    @app.get("/livez", tags=["health"])
    async def livez() -> dict[str, bool]:
        """Liveness only: no database, no auth (the benchmark's trivial-endpoint ceiling)."""
        return {"ok": True}

    @app.get("/healthz", tags=["health"], responses={503: {"description": "Database down."}})
    def healthz(request: Request) -> JSONResponse:
        engine: DecisionEngine = request.app.state.engine
        database = "ok"
        stopped: int | None = None
        try:
            engine.database.ping()
            # How many experiments stopped themselves (the keys and reasons need a read key:
            # GET /v1/experiments).
            stopped = sum(row.stop_reason is not None for row in engine.list_experiments())
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
                "experiments_stopped_by_checks": stopped,
            },
        )

    @app.post(
        "/v1/experiments",
        status_code=201,
        dependencies=[Depends(require_scope(Scope.ADMIN))],
        tags=["experiments"],
        responses=errors_doc(*AUTHENTICATED, *WITH_BODY, 409),
    )
    def create_experiment(spec: dict[str, Any], engine: EngineDep) -> ExperimentOut:
        return ExperimentOut.model_validate(engine.create_experiment(spec))

    @app.get(
        "/v1/experiments",
        dependencies=[Depends(require_scope(Scope.READ))],
        tags=["experiments"],
        responses=errors_doc(*AUTHENTICATED),
    )
    def list_experiments(engine: EngineDep) -> list[ExperimentOut]:
        return [ExperimentOut.model_validate(row) for row in engine.list_experiments()]

    @app.get(
        "/v1/experiments/{key}",
        dependencies=[Depends(require_scope(Scope.READ))],
        tags=["experiments"],
        responses=errors_doc(*AUTHENTICATED, 404, 422),
    )
    def get_experiment(key: ExperimentKey, engine: EngineDep) -> ExperimentDetail:
        row = ExperimentOut.model_validate(engine.get_experiment(key))
        promotions = list(read_promotions(engine.database, key))
        return ExperimentDetail(**row.model_dump(), promotions=promotions)

    def status_route(status: ExperimentStatus) -> Callable[[str, DecisionEngine], ExperimentOut]:
        def change(key: ExperimentKey, engine: EngineDep) -> ExperimentOut:
            return ExperimentOut.model_validate(engine.set_status(key, status))

        return change

    for verb, status in (
        ("pause", ExperimentStatus.PAUSED),
        ("resume", ExperimentStatus.RUNNING),
        ("stop", ExperimentStatus.STOPPED),
    ):
        app.post(
            f"/v1/experiments/{{key}}/{verb}",
            dependencies=[Depends(require_scope(Scope.ADMIN))],
            tags=["experiments"],
            name=f"{verb}_experiment",
            responses=errors_doc(*AUTHENTICATED, 404, 409, 422),
        )(status_route(status))

    @app.patch(
        "/v1/experiments/{key}",
        dependencies=[Depends(require_scope(Scope.ADMIN))],
        tags=["experiments"],
        responses=errors_doc(*AUTHENTICATED, *WITH_BODY, 404, 409),
    )
    def update_experiment(
        key: ExperimentKey, body: ExperimentPatch, engine: EngineDep
    ) -> ExperimentOut:
        """Change the exploration floor, switch apprentice mode, set guardrail actions
        (``{"guardrail_actions": {"retention:churn": "alert"}, "sample_ratio_action": "stop"}``),
        or change the status (``running`` resumes an experiment that stopped itself on a
        guardrail or its split). The settings are validated and written first, so a bad one
        (422 naming it) leaves the status as it was."""
        row = engine.update_settings(
            key,
            exploration_floor=body.exploration_floor,
            apprentice=body.apprentice,
            guardrail_actions=body.guardrail_actions,
            sample_ratio_action=body.sample_ratio_action,
        )
        if body.status is not None:
            row = engine.set_status(key, body.status)
        return ExperimentOut.model_validate(row)

    @app.get(
        "/v1/experiments/{key}/promotions",
        dependencies=[Depends(require_scope(Scope.READ))],
        tags=["experiments"],
        responses=errors_doc(*AUTHENTICATED, 404, 422),
    )
    def promotions(key: ExperimentKey, engine: EngineDep) -> list[PromotionRecord]:
        """Safe promotion's verdict on each learned snapshot, newest first (the report's
        ``promotions``; empty without ``[promotion] enabled``)."""
        engine.get_experiment(key)
        return list(read_promotions(engine.database, key))

    @app.post(
        "/v1/experiments/{key}/decisions",
        response_model=DecisionOut,
        dependencies=[Depends(require_scope(Scope.DECIDE))],
        tags=["decisions"],
        responses=errors_doc(*AUTHENTICATED, *WITH_BODY, 404, 409),
    )
    def decide(key: ExperimentKey, body: DecisionIn, engine: EngineDep) -> Response:
        return _json_response(DecisionOut.model_validate(engine.decide(key, body.as_request())))

    @app.post(
        "/v1/decisions/{decision_id}/activate",
        dependencies=[Depends(require_scope(Scope.DECIDE))],
        tags=["decisions"],
        responses=errors_doc(*AUTHENTICATED, 404, 409, 422),
    )
    def activate(decision_id: DecisionId, engine: EngineDep) -> DecisionOut:
        return DecisionOut.model_validate(engine.activate(decision_id))

    @app.post(
        "/v1/outcomes",
        status_code=202,
        response_model=OutcomesOut,
        dependencies=[Depends(require_scope(Scope.DECIDE))],
        tags=["outcomes"],
        responses=errors_doc(*AUTHENTICATED, *WITH_BODY),
    )
    def outcomes(body: OutcomesIn, engine: EngineDep) -> Response:
        _check_occurred_at(body, engine.clock.now())
        recorded = engine.record(item.as_input() for item in body.outcomes)
        return _json_response(OutcomesOut.model_validate(recorded), 202)

    @app.get(
        "/v1/experiments/{key}/report",
        dependencies=[Depends(require_scope("read"))],
        tags=["reports"],
        responses=errors_doc(*AUTHENTICATED, 404, 422),
    )
    def report(
        key: ExperimentKey,
        engine: EngineDep,
        period_days: Annotated[int, Query(ge=1)] = 1,
    ) -> LiveReport:
        """The experiment's report: the same JSON as ``engage report --json``."""
        engine.get_experiment(key)  # 404 for an unknown key, as every route answers it
        return build_live_report(engine.database, key, period_days=period_days)

    return app
