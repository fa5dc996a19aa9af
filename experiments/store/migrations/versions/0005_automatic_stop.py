"""automatic stop: why and when an experiment stopped itself, and when an admin resumed it

Revision ID: 0005
Revises: 0004_promotions
Create Date: 2026-11-30

Three nullable columns on ``experiment`` (:mod:`experiments.engine.guardrails` writes them):
``stop_reason`` (text), ``stopped_at`` and ``resumed_at`` (``DateTime(timezone=True)``, as
``UTCDateTime`` is in the database). Existing experiments have never stopped themselves, so
NULL is their true value and no data moves.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004_promotions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("experiment") as batch:
        batch.add_column(sa.Column("stop_reason", sa.Text(), nullable=True))
        batch.add_column(sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("resumed_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("experiment") as batch:
        batch.drop_column("resumed_at")
        batch.drop_column("stopped_at")
        batch.drop_column("stop_reason")
