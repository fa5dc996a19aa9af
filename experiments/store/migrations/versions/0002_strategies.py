"""strategies: strategy assignments per customer and epoch, strategy snapshots, a decision's
strategy, and the index that reads a customer's outcomes in a time range

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01

Written by hand against the models (``tests/store/test_store_migrations.py`` checks that the
migrated schema and the models agree on both dialects). Only plain SQLAlchemy types appear:
``UTCDateTime`` is ``DateTime(timezone=True)`` in the database.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "strategy_assignment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("experiment_key", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=255), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("epoch_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("epoch_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("group", sa.String(length=16), nullable=False),
        sa.Column("strategy", sa.String(length=64), nullable=True),
        sa.Column("strategy_index", sa.Integer(), nullable=True),
        sa.Column("propensity", sa.Float(), nullable=True),
        sa.Column("policy_version", sa.Integer(), nullable=False),
        sa.Column("context", sa.JSON(), nullable=False),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kpi", sa.Float(), nullable=True),
        sa.Column("measured_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("learned_version", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["experiment_key"], ["experiment.key"], name="fk_strategy_assignment_experiment_key"
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "experiment_key",
            "customer_id",
            "epoch",
            name="uq_strategy_assignment_experiment_customer_epoch",
        ),
    )
    op.create_index(
        "ix_strategy_assignment_experiment_epoch_end",
        "strategy_assignment",
        ["experiment_key", "epoch_end"],
    )

    op.create_table(
        "strategy_snapshot",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("experiment_key", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("state", sa.LargeBinary(), nullable=False),
        sa.Column("rows_learned", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "experiment_key", "version", name="uq_strategy_snapshot_experiment_version"
        ),
    )
    op.create_index("ix_strategy_snapshot_experiment_key", "strategy_snapshot", ["experiment_key"])

    # batch mode: SQLite cannot add a column to a table with foreign keys in place everywhere.
    with op.batch_alter_table("decision") as batch:
        batch.add_column(sa.Column("strategy", sa.String(length=64), nullable=True))
    op.create_index(
        "ix_outcome_experiment_customer_occurred",
        "outcome",
        ["experiment_key", "customer_id", "occurred_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_outcome_experiment_customer_occurred", table_name="outcome")
    with op.batch_alter_table("decision") as batch:
        batch.drop_column("strategy")
    op.drop_index("ix_strategy_snapshot_experiment_key", table_name="strategy_snapshot")
    op.drop_table("strategy_snapshot")
    op.drop_index("ix_strategy_assignment_experiment_epoch_end", table_name="strategy_assignment")
    op.drop_table("strategy_assignment")
