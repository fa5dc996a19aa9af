"""Queries on the ``experiment`` table: create, read, list and update experiments.

Plain functions taking a ``Session`` and keyword-only arguments; none commits (the caller owns
the transaction). Status transitions are the decision engine's business, not the store's.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from experiments.store._sql import attach, check_choice, insert_ignoring_conflicts, now_or, row_of
from experiments.store.errors import DuplicateError, NotFoundError
from experiments.store.models import Experiment
from experiments.vocabulary import ExperimentStatus

__all__ = [
    "create_experiment",
    "get_experiment",
    "list_experiments",
    "require_experiment",
    "update_experiment",
]


def create_experiment(session: Session, *, experiment: Experiment) -> Experiment:
    """Store a new experiment; :class:`DuplicateError` if its key exists."""
    inserted = insert_ignoring_conflicts(
        session, Experiment, [row_of(experiment)], conflict=["key"], returning="key"
    )
    if not inserted:
        raise DuplicateError(f"experiment {experiment.key!r} already exists")
    return attach(session, experiment)


def get_experiment(session: Session, *, key: str) -> Experiment | None:
    """The experiment ``key``, or ``None``."""
    return session.get(Experiment, key)


def require_experiment(session: Session, *, key: str) -> Experiment:
    """The experiment ``key``; :class:`NotFoundError` if there is none."""
    experiment = session.get(Experiment, key)
    if experiment is None:
        raise NotFoundError(f"experiment {key!r} not found")
    return experiment


def list_experiments(session: Session, *, status: str | None = None) -> list[Experiment]:
    """Every experiment (or those with ``status``), by key."""
    stmt = select(Experiment).order_by(col(Experiment.key))
    if status is not None:
        stmt = stmt.where(Experiment.status == check_choice(status, ExperimentStatus, "status"))
    return list(session.exec(stmt))


def update_experiment(
    session: Session,
    *,
    key: str,
    now: datetime | None = None,
    description: str | None = None,
    spec: dict[str, Any] | None = None,
    exploration_floor: float | None = None,
    apprentice: bool | None = None,
    status: str | None = None,
    stop_reason: str | None = None,
    resume: bool = False,
) -> Experiment:
    """Change the given fields (``None`` leaves a field as it is) and ``updated_at``.

    This is the one path by which an experiment's row changes: ``status`` is checked against
    :class:`~experiments.vocabulary.ExperimentStatus` (``InvalidFieldError`` naming ``status``);
    which transitions are allowed is the engine's business. ``stop_reason`` records an
    automatic stop (``stopped_at`` = now); ``resume`` clears a recorded one (``resumed_at`` =
    now; ``stopped_at`` stays as the last stop's time).
    """
    experiment = require_experiment(session, key=key)
    if status is not None:
        experiment.status = check_choice(status, ExperimentStatus, "status")
    if stop_reason is not None:
        experiment.stop_reason, experiment.stopped_at = stop_reason, now_or(now)
    elif resume and experiment.stop_reason is not None:
        experiment.stop_reason, experiment.resumed_at = None, now_or(now)
    changes = {
        "description": description,
        "spec": spec,
        "exploration_floor": exploration_floor,
        "apprentice": apprentice,
    }
    for field, value in changes.items():
        if value is not None:
            setattr(experiment, field, value)
    experiment.updated_at = now_or(now)
    session.add(experiment)
    session.flush()
    return experiment
