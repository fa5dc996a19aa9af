"""The stored experiments: create and read them, and change them through validated paths only.

Every change of an experiment's status goes through :meth:`ExperimentRegistry.set_status`,
which checks the value against :class:`~experiments.vocabulary.ExperimentStatus` and the one
rule of the life cycle (a stopped experiment stays stopped) before the store's
``set_experiment_status`` writes it; the exploration floor, apprentice mode and the guardrail
actions (which live in the stored spec) go through the store's ``update_experiment``. The
store's and the spec's errors leave here as the engine's (:mod:`experiments.errors`), naming
the field at fault.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlmodel import Session

from bandit import BanditValueError
from experiments.engine.clock import Clock
from experiments.errors import ConflictError, InvalidInputError, NotFoundError
from experiments.spec import ExperimentSpec, SpecError, parse_spec
from experiments.store import models
from experiments.store.database import Database
from experiments.store.errors import DuplicateError
from experiments.store.experiments import (
    create_experiment,
    get_experiment,
    list_experiments,
    update_experiment,
)
from experiments.vocabulary import ExperimentStatus


def invalid_input(error: SpecError | BanditValueError) -> InvalidInputError:
    """A spec's or a decision space's validation error as the engine's 422, same field."""
    return InvalidInputError(str(error), field=getattr(error, "field", ""))


def find_experiment(session: Session, key: str) -> models.Experiment:
    """The experiment ``key``; :class:`~experiments.errors.NotFoundError` if there is none."""
    row = get_experiment(session, key=key)
    if row is None:
        raise NotFoundError(f"unknown experiment '{key}'", field="experiment")
    return row


def experiment_status(value: str) -> ExperimentStatus:
    """``value`` as an :class:`ExperimentStatus`; ``InvalidInputError`` on ``status`` if it is
    none of them."""
    try:
        return ExperimentStatus(value)
    except ValueError:
        allowed = "|".join(status.value for status in ExperimentStatus)
        raise InvalidInputError(
            f"status must be one of {allowed}; got {value!r}", field="status"
        ) from None


def _detached(session: Session, row: models.Experiment) -> models.Experiment:
    """Commit, and hand back ``row`` as stored, usable after the session closes."""
    session.commit()
    session.refresh(row)
    session.expunge(row)
    return row


class ExperimentRegistry:
    """Experiments in one database.

    Args:
        database: where they are stored.
        clock: the source of ``created_at`` and ``updated_at``.
    """

    def __init__(self, database: Database, clock: Clock) -> None:
        self._database = database
        self._clock = clock

    def create(
        self,
        spec: ExperimentSpec | Mapping[str, Any],
        *,
        status: str = ExperimentStatus.RUNNING,
    ) -> models.Experiment:
        """Store a new experiment; ``ConflictError`` if the key exists."""
        initial = experiment_status(status)
        if not isinstance(spec, ExperimentSpec):
            try:
                spec = parse_spec(spec)
            except SpecError as error:
                raise invalid_input(error) from None
        now = self._clock.now()
        row = models.Experiment(
            key=spec.key,
            description=spec.description,
            spec=spec.to_json_dict(),
            status=initial,
            exploration_floor=spec.exploration_floor,
            apprentice=False,
            created_at=now,
            updated_at=now,
        )
        with self._database.session() as session:
            try:
                create_experiment(session, experiment=row)
            except DuplicateError:
                raise ConflictError(
                    f"experiment '{spec.key}' already exists", field="key"
                ) from None
            return _detached(session, row)

    def get(self, key: str) -> models.Experiment:
        """The experiment ``key``; ``NotFoundError`` if there is none."""
        with self._database.session() as session:
            row = find_experiment(session, key)
            session.expunge(row)
            return row

    def list(self) -> list[models.Experiment]:
        """Every experiment, by key."""
        with self._database.session() as session:
            rows = list_experiments(session)
            for row in rows:
                session.expunge(row)
            return rows

    def set_status(self, key: str, status: str) -> models.Experiment:
        """Pause, resume or stop; a stopped experiment stays stopped. Resuming clears an
        automatic stop's reason and starts its checks afresh (``resumed_at``)."""
        wanted = experiment_status(status)
        with self._database.session() as session:
            current = find_experiment(session, key)
            if current.status == ExperimentStatus.STOPPED and wanted != ExperimentStatus.STOPPED:
                raise ConflictError(f"experiment '{key}' is stopped", field="status")
            row = update_experiment(
                session,
                key=key,
                status=wanted,
                now=self._clock.now(),
                resume=wanted == ExperimentStatus.RUNNING,
            )
            return _detached(session, row)

    @staticmethod
    def check_exploration_floor(floor: float) -> None:
        """``InvalidInputError`` on ``exploration_floor`` unless ``floor`` is in [0, 1]."""
        if not 0.0 <= floor <= 1.0:
            raise InvalidInputError(
                f"exploration_floor must be in [0, 1]; got {floor}", field="exploration_floor"
            )

    def set_exploration_floor(self, key: str, floor: float) -> models.Experiment:
        """Set the exploration floor, in [0, 1]: the treatment policy's share of probability
        spread uniformly over eligible actions."""
        self.check_exploration_floor(floor)
        with self._database.session() as session:
            find_experiment(session, key)
            row = update_experiment(
                session, key=key, now=self._clock.now(), exploration_floor=float(floor)
            )
            return _detached(session, row)

    def set_apprentice(self, key: str, apprentice: bool) -> models.Experiment:
        """Apprentice mode: serve business as usual while learning from it."""
        with self._database.session() as session:
            find_experiment(session, key)
            row = update_experiment(
                session, key=key, now=self._clock.now(), apprentice=bool(apprentice)
            )
            return _detached(session, row)

    def set_guardrail_actions(
        self, key: str, actions: Mapping[str, str], *, sample_ratio: str | None = None
    ) -> models.Experiment:
        """Change the stored spec's guardrail actions (by label) and the split's action
        (:meth:`~experiments.spec.GuardrailsSpec.with_actions`). The changed spec is parsed
        again whole, as a new one would be, before it is stored; every check reads the stored
        spec afresh (:mod:`experiments.engine.guardrails`), so the next one acts on it."""
        with self._database.session() as session:
            current = find_experiment(session, key)
            try:
                spec = parse_spec(current.spec)
                guardrails = spec.guardrails.with_actions(actions, sample_ratio=sample_ratio)
                data = {**spec.to_json_dict(), "guardrails": guardrails.model_dump(mode="json")}
                changed = parse_spec(data).to_json_dict()
            except SpecError as error:
                raise invalid_input(error) from None
            row = update_experiment(session, key=key, now=self._clock.now(), spec=changed)
            return _detached(session, row)
