"""Every store module's public names are pinned; the package itself re-exports nothing.

Adding, moving or removing a public name is a decision: update the table below with it.
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path
from types import ModuleType

import pytest

import experiments.store

STORE_DIR = Path(experiments.store.__file__).resolve().parent

PUBLIC_NAMES: dict[str, set[str]] = {
    "experiments.store._sql": {
        "CHUNK",
        "attach",
        "check_choice",
        "chunks",
        "dialect",
        "dialect_insert",
        "fill_defaults",
        "insert_ignoring_conflicts",
        "now_or",
        "row_of",
        "rows_of",
        "select_columns",
        "table_of",
    },
    "experiments.store.aggregates": {
        "RewardAggregate",
        "decision_counts_by_group",
        "decision_counts_by_status",
        "experiment_counts",
        "outcome_counts_by_attribution",
        "reward_aggregates",
    },
    "experiments.store.api_keys": {
        "create_api_key",
        "list_api_keys",
        "normalize_scopes",
        "revoke_api_key",
        "verify_api_key",
    },
    "experiments.store.connection": {
        "DATABASE_URL_ENV",
        "DEFAULT_DATABASE_URL",
        "SQLITE_BUSY_TIMEOUT_MS",
        "database_url_from_env",
        "dialect_name",
        "is_in_memory",
        "make_engine",
        "normalize_url",
        "sqlite_file",
    },
    "experiments.store.deadlines": {"guarded_connect"},
    "experiments.store.decisions": {
        "RewardCandidate",
        "activate_decision",
        "count_recent_decisions_by_customer",
        "decisions_due_for_early_reward",
        "decisions_due_for_reward",
        "decisions_with_outcomes_since",
        "decisions_with_status",
        "expired_deferred_decisions",
        "find_decision_by_request",
        "get_decision",
        "insert_decision",
        "insert_decisions",
        "lock_decision_statuses",
        "reward_candidates",
        "set_decision_status",
        "short_term_candidates",
        "store_decisions",
    },
    "experiments.store.served": {
        "ContactRow",
        "NextDecision",
        "ServedDecision",
        "customer_contacts",
        "next_decisions",
        "served_decisions_between",
    },
    "experiments.store.errors": {
        "DuplicateError",
        "DuplicateRequestError",
        "InvalidFieldError",
        "NotFoundError",
        "SchemaMismatchError",
        "SnapshotVersionError",
        "StoreError",
    },
    "experiments.store.experiments": {
        "create_experiment",
        "get_experiment",
        "list_experiments",
        "require_experiment",
        "update_experiment",
    },
    "experiments.store.key_hashing": {
        "API_KEY_PREFIX",
        "KEY_PREFIX_LENGTH",
        "KEY_SECRET_LENGTH",
        "PBKDF2_ITERATIONS",
        "hash_api_key",
        "hash_matches",
        "lookup_prefix",
        "new_key",
        "new_salt",
        "spend_a_hash",
    },
    "experiments.store.attribution": {
        "DecisionHead",
        "decision_heads",
        "latest_open_decision",
        "latest_open_decisions",
        "locks_rows",
    },
    "experiments.store.group_commit": {"GroupCommit"},
    "experiments.store.json_codec": {"dumps", "loads"},
    "experiments.store.guardrails": {
        "CustomerEvents",
        "CustomerRow",
        "customer_events",
        "customer_rows",
    },
    "experiments.store.leases": {"acquire_lease", "release_lease"},
    "experiments.store.models": {
        "TABLES",
        "ApiKey",
        "Decision",
        "Experiment",
        "LearnerLease",
        "NullableJSON",
        "Outcome",
        "PolicyPromotion",
        "PolicySnapshot",
        "Reward",
        "ShortTermReward",
        "StrategyAssignment",
        "StrategySnapshot",
        "UTCDateTime",
        "new_decision_id",
        "new_decision_ids",
        "utcnow",
    },
    "experiments.store.outcomes": {
        "DecisionOutcome",
        "EventWindow",
        "InsertResult",
        "customer_event_times",
        "decision_outcomes",
        "in_window",
        "insert_outcomes",
        "mark_outcomes_late",
        "outcomes_for_decisions",
    },
    "experiments.store.retention": {"ErasureResult", "erase_customer", "purge_contexts"},
    "experiments.store.rewards": {
        "LearningRow",
        "RewardTable",
        "count_rewards",
        "count_unlearned_rewards",
        "insert_rewards",
        "mark_rewards_learned",
        "reward_decision_ids",
        "reward_row",
        "reward_rows",
        "reward_rows_of",
        "unlearned_rewards",
    },
    "experiments.store.schema": {
        "MIGRATIONS_DIR",
        "alembic_config",
        "check_schema",
        "current_revision",
        "head_revision",
        "known_revisions",
        "upgrade",
    },
    "experiments.store.promotions": {
        "insert_promotion",
        "list_promotions",
        "pending_promotion",
        "serving_snapshot",
        "serving_version",
    },
    "experiments.store.snapshots": {
        "insert_snapshot",
        "latest_snapshot",
        "latest_snapshot_version",
        "pack_state",
        "snapshot_at",
        "unpack_state",
    },
    "experiments.store.database": {"Database", "SessionLock", "open_database"},
    "experiments.store.strategies": {
        "assignments_due",
        "assignments_for",
        "epoch_outcome_totals",
        "erase_assignments",
        "first_assignments",
        "insert_assignments",
        "insert_strategy_snapshot",
        "latest_strategy_snapshot",
        "mark_assignments_learned",
        "measured_assignments",
        "set_assignment_kpis",
        "unlearned_assignments",
    },
}


def store_modules() -> set[str]:
    """Every module of the package but its ``__init__`` and the alembic scripts."""
    return {
        f"experiments.store.{path.stem}"
        for path in STORE_DIR.glob("*.py")
        if path.name != "__init__.py"
    }


def test_every_store_module_is_pinned() -> None:
    assert set(PUBLIC_NAMES) == store_modules()


@pytest.mark.parametrize("name", sorted(PUBLIC_NAMES))
def test_public_names_are_pinned(name: str) -> None:
    module = importlib.import_module(name)
    assert module.__doc__, f"{name} needs a docstring saying what it is for"
    exported = list(module.__all__)
    assert set(exported) == PUBLIC_NAMES[name]
    assert len(exported) == len(set(exported))
    assert all(hasattr(module, item) for item in exported)
    # Every public function and class defined here is exported (one home per name).
    defined = {
        item
        for item, value in vars(module).items()
        if not item.startswith("_")
        and (inspect.isfunction(value) or inspect.isclass(value))
        and value.__module__ == name
    }
    assert defined <= set(exported), sorted(defined - set(exported))


def test_no_name_has_two_homes() -> None:
    homes: dict[str, list[str]] = {}
    for module, names in PUBLIC_NAMES.items():
        for item in names:
            homes.setdefault(item, []).append(module)
    assert {item: where for item, where in homes.items() if len(where) > 1} == {}


def test_the_package_re_exports_nothing() -> None:
    """``experiments.store`` is a docstring: callers import each name from its module."""
    package = importlib.import_module("experiments.store")
    assert package.__doc__
    assert not hasattr(package, "__all__")
    for store_module in sorted(store_modules()):
        importlib.import_module(store_module)
    public = {item: value for item, value in vars(package).items() if not item.startswith("_")}
    # Importing a submodule sets it as an attribute of the package; nothing else is there.
    assert all(isinstance(value, ModuleType) for value in public.values()), sorted(public)
