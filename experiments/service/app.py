"""``create_app(settings)``: the versioned HTTP API over the decision engine (FastAPI).

Nothing happens at import: the database engine, the decision engine and the learner are
built in the application's lifespan from the settings passed in.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlmodel import Session
from starlette.exceptions import HTTPException as StarletteHTTPException

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
from experiments.errors import EngineError
from experiments.learner import Learner
from experiments.report import lift_dict, reward_lift
from experiments.service.auth import VerifiedKeyCache, require_scope
from experiments.service.limits import BodySizeLimit
from experiments.service.ratelimit import RateLimiter
from experiments.service.schemas import (
    DecisionIn,
    DecisionOut,
    ExperimentOut,
    ExperimentPatch,
    OutcomesIn,
    OutcomesOut,
)
from experiments.settings import Settings
from experiments.store import check_schema, make_engine, queries

logger = logging.getLogger("engage.service")


def _error(
    status: int, field: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        status_code=status, content={"error": {"field": field, "message": message}}, headers=headers
    )


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
        database = make_engine(settings.database_url)
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
        else:
            field, message = "", str(detail)
        return _error(error.status_code, field, message, headers=error.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0] if error.errors() else {"loc": (), "msg": "invalid request"}
        location = [str(part) for part in first.get("loc", ()) if part != "body"]
        return _error(422, ".".join(location), str(first.get("msg", "invalid request")))

    @app.exception_handler(OperationalError)
    async def database_down(_: Request, error: OperationalError) -> JSONResponse:
        logger.warning("database unavailable: %s", type(error).__name__)
        return _error(503, "database", "database unavailable", headers={"Retry-After": "1"})

    @app.get("/livez", tags=["health"])
    async def livez() -> dict[str, bool]:
        """Liveness only: no database, no auth (the benchmark's trivial-endpoint ceiling)."""
        return {"ok": True}

    @app.get("/healthz", tags=["health"])
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
    )
    def create_experiment(spec: dict[str, Any], engine: EngineDep) -> ExperimentOut:
        return _experiment_out(engine.create_experiment(spec))

    @app.get("/v1/experiments", dependencies=[Depends(require_scope("read"))], tags=["experiments"])
    def list_experiments(engine: EngineDep) -> list[ExperimentOut]:
        return [_experiment_out(row) for row in engine.list_experiments()]

    @app.get(
        "/v1/experiments/{key}",
        dependencies=[Depends(require_scope("read"))],
        tags=["experiments"],
    )
    def get_experiment(key: str, engine: EngineDep) -> ExperimentOut:
        return _experiment_out(engine.get_experiment(key))

    def status_route(status: str) -> Callable[[str, DecisionEngine], ExperimentOut]:
        def change(key: str, engine: EngineDep) -> ExperimentOut:
            return _experiment_out(engine.set_status(key, status))

        return change

    for verb, status in (("pause", PAUSED), ("resume", RUNNING), ("stop", STOPPED)):
        app.post(
            f"/v1/experiments/{{key}}/{verb}",
            dependencies=[Depends(require_scope("admin"))],
            tags=["experiments"],
            name=f"{verb}_experiment",
        )(status_route(status))

    @app.patch(
        "/v1/experiments/{key}",
        dependencies=[Depends(require_scope("admin"))],
        tags=["experiments"],
    )
    def update_experiment(key: str, body: ExperimentPatch, engine: EngineDep) -> ExperimentOut:
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
    )
    def decide(key: str, body: DecisionIn, engine: EngineDep) -> DecisionOut:
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
    )
    def activate(decision_id: str, engine: EngineDep) -> DecisionOut:
        result = engine.activate(decision_id)
        return _decision_out(result)

    @app.post(
        "/v1/outcomes",
        status_code=202,
        dependencies=[Depends(require_scope("decide"))],
        tags=["outcomes"],
    )
    def outcomes(body: OutcomesIn, engine: EngineDep) -> OutcomesOut:
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
    )
    def report(key: str, engine: EngineDep) -> dict[str, Any]:
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
