"""promotions: safe promotion's record of each learned snapshot (pending, promoted, rejected)

Revision ID: 0004_promotions
Revises: 0003
Create Date: 2026-11-30

Written by hand against :class:`experiments.store.models.PolicyPromotion`
(``tests/store/test_store_migrations.py`` checks that the migrated schema and the models agree
on both dialects). A new table only: existing snapshots have no row in it, so they keep being
served as before (a snapshot without a promotion record was published without the gate).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_promotions"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "policy_promotion",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("experiment_key", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("serving_version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("estimator", sa.String(length=32), nullable=True),
        sa.Column("rows", sa.Integer(), nullable=True),
        sa.Column("candidate_value", sa.Float(), nullable=True),
        sa.Column("candidate_low", sa.Float(), nullable=True),
        sa.Column("candidate_high", sa.Float(), nullable=True),
        sa.Column("serving_value", sa.Float(), nullable=True),
        sa.Column("difference", sa.Float(), nullable=True),
        sa.Column("difference_low", sa.Float(), nullable=True),
        sa.Column("difference_high", sa.Float(), nullable=True),
        sa.Column("margin", sa.Float(), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "experiment_key", "version", name="uq_policy_promotion_experiment_version"
        ),
    )
    op.create_index("ix_policy_promotion_experiment_key", "policy_promotion", ["experiment_key"])


def downgrade() -> None:
    op.drop_index("ix_policy_promotion_experiment_key", table_name="policy_promotion")
    op.drop_table("policy_promotion")
