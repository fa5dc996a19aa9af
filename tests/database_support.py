"""Database helpers shared by the conftest files (importable as ``database_support``: the
``tests`` folder is on ``sys.path`` through its own conftest)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session

from experiments.engine import DecisionEngine
from experiments.engine.clock import ManualClock
from experiments.store import models
from experiments.store.connection import make_engine
from experiments.store.database import Database


@contextmanager
def postgres_database(admin_url: str, *, template: str | None = None) -> Iterator[str]:
    """Create a database (a copy of ``template`` if given), yield its URL, drop it."""
    name = f"engage_test_{secrets.token_hex(6)}"
    create = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template is not None:
        create = sql.SQL("{} TEMPLATE {}").format(create, sql.Identifier(template))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(create)
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def stored_decision(engine: Engine, decision_id: str) -> models.Decision:
    """The decision row ``decision_id`` as the store holds it (it must exist)."""
    with Session(engine) as session:
        row = session.get(models.Decision, decision_id)
        assert row is not None
        return row


@contextmanager
def engine_with_experiment(
    url: str, spec: Mapping[str, Any], start: datetime, *, seed: int = 3
) -> Iterator[tuple[DecisionEngine, ManualClock]]:
    """A decision engine on the migrated database ``url`` with a manual clock at ``start``
    and ``spec``'s experiment created; the database's engine is disposed of afterwards."""
    clock = ManualClock(start)
    engine = make_engine(url)
    try:
        decisions = DecisionEngine(Database(engine), clock=clock, seed=seed)
        decisions.create_experiment(dict(spec))
        yield decisions, clock
    finally:
        engine.dispose()
