"""short-term rewards: a second reward per decision, joined as soon as it is known

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02

A spec's ``[reward.short_term]`` is the reward a gated ``lookahead_ts`` policy's short-term
learner learns. It is joined apart from the reward, the moment it is known (a click, while the
reward's funnel waits for its window to close), into its own table ``short_term_reward``
(same columns as ``reward``), with the unlearned rewards indexed as for ``reward``. The join
finds the decisions whose short window has closed by their activation time, hence the index
``decision (experiment_key, activated_at)``.

A new table and an index: no data moves, and the downgrade drops them.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "short_term_reward",
        sa.Column("decision_id", sa.String(length=32), nullable=False),
        sa.Column("experiment_key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("learned_version", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["decision_id"], ["decision.id"], name="fk_short_term_reward_decision_id"
        ),
        sa.PrimaryKeyConstraint("decision_id"),
    )
    op.create_index(
        "ix_short_term_reward_experiment_learned",
        "short_term_reward",
        ["experiment_key", "learned_version"],
    )
    op.create_index(
        "ix_decision_experiment_activated", "decision", ["experiment_key", "activated_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_decision_experiment_activated", table_name="decision")
    op.drop_index("ix_short_term_reward_experiment_learned", table_name="short_term_reward")
    op.drop_table("short_term_reward")
