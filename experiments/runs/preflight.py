"""What ``engage run`` checks before it simulates: warnings about a spec whose run would say
less than it seems to, and a database that already holds an arm's experiment."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from experiments.errors import InvalidInputError
from experiments.runs.arms import arm_spec
from experiments.runs.world import holdout_mask
from experiments.simulate import EVENT_NAMES
from experiments.spec import ExperimentSpec
from experiments.store.database import open_database
from experiments.store.experiments import get_experiment

if TYPE_CHECKING:
    from experiments.runs.simulation import RunOptions

__all__ = ["check_keys_free", "run_warnings"]


def run_warnings(spec: ExperimentSpec, options: RunOptions) -> list[str]:
    """What makes a run of ``spec`` say less than it seems to, each as one line, known before
    simulating: an event the simulator never emits (a reward that is always its default) and
    a holdout or treatment group too small to measure lift against."""
    warnings = []
    events = [("reward.event", name) for name in spec.reward.named_events]
    if spec.reward.surrogate is not None:
        events += [("reward.surrogate.signals", name) for name in spec.reward.surrogate.signals]
    if spec.strategies is not None:
        events.append(("strategies.kpi.event", spec.strategies.kpi.event))
    for where, event in events:
        if event not in EVENT_NAMES:
            warnings.append(
                f"{where} {event!r} is never emitted by the simulator (it emits "
                f"{', '.join(EVENT_NAMES)}): every reward will be the default"
            )
    held = int(holdout_mask(spec, options.customers).sum())
    treated = options.customers - held
    if held < 2 or treated < 2:
        warnings.append(
            f"holdout.share {spec.holdout.share:g} holds out {held:,} of {options.customers:,} "
            f"customers ({treated:,} treated): lift against the holdout needs at least 2 in "
            "each group, so there will be no lift table"
        )
    return warnings


def check_keys_free(spec: ExperimentSpec, arms: Sequence[str], url: str) -> None:
    """Refuse a database that already holds an arm's experiment (an earlier run, perhaps
    interrupted), naming the key, before anything is simulated."""
    database = open_database(url)
    try:
        with database.session() as session:
            for arm in arms:
                key = arm_spec(spec, arm).key
                if get_experiment(session, key=key) is not None:
                    raise InvalidInputError(
                        f"experiment {key!r} (the {arm} arm) already exists in {url}: an earlier "
                        "run, perhaps interrupted, kept it there; pass another --database-url, "
                        "or leave it out to run in a temporary database",
                        field="database_url",
                    )
    finally:
        database.dispose()
