"""pin noise_variance = 1.0 in the specs of experiments whose snapshots learned under it

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01

Before this revision a linear Gaussian policy (``epsilon_greedy``, ``linucb``, ``linear_ts``,
``kalman_ts``) whose spec did not set ``noise_variance`` used the policy's default of 1.0; now
it learns the noise variance (``"auto"``), and its state has two more arrays
(``noise_shape``, ``noise_scale``). A snapshot learned under the old default cannot be loaded
into the new model, and reading it as one would change the experiment's exploration midway.
So an experiment that already has such a snapshot keeps the model it learned under: its
stored spec gets ``noise_variance = 1.0`` explicitly. Experiments without snapshots switch to
the learned variance when they next start learning, as new ones do.

A data migration only: the schema does not change. The downgrade leaves the pinned value in
place (an explicit 1.0 means the same under the old code).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np
import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: The policies whose unset noise variance became "auto" (frozen at this revision).
_GAUSSIAN_LINEAR = ("epsilon_greedy", "linucb", "linear_ts", "kalman_ts")
#: The policies' default before this revision.
_OLD_DEFAULT = 1.0

_experiment = sa.table("experiment", sa.column("key", sa.String), sa.column("spec", sa.JSON))
_snapshot = sa.table(
    "policy_snapshot",
    sa.column("experiment_key", sa.String),
    sa.column("version", sa.Integer),
    sa.column("state", sa.LargeBinary),
)


def _needs_pin(spec: dict[str, Any]) -> bool:
    policy = spec.get("policy") or {}
    params = policy.get("params") or {}
    return policy.get("name") in _GAUSSIAN_LINEAR and "noise_variance" not in params


def _learned_fixed_noise(state: bytes) -> bool:
    """Whether an npz state was exported by a fixed-noise model (no noise posterior)."""
    with np.load(io.BytesIO(state), allow_pickle=False) as archive:
        return "noise_shape" not in archive.files


def upgrade() -> None:
    connection = op.get_bind()
    for key, spec in connection.execute(sa.select(_experiment.c.key, _experiment.c.spec)):
        if not isinstance(spec, dict) or not _needs_pin(spec):
            continue
        latest = connection.execute(
            sa.select(_snapshot.c.state)
            .where(_snapshot.c.experiment_key == key)
            .order_by(_snapshot.c.version.desc())
            .limit(1)
        ).scalar_one_or_none()
        if latest is None or not _learned_fixed_noise(bytes(latest)):
            continue
        policy = dict(spec["policy"])
        policy["params"] = {**(policy.get("params") or {}), "noise_variance": _OLD_DEFAULT}
        connection.execute(
            sa.update(_experiment)
            .where(_experiment.c.key == key)
            .values(spec={**spec, "policy": policy})
        )


def downgrade() -> None:
    """Nothing to undo: an explicit ``noise_variance = 1.0`` is the old default."""
