"""Migrations and engines: upgrade creates the schema on both dialects, the models match the
migration, and the server's schema check refuses databases it does not know."""

from __future__ import annotations

import json
import tomllib
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import StatementError
from sqlmodel import Session, SQLModel, select

from bandit import make_policy
from experiments.spec import load_spec, parse_spec
from experiments.store import models
from experiments.store import schema as schema_module
from experiments.store.connection import (
    DEFAULT_DATABASE_URL,
    database_url_from_env,
    dialect_name,
    make_engine,
    normalize_url,
)
from experiments.store.errors import InvalidFieldError, SchemaMismatchError
from experiments.store.models import TABLES, Experiment
from experiments.store.promotions import insert_promotion, serving_version
from experiments.store.schema import (
    alembic_config,
    check_schema,
    current_revision,
    head_revision,
    upgrade,
)
from experiments.store.snapshots import pack_state, unpack_state

ROOT = Path(__file__).resolve().parents[2]


def table_names(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def test_upgrade_creates_every_table(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        assert current_revision(engine) is None
        assert upgrade(engine) == head_revision() == "0007"
        expected = {model.__tablename__ for model in TABLES} | {"alembic_version"}
        assert table_names(engine) == expected
        assert current_revision(engine) == head_revision()
        # Upgrading again is a no-op.
        assert upgrade(engine) == head_revision()
    finally:
        engine.dispose()


def test_upgrade_accepts_a_url(database_url: str) -> None:
    assert upgrade(database_url) == head_revision()
    engine = make_engine(database_url)
    try:
        check_schema(engine)
    finally:
        engine.dispose()


def test_check_schema_passes_after_upgrade(engine: Engine) -> None:
    check_schema(engine)


def test_check_schema_refuses_an_empty_database(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        with pytest.raises(SchemaMismatchError, match=r"revision none") as info:
            check_schema(engine)
        assert head_revision() in str(info.value)
        assert "run `engage db upgrade`" in str(info.value)
    finally:
        engine.dispose()


def test_check_schema_refuses_an_unknown_revision(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'f00dfeed'"))
    with pytest.raises(SchemaMismatchError, match=r"database is at revision f00dfeed") as info:
        check_schema(engine)
    assert f"this engage knows {head_revision()}" in str(info.value)
    assert "newer engage" in str(info.value)


def test_check_schema_asks_to_upgrade_an_older_revision(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pretend this engage ships a newer revision than the database's 0007."""
    monkeypatch.setattr(schema_module, "head_revision", lambda: "0008")
    expected = "database is at revision 0007, this engage knows 0008; run `engage db upgrade`"
    with pytest.raises(SchemaMismatchError) as info:
        check_schema(engine)
    assert str(info.value) == expected


def test_models_match_the_migration(engine: Engine) -> None:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, SQLModel.metadata) == []


def test_comparison_would_notice_a_missing_table(database_url: str) -> None:
    """The no-diff check above is not vacuous: on an empty database every table is missing."""
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
        added = {entry[1].name for entry in diff if entry[0] == "add_table"}
        assert added == {model.__tablename__ for model in TABLES}
    finally:
        engine.dispose()


def test_downgrade_to_base_and_back(engine: Engine) -> None:
    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), "base")
    assert table_names(engine) == {"alembic_version"}
    assert current_revision(engine) is None
    assert upgrade(engine) == head_revision()
    check_schema(engine)


def test_migrations_ship_with_the_package() -> None:
    folder = ROOT / "experiments" / "store" / "migrations"
    assert folder == schema_module.MIGRATIONS_DIR
    assert (folder / "env.py").is_file()
    assert (folder / "script.py.mako").is_file()
    assert (folder / "versions" / "0001_initial.py").is_file()
    assert (folder / "versions" / "0002_strategies.py").is_file()
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    patterns = set(setuptools["package-data"]["experiments.store"])
    shipped = {p for pattern in patterns for p in folder.parent.glob(pattern)}
    assert {
        folder / "env.py",
        folder / "script.py.mako",
        folder / "versions/0001_initial.py",
        folder / "versions/0002_strategies.py",
    } <= shipped


def test_engine_settings(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            if dialect_name(engine) == "sqlite":
                pragmas = {
                    name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                    for name in ("journal_mode", "busy_timeout", "synchronous", "foreign_keys")
                }
                # synchronous NORMAL is 1
                assert pragmas == {
                    "journal_mode": "wal",
                    "busy_timeout": 5000,
                    "synchronous": 1,
                    "foreign_keys": 1,
                }
            else:
                assert dialect_name(engine) == "postgresql"
                assert engine.dialect.driver == "psycopg"
                assert engine.pool._pre_ping  # type: ignore[attr-defined]
                assert conn.execute(text("SELECT 1")).scalar() == 1
    finally:
        engine.dispose()


def test_datetimes_are_stored_as_utc_and_naive_ones_refused(engine: Engine) -> None:
    plus_two = timezone(timedelta(hours=2))
    local = datetime(2025, 3, 1, 12, 30, tzinfo=plus_two)
    with Session(engine) as session:
        session.add(Experiment(key="tz", created_at=local, updated_at=local))
        session.commit()
    with Session(engine) as session:
        stored = session.get(Experiment, "tz")
        assert stored is not None
        assert stored.created_at == local
        assert stored.created_at.tzinfo == UTC
        assert stored.created_at.hour == 10
    with Session(engine) as session:
        session.add(Experiment(key="naive", created_at=datetime(2025, 3, 1), updated_at=local))
        with pytest.raises(StatementError, match="naive datetime"):
            session.commit()


def test_normalize_url_points_postgres_at_psycopg() -> None:
    for url in ("postgresql://u@h:5432/db", "postgres://u@h:5432/db"):
        assert normalize_url(url).drivername == "postgresql+psycopg"
    assert normalize_url("sqlite:///engage.db").drivername == "sqlite"


@pytest.mark.parametrize("url", ["postgresql+psycopg2://u@h/db", "mysql://u:pw@h/db"])
def test_normalize_url_refuses_drivers_engage_does_not_ship(url: str) -> None:
    with pytest.raises(InvalidFieldError) as error:
        normalize_url(url)
    assert error.value.field == "database_url"
    assert str(error.value).startswith(
        f"database URL scheme '{url.split(':')[0]}' is not supported"
    )


def test_database_url_from_env() -> None:
    assert DEFAULT_DATABASE_URL == "sqlite:///engage.db"
    assert database_url_from_env({}) == DEFAULT_DATABASE_URL
    assert database_url_from_env({"ENGAGE_DATABASE_URL": ""}) == DEFAULT_DATABASE_URL
    url = "postgresql://postgres@127.0.0.1/x"
    assert database_url_from_env({"ENGAGE_DATABASE_URL": url}) == url


def test_in_memory_sqlite_shares_one_database() -> None:
    engine = make_engine("sqlite://")
    try:
        upgrade(engine)
        check_schema(engine)
    finally:
        engine.dispose()


def test_migration_0003_pins_the_noise_variance_a_snapshot_learned_under(
    database_url: str,
) -> None:
    """An experiment whose latest snapshot came from the fixed-noise model (the old default
    1.0) keeps that model; one without snapshots, or with a learned-noise snapshot, learns."""
    spec = load_spec(ROOT / "examples" / "mechanism.toml")
    assert "noise_variance" not in spec.policy.params
    fixed = make_policy(  # the fixed-noise model, as the old default built it
        spec.policy.name,
        space=spec.decision_space(),
        n_context=spec.n_features,
        seed=0,
        noise_variance=1.0,
    )
    rng = np.random.default_rng(0)
    contexts = rng.normal(size=(50, spec.n_features))
    actions = np.flatnonzero(spec.decision_space().allowed)[rng.integers(0, 10, size=50)]
    fixed.update(contexts, actions, rng.normal(size=50))
    learned = spec.build_policy(seed=0)
    learned.update(contexts, actions, rng.normal(size=50))
    engine = make_engine(database_url)
    try:
        upgrade(engine, "0002")
        with Session(engine) as session:
            for key, state in (("old", fixed), ("fresh", None), ("auto", learned)):
                data = {**spec.to_json_dict(), "key": key}
                # Core SQL: the model has columns of later revisions.
                session.execute(
                    text(
                        "INSERT INTO experiment (key, description, spec, status, "
                        "exploration_floor, apprentice, created_at, updated_at) VALUES "
                        "(:key, '', :spec, 'draft', 0.0, false, :now, :now)"
                    ),
                    {"key": key, "spec": json.dumps(data), "now": datetime(2026, 1, 1)},
                )
                if state is not None:
                    session.add(
                        models.PolicySnapshot(
                            experiment_key=key, version=1, state=pack_state(state.get_state())
                        )
                    )
            session.commit()
        assert upgrade(engine, "0003") == "0003"
        upgrade(engine)  # the model reads the columns of later revisions
        with Session(engine) as session:
            stored = {key: session.get(Experiment, key) for key in ("old", "fresh", "auto")}
            params = {key: row.spec["policy"]["params"] for key, row in stored.items() if row}
            snapshot = session.exec(
                select(models.PolicySnapshot).where(models.PolicySnapshot.experiment_key == "old")
            ).one()
        assert params["old"]["noise_variance"] == 1.0
        assert "noise_variance" not in params["fresh"]
        assert "noise_variance" not in params["auto"]
        pinned = parse_spec({**spec.to_json_dict(), "policy": stored["old"].spec["policy"]})
        policy = pinned.build_policy(seed=0)
        policy.set_state(unpack_state(snapshot.state))
        np.testing.assert_allclose(
            policy.expected_rewards(contexts), fixed.expected_rewards(contexts)
        )
    finally:
        engine.dispose()


def test_migration_0004_adds_promotions_and_old_snapshots_keep_serving(database_url: str) -> None:
    """At 0003 an experiment has snapshots 1 and 2; after 0004_promotions they have no
    promotion record, so the newest (2) serves; a pending record for 3 holds it back, and a
    downgrade drops the table and nothing else."""
    spec = load_spec(ROOT / "examples" / "mechanism.toml")
    engine = make_engine(database_url)
    try:
        upgrade(engine, "0003")
        with engine.begin() as conn:  # plain SQL: the model has the columns of later revisions
            conn.execute(
                text(
                    "INSERT INTO experiment (key, description, spec, status, "
                    "exploration_floor, apprentice, created_at, updated_at) VALUES "
                    "('old', '', :spec, 'running', 0.05, false, :now, :now)"
                ),
                {"spec": json.dumps(spec.to_json_dict()), "now": datetime(2026, 1, 1)},
            )
        with Session(engine) as session:
            for version in (1, 2):
                session.add(models.PolicySnapshot(experiment_key="old", version=version, state=b""))
            session.commit()
        assert "policy_promotion" not in table_names(engine)
        assert upgrade(engine, "0004_promotions") == "0004_promotions"
        with Session(engine) as session:
            assert serving_version(session, experiment_key="old") == 2
            session.add(models.PolicySnapshot(experiment_key="old", version=3, state=b""))
            insert_promotion(
                session,
                promotion=models.PolicyPromotion(
                    experiment_key="old", version=3, serving_version=2
                ),
            )
            session.commit()
            assert serving_version(session, experiment_key="old") == 2
            record = session.exec(select(models.PolicyPromotion)).one()
            assert (record.status, record.reason, record.decided_at) == ("pending", "", None)
        with engine.begin() as conn:
            command.downgrade(alembic_config(conn), "0003")
        assert "policy_promotion" not in table_names(engine)
        assert "policy_snapshot" in table_names(engine)
    finally:
        engine.dispose()


def test_migration_0005_adds_the_stop_columns_and_keeps_the_rows(database_url: str) -> None:
    """An experiment stored at 0004_promotions comes through 0005 with its fields and no stop;
    the new columns then hold a reason and aware UTC times; the downgrade drops them again."""
    spec = load_spec(ROOT / "examples" / "quickstart.toml")
    engine = make_engine(database_url)
    try:
        upgrade(engine, "0004_promotions")
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO experiment (key, description, spec, status, "
                    "exploration_floor, apprentice, created_at, updated_at) VALUES "
                    "('old', 'kept', :spec, 'running', 0.05, false, :now, :now)"
                ),
                {"spec": json.dumps(spec.to_json_dict()), "now": datetime(2026, 1, 1)},
            )
        assert upgrade(engine, "0005") == "0005"
        stopped = datetime(2026, 1, 2, 3, 4, tzinfo=UTC)
        with Session(engine) as session:
            row = session.get(Experiment, "old")
            assert row is not None
            assert (row.description, row.status, row.exploration_floor) == ("kept", "running", 0.05)
            assert (row.stop_reason, row.stopped_at, row.resumed_at) == (None, None, None)
            row.stop_reason, row.stopped_at = "guardrail retention:churn breached", stopped
            session.add(row)
            session.commit()
        with Session(engine) as session:
            row = session.get(Experiment, "old")
            assert row is not None
            assert row.stop_reason == "guardrail retention:churn breached"
            assert row.stopped_at == stopped
        with engine.begin() as conn:
            command.downgrade(alembic_config(conn), "0004_promotions")
        columns = {column["name"] for column in inspect(engine).get_columns("experiment")}
        assert {"stop_reason", "stopped_at", "resumed_at"}.isdisjoint(columns)
        assert "apprentice" in columns
    finally:
        engine.dispose()
